package workorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
)

// Config is the work-order part of the rules: section.
type Config struct {
	ReopenWindow time.Duration  `yaml:"reopen_window"` // a fault back within this reopens its work order; default 24h
	SLA          SLA            `yaml:"sla"`
	Webhook      *WebhookConfig `yaml:"webhook"`
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.ReopenWindow == 0 {
		c.ReopenWindow = 24 * time.Hour
	}
	c.SLA.SetDefaults()
	if c.Webhook != nil {
		c.Webhook.SetDefaults()
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	if err := c.SLA.Validate(); err != nil {
		return cfgerr.Prefix("sla", err)
	}
	if c.Webhook != nil {
		if err := c.Webhook.Validate(); err != nil {
			return cfgerr.Prefix("webhook", err)
		}
	}
	return nil
}

// Filter selects work orders; zero fields match everything.
type Filter struct {
	Open          bool // only statuses still being worked on (and resolved awaiting call-back)
	Status        Status
	Asset         string
	Category      string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Limit         int
}

// ErrReasonRequired: cancelling a work order or lowering its priority
// needs a reason, recorded in its history.
var ErrReasonRequired = errors.New("a reason is required (note): cancelling a work order or lowering its priority is recorded with why")

// ErrConflict: the stored work order changed since it was read.
var ErrConflict = errors.New("the work order was changed by someone else; reload and retry")

// Store keeps work orders and their history.
type Store interface {
	// CreateWorkOrder inserts w (setting its ID) with its first history entry.
	CreateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error
	// UpdateWorkOrder saves w if its stored version is w.Version-1
	// (ErrConflict otherwise).
	UpdateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error
	// WorkOrder is one order with its history (rules.ErrNotFound if none).
	WorkOrder(ctx context.Context, id int64) (*WorkOrder, []HistoryEntry, error)
	WorkOrders(ctx context.Context, f Filter) ([]*WorkOrder, error)
	// LatestWorkOrderFor is the newest order a rule opened for an asset.
	LatestWorkOrderFor(ctx context.Context, rule, asset string) (*WorkOrder, error)
}

// Observer is told of every created or changed work order.
type Observer interface {
	WorkOrderChanged(w WorkOrder, h HistoryEntry)
}

// Availability is the alarm side of the KPIs (rules.Engine).
type Availability interface {
	Availability(ctx context.Context, from, to time.Time) (map[string]float64, error)
}

// Service opens, moves and checks work orders. It implements
// rules.FireHandler: a rule with a workorder: block opens one through it.
type Service struct {
	cfg       Config
	store     Store
	obs       []Observer
	assets    map[string]collectors.Asset
	log       *slog.Logger
	now       func() time.Time
	mu        sync.Mutex // one change at a time (read, modify, save)
	slaPeriod time.Duration
}

var _ rules.FireHandler = (*Service)(nil)

// NewService builds the service.
func NewService(cfg Config, assets []collectors.Asset, store Store, log *slog.Logger, now func() time.Time, obs ...Observer) *Service {
	cfg.SetDefaults()
	s := &Service{cfg: cfg, store: store, obs: obs, assets: map[string]collectors.Asset{}, log: log, now: now, slaPeriod: 10 * time.Second}
	for _, a := range assets {
		s.assets[a.ID] = a
	}
	return s
}

// AlarmFired implements rules.FireHandler: it opens a work order for a
// firing rule, or appends to the open one for the same rule and asset, or
// reopens one resolved recently.
func (s *Service) AlarmFired(ctx context.Context, f rules.Fired) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	spec, now := f.Rule.WorkOrder, f.At
	latest, err := s.store.LatestWorkOrderFor(ctx, f.Rule.ID, f.Asset.ID)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%s fired again (value %s)", f.Rule.ID, f.Alarm.Value)
	switch {
	case latest != nil && latest.Status != Closed && latest.Status != Cancelled && latest.Status != Resolved && latest.Status != CallbackDone:
		latest.Occurrences++
		latest.Version++
		latest.Updated = now
		return s.save(ctx, latest, HistoryEntry{At: now, By: rules.ByEngine, Note: note})
	case latest != nil && latest.Status != Cancelled && now.Sub(latest.ResolvedAt) < s.cfg.ReopenWindow && !latest.ResolvedAt.IsZero():
		from := latest.Status
		latest.Status, latest.ResolvedAt, latest.CallbackAt, latest.ClosedAt = InProgress, time.Time{}, time.Time{}, time.Time{}
		d := s.cfg.SLA.For(latest.Category, latest.Priority)
		latest.ResolutionDue, latest.ResolutionBreached = now.Add(d.Resolution), false
		latest.Occurrences++
		latest.Version++
		latest.Updated = now
		return s.save(ctx, latest, HistoryEntry{At: now, By: rules.ByEngine, From: from, To: InProgress,
			Note: fmt.Sprintf("reopened: the fault came back within %s of being resolved (value %s)", s.cfg.ReopenWindow, f.Alarm.Value)})
	}
	a := f.Asset
	w := &WorkOrder{Category: spec.Category, Asset: a.ID, Location: rules.Location(a), Priority: spec.Priority,
		Description: fmt.Sprintf("%s: %s (value %s)", f.Rule.Name, a.Name, f.Alarm.Value),
		Status:      Opened, Source: "rule", Rule: f.Rule.ID, AlarmID: f.Alarm.ID, Reporter: rules.ByEngine, Occurrences: 1, Version: 1}
	return s.create(ctx, w, now, rules.ByEngine, "opened by rule "+f.Rule.ID)
}

func (s *Service) create(ctx context.Context, w *WorkOrder, now time.Time, by, note string) error {
	d := s.cfg.SLA.For(w.Category, w.Priority)
	w.Created, w.Updated = now, now
	w.ResponseDue, w.ResolutionDue = now.Add(d.Response), now.Add(d.Resolution)
	h := HistoryEntry{At: now, By: by, To: Opened, Note: note}
	if err := s.store.CreateWorkOrder(ctx, w, h); err != nil {
		return err
	}
	h.WorkOrder = w.ID
	s.tell(*w, h)
	return nil
}

func (s *Service) save(ctx context.Context, w *WorkOrder, h HistoryEntry) error {
	if err := s.store.UpdateWorkOrder(ctx, w, h); err != nil {
		return err
	}
	h.WorkOrder = w.ID
	s.tell(*w, h)
	return nil
}

func (s *Service) tell(w WorkOrder, h HistoryEntry) {
	for _, o := range s.obs {
		o.WorkOrderChanged(w, h)
	}
}

// Create opens a work order by hand (a resident's call) or for a playbook;
// by is who entered it (recorded in the history), w.Reporter who reported
// it (a resident, the front desk), the same when empty.
func (s *Service) Create(ctx context.Context, w WorkOrder, by string) (*WorkOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.Asset != "" {
		a, ok := s.assets[w.Asset]
		if !ok {
			return nil, fmt.Errorf("asset %q is not declared", w.Asset)
		}
		if w.Location == "" {
			w.Location = rules.Location(a)
		}
	}
	w.Status, w.Source, w.Version, w.Occurrences = Opened, "manual", 1, 1
	if w.Reporter == "" {
		w.Reporter = by
	}
	note := "opened by " + by
	if w.Reporter != by {
		note += ", reported by " + w.Reporter
	}
	if err := s.create(ctx, &w, s.now(), by, note); err != nil {
		return nil, err
	}
	return &w, nil
}

// Transition moves a work order to another status; an invalid move is a
// *TransitionError and changes nothing.
func (s *Service) Transition(ctx context.Context, id int64, to Status, by, note string) (*WorkOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, _, err := s.store.WorkOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if to == Cancelled && strings.TrimSpace(note) == "" {
		return nil, ErrReasonRequired
	}
	now := s.now()
	from := w.Status
	if err := w.move(to, now); err != nil {
		return nil, err
	}
	w.Version++
	w.Updated = now
	if err := s.save(ctx, w, HistoryEntry{At: now, By: by, From: from, To: to, Note: note}); err != nil {
		return nil, err
	}
	return w, nil
}

// Update changes a work order's details; nil fields stay.
type Update struct {
	Assignee    *string         `json:"assignee"`
	Description *string         `json:"description"`
	Priority    *rules.Priority `json:"priority"`
	Category    *string         `json:"category"`
	Note        string          `json:"note"`
}

// Update applies an update, recorded in the history.
func (s *Service) Update(ctx context.Context, id int64, u Update, by string) (*WorkOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, _, err := s.store.WorkOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	var changes []string
	if u.Assignee != nil && *u.Assignee != w.Assignee {
		w.Assignee = *u.Assignee
		changes = append(changes, "assignee "+w.Assignee)
	}
	if u.Description != nil && *u.Description != w.Description {
		w.Description = *u.Description
		changes = append(changes, "description")
	}
	if u.Category != nil && *u.Category != w.Category {
		w.Category = *u.Category
		changes = append(changes, "category "+w.Category)
	}
	if u.Priority != nil && *u.Priority != w.Priority {
		if !u.Priority.Valid() {
			return nil, fmt.Errorf("%q is not a priority; fix: critical, high, medium or low", *u.Priority)
		}
		if u.Priority.Rank() > w.Priority.Rank() && strings.TrimSpace(u.Note) == "" {
			return nil, ErrReasonRequired
		}
		w.Priority = *u.Priority
		d := s.cfg.SLA.For(w.Category, w.Priority)
		w.ResponseDue, w.ResolutionDue = w.Created.Add(d.Response), w.Created.Add(d.Resolution)
		changes = append(changes, "priority "+string(w.Priority))
	}
	if len(changes) == 0 && u.Note == "" {
		return w, nil
	}
	note := strings.Join(changes, ", ")
	if u.Note != "" {
		note = strings.TrimPrefix(note+"; "+u.Note, "; ")
	}
	now := s.now()
	w.Version++
	w.Updated = now
	if err := s.save(ctx, w, HistoryEntry{At: now, By: by, Note: note}); err != nil {
		return nil, err
	}
	return w, nil
}

// CheckSLA records response and resolution breaches of open orders.
func (s *Service) CheckSLA(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	open, err := s.store.WorkOrders(ctx, Filter{Open: true})
	if err != nil {
		s.log.Error("SLA check failed", "err", err)
		return
	}
	for _, w := range open {
		if changed := w.breaches(now); len(changed) > 0 {
			w.Version++
			w.Updated = now
			note := "SLA breached: " + strings.Join(changed, " and ") + " deadline passed"
			if err := s.save(ctx, w, HistoryEntry{At: now, By: rules.ByEngine, Note: note}); err != nil {
				s.log.Error("recording an SLA breach failed", "workorder", w.ID, "err", err)
			}
			s.log.Warn("work order SLA breached", "workorder", w.ID, "deadline", strings.Join(changed, ","))
		}
	}
}

// Run checks SLA deadlines every ten seconds until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	collectors.Every(ctx, s.slaPeriod, func() { s.CheckSLA(ctx) })
	return nil
}
