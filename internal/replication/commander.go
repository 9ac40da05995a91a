package replication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Gap is a site missing events at the center: every seq before From is
// there, Head is the newest known to exist, missing since Since.
type Gap struct {
	Site  string
	From  int64
	Head  int64
	Since time.Time
}

// CommandStore is the center's record of commands and gaps.
type CommandStore interface {
	AddCommand(ctx context.Context, c Command) error
	CommandSent(ctx context.Context, id string, at time.Time) error
	// Unanswered lists pending commands last sent before sentBefore
	// (marking those expired by now first).
	Unanswered(ctx context.Context, now, sentBefore time.Time) ([]Command, error)
	// Gaps lists sites missing events for at least wait, not asked to
	// replay within wait.
	Gaps(ctx context.Context, now time.Time, wait time.Duration) ([]Gap, error)
	ReplayAsked(ctx context.Context, site string, at time.Time) error
}

// CommanderConfig tunes the center's command sender.
type CommanderConfig struct {
	Every   time.Duration // how often gaps and unanswered commands are looked at; default 1s
	GapWait time.Duration // a gap this old (not filled by a late message) is asked for again; default 10s
	Resend  time.Duration // an unanswered command is sent again after this; default 30s
	TTL     time.Duration // a command not applied by then is refused by the site; default 10m
}

func (c *CommanderConfig) defaults() {
	if c.Every <= 0 {
		c.Every = time.Second
	}
	if c.GapWait <= 0 {
		c.GapWait = 10 * time.Second
	}
	if c.Resend <= 0 {
		c.Resend = 30 * time.Second
	}
	if c.TTL <= 0 {
		c.TTL = 10 * time.Minute
	}
}

// Commander sends commands down at the center: each is stored (pending)
// before it is published, sent again while unanswered and unexpired (the
// site applies each id once), and gaps in a site's seq are asked for with
// replay_from.
type Commander struct {
	store CommandStore
	send  Sender
	cfg   CommanderConfig
	log   *slog.Logger
	now   func() time.Time
}

// NewCommander sends through send (the center's MQTT client).
func NewCommander(store CommandStore, send Sender, cfg CommanderConfig, log *slog.Logger, now func() time.Time) *Commander {
	cfg.defaults()
	return &Commander{store: store, send: send, cfg: cfg, log: log, now: now}
}

// NewID is a fresh command id.
func NewID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "c-" + hex.EncodeToString(b)
}

// Issue stores c (filling its id, version, times) and sends it; a failed
// send is retried by Run. It returns the stored command.
func (k *Commander) Issue(ctx context.Context, c Command) (Command, error) {
	now := k.now()
	c.V = Version
	if c.ID == "" {
		c.ID = NewID()
	}
	c.At = now
	if c.Expires.IsZero() {
		c.Expires = now.Add(k.cfg.TTL)
	}
	if err := c.Check(c.Site, now); err != nil {
		return c, fmt.Errorf("replication: command: %w", err)
	}
	if err := k.store.AddCommand(ctx, c); err != nil {
		return c, err
	}
	k.publish(ctx, c)
	return c, nil
}

func (k *Commander) publish(ctx context.Context, c Command) {
	b, err := json.Marshal(c)
	if err != nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := k.send.PublishQoS1(sctx, CommandTopic(c.Site), b); err != nil {
		k.log.Warn("replication: command not sent yet; will retry", "id", c.ID, "site", c.Site, "err", err)
		return
	}
	if err := k.store.CommandSent(ctx, c.ID, k.now()); err != nil {
		k.log.Warn("replication: command sent, not recorded", "id", c.ID, "err", err)
	}
}

// Tick asks for every gap old enough and sends unanswered commands again.
func (k *Commander) Tick(ctx context.Context) error {
	now := k.now()
	gaps, err := k.store.Gaps(ctx, now, k.cfg.GapWait)
	if err != nil {
		return err
	}
	for _, g := range gaps {
		k.log.Warn("replication: events missing at the center; asking the site to replay", "site", g.Site, "from", g.From, "head", g.Head, "since", g.Since)
		if _, err := k.Issue(ctx, Command{Site: g.Site, By: "center", Role: "center", Action: ActionReplayFrom, From: g.From,
			Expires: now.Add(k.cfg.GapWait)}); err != nil {
			return err
		}
		if err := k.store.ReplayAsked(ctx, g.Site, now); err != nil {
			return err
		}
	}
	cmds, err := k.store.Unanswered(ctx, now, now.Add(-k.cfg.Resend))
	if err != nil {
		return err
	}
	for _, c := range cmds {
		k.publish(ctx, c)
	}
	return nil
}

// Run ticks until ctx ends.
func (k *Commander) Run(ctx context.Context) error {
	t := time.NewTicker(k.cfg.Every)
	defer t.Stop()
	for {
		if err := k.Tick(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("replication: commander", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
