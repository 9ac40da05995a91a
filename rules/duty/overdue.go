package duty

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// OverdueField is the derived reading the handover watch publishes on its
// asset: how many teams' handovers are overdue (the outgoing shift ended
// more than the grace ago and no handover was signed). An ordinary rule
// alarms on it (threshold above 0), like the register's reminders.
const OverdueField = "handover_overdue"

// Source is the collector name the watch publishes under (metrics).
const Source = "duty"

// HandoverCheck is the duty.handover: section: which teams hand over at
// the end of each shift, how long after the shift's end a missing handover
// becomes overdue, and the asset the alarm is reported on (the duty
// room's: the fire panel in the 消防控制室, where the 24-hour duty sits).
type HandoverCheck struct {
	Teams []string      `yaml:"teams"`
	Grace time.Duration `yaml:"grace"` // default 30m
	Asset string        `yaml:"asset"`
}

// SetDefaults fills unset values.
func (c *HandoverCheck) SetDefaults() {
	if c.Grace == 0 {
		c.Grace = 30 * time.Minute
	}
}

// Validate checks the section; known reports whether an asset is declared,
// team whether a team is in the roster's seed (alerts: teams).
func (c *HandoverCheck) Validate(known, team func(string) bool) error {
	if len(c.Teams) == 0 {
		return cfgerr.Errorf("teams", "is required; fix: the teams whose shifts end with a signed handover, e.g. [engineering]")
	}
	for i, t := range c.Teams {
		if !team(t) {
			return cfgerr.Errorf(fmt.Sprintf("teams[%d]", i), "%q is not a team under alerts: teams:", t)
		}
		if slices.Index(c.Teams, t) != i {
			return cfgerr.Errorf(fmt.Sprintf("teams[%d]", i), "%q is listed twice", t)
		}
	}
	if c.Grace < time.Minute || c.Grace > 24*time.Hour {
		return cfgerr.Errorf("grace", "%s is out of range; fix: 1m to 24h, e.g. 30m", c.Grace)
	}
	if c.Asset == "" || !known(c.Asset) {
		return cfgerr.Errorf("asset", "%q is not declared under assets:; fix: the asset the overdue-handover alarm is reported on, e.g. the fire panel in the duty room (消防控制室)", c.Asset)
	}
	return nil
}

// OverdueHandover is one team whose handover is overdue.
type OverdueHandover struct {
	Team         string    `json:"team"`
	TeamName     string    `json:"team_name"`
	ShiftEnded   time.Time `json:"shift_ended"` // the outgoing shift's end
	Outgoing     string    `json:"outgoing"`    // who the roster had on that shift
	OutgoingName string    `json:"outgoing_name"`
	Incoming     string    `json:"incoming"`
	IncomingName string    `json:"incoming_name"`
}

// Overdue lists the teams (of teams) whose last shift ended more than
// grace ago with no handover of that shift signed. A shift that
// ended before since (when the roster was first stored) is not asked for;
// nor is one followed by the same person (a one-person rotation).
func (s *Service) Overdue(ctx context.Context, teams []string, grace time.Duration, since time.Time) ([]OverdueHandover, error) {
	now := s.d.Now()
	type due struct {
		h    OverdueHandover
		from time.Time
	}
	var check []due
	s.mu.RLock()
	if s.roster != nil {
		for _, id := range teams {
			t, ok := s.roster.team(id)
			if !ok {
				continue
			}
			cur := t.At(now)
			end := cur.From
			if cur.Person == "" || end.IsZero() || now.Before(end.Add(grace)) || end.Before(since) {
				continue
			}
			prev := t.At(end.Add(-time.Nanosecond))
			if prev.Person == "" || prev.Person == cur.Person {
				continue
			}
			check = append(check, due{OverdueHandover{Team: t.ID, TeamName: t.Name, ShiftEnded: end, Outgoing: prev.Person, OutgoingName: s.name(prev.Person),
				Incoming: cur.Person, IncomingName: s.name(cur.Person)}, prev.From})
		}
	}
	s.mu.RUnlock()
	out := []OverdueHandover{}
	for _, c := range check {
		done, err := s.handedOver(ctx, c.h.Team, c.from)
		if err != nil {
			return nil, err
		}
		if !done {
			out = append(out, c.h)
		}
	}
	return out, nil
}

// Since is when the roster was first stored: shifts that ended before it
// are not asked for a handover.
func (s *Service) Since(ctx context.Context) (time.Time, error) {
	vs, err := s.d.Store.RosterVersions(ctx, 0)
	if err != nil {
		return time.Time{}, err
	}
	if len(vs) == 0 {
		return s.d.Now(), nil
	}
	return vs[len(vs)-1].Updated, nil
}

// Watch publishes handover_overdue every minute.
type Watch struct {
	cfg   HandoverCheck
	svc   *Service
	sink  collectors.Sink
	kind  collectors.AssetKind
	log   *slog.Logger
	since time.Time
	every time.Duration
}

// NewWatch builds the overdue-handover watch (kind: the asset's kind).
func NewWatch(cfg HandoverCheck, svc *Service, kind collectors.AssetKind, sink collectors.Sink, log *slog.Logger) *Watch {
	cfg.SetDefaults()
	return &Watch{cfg: cfg, svc: svc, sink: sink, kind: kind, log: log, every: time.Minute}
}

// Overdue lists the configured teams' overdue handovers now.
func (w *Watch) Overdue(ctx context.Context) ([]OverdueHandover, error) {
	return w.svc.Overdue(ctx, w.cfg.Teams, w.cfg.Grace, w.since)
}

// Check publishes the count of overdue handovers once.
func (w *Watch) Check(ctx context.Context) error {
	list, err := w.Overdue(ctx)
	if err != nil {
		return err
	}
	for _, o := range list {
		w.log.Warn("handover overdue", "team", o.Team, "shift_ended", o.ShiftEnded, "outgoing", o.Outgoing)
	}
	w.sink.Publish(Source, []collectors.Point{{Asset: w.cfg.Asset, Kind: w.kind, Field: OverdueField, Value: collectors.Int(int64(len(list))),
		Quality: collectors.QualityGood, Time: w.svc.d.Now()}})
	return nil
}

// Start reads when the roster began (Run does it; tests call it).
func (w *Watch) Start(ctx context.Context) error {
	since, err := w.svc.Since(ctx)
	if err != nil {
		return fmt.Errorf("handover watch: %w", err)
	}
	w.since = since
	return nil
}

// Run checks every minute until ctx ends.
func (w *Watch) Run(ctx context.Context) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	check := func() {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("handover check failed", "err", err)
		}
	}
	check()
	collectors.Every(ctx, w.every, check)
	return nil
}
