package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Sender publishes one message at QoS 1 and returns once the broker has
// acknowledged it (PUBACK) or with an error.
type Sender interface {
	PublishQoS1(ctx context.Context, topic string, payload []byte) error
}

// Publisher sends the outbox in seq order; an event is marked sent only
// after the broker acknowledged it, so a restart or a broker outage resends
// from the first unacknowledged event (the center drops the duplicates).
type Publisher struct {
	outbox Outbox
	send   Sender
	kick   <-chan struct{}
	every  time.Duration
	log    *slog.Logger

	// Optional, set before Run:
	// Site, with a Sender that can retain (PahoSender), makes Run publish
	// the site's status (online, head seq) after each flush that moved the
	// head and every Heartbeat: the center sees a gap at the tail too.
	Site      string
	Heartbeat time.Duration // default 30s
	// Retention: events sent longer ago than this are pruned (checked
	// every hour); 0 keeps them forever. The center asking for a pruned
	// event gets a snapshot of the current records (SiteCommands).
	Retention time.Duration
	Now       func() time.Time

	lastHead   int64
	lastStatus time.Time
	lastPrune  time.Time
}

// RetainedSender also publishes retained messages (the site's status).
type RetainedSender interface {
	PublishRetained(ctx context.Context, topic string, payload []byte) error
}

// NewPublisher publishes from outbox through send, looking again when
// kicked or every interval.
func NewPublisher(outbox Outbox, send Sender, kick <-chan struct{}, every time.Duration, log *slog.Logger) *Publisher {
	return &Publisher{outbox: outbox, send: send, kick: kick, every: every, log: log}
}

// Flush sends every unsent event, in order, stopping at the first failure.
func (p *Publisher) Flush(ctx context.Context) (int, error) {
	sent := 0
	for {
		batch, err := p.outbox.Unsent(ctx, 100)
		if err != nil {
			return sent, err
		}
		if len(batch) == 0 {
			return sent, nil
		}
		for _, e := range batch {
			b, err := json.Marshal(e)
			if err != nil {
				return sent, err
			}
			if err := p.send.PublishQoS1(ctx, EventTopic(e.Site, e.Kind), b); err != nil {
				return sent, fmt.Errorf("replication: publishing seq %d: %w", e.Seq, err)
			}
			if err := p.outbox.MarkSent(ctx, e.Seq); err != nil {
				return sent, err
			}
			sent++
		}
	}
}

// Run flushes when kicked and every interval until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		if _, err := p.Flush(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("replication: will retry", "err", err)
		} else if err == nil {
			p.housekeeping(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-t.C:
		}
	}
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// housekeeping publishes the status when due and prunes past the
// retention (hourly).
func (p *Publisher) housekeeping(ctx context.Context) {
	now := p.now()
	if rs, ok := p.send.(RetainedSender); ok && p.Site != "" {
		every := p.Heartbeat
		if every <= 0 {
			every = 30 * time.Second
		}
		head, err := p.outbox.Head(ctx)
		if err == nil && (head != p.lastHead || now.Sub(p.lastStatus) >= every) {
			st := Status{V: Version, Site: p.Site, State: "online", Head: head, At: now}
			if ep, ok := p.outbox.(Epocher); ok {
				st.Epoch, st.EpochFrom = ep.Epoch()
			}
			b, _ := json.Marshal(st)
			if err := rs.PublishRetained(ctx, StatusTopic(p.Site), b); err == nil {
				p.lastHead, p.lastStatus = head, now
			}
		}
	}
	if p.Retention > 0 && now.Sub(p.lastPrune) >= time.Hour {
		n, err := p.outbox.Prune(ctx, now.Add(-p.Retention))
		if err != nil {
			p.log.Warn("replication: prune failed", "err", err)
			return
		}
		p.lastPrune = now
		if n > 0 {
			p.log.Info("replication: pruned events past the retention", "events", n, "retention", p.Retention)
		}
	}
}
