package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules/workorder"
)

// Item statuses (computed from the item's work order).
const (
	StatusUpcoming = "upcoming" // work order open, not yet due
	StatusOverdue  = "overdue"  // work order open past its due time (or hours)
	StatusDone     = "done"     // work order resolved (or further)
	StatusPending  = "pending"  // the work order could not be opened yet (retried)
	StatusCanceled = "cancelled"
)

// Item is one due maintenance on one asset, with its PM work order.
type Item struct {
	ID          int64     `json:"id"`
	Plan        string    `json:"plan"`
	Asset       string    `json:"asset"`
	Due         time.Time `json:"due,omitzero"`        // calendar plans
	DueHours    float64   `json:"due_hours,omitempty"` // running-hours plans
	Opened      time.Time `json:"opened"`
	OpenedHours float64   `json:"opened_hours,omitempty"`
	WorkOrder   int64     `json:"workorder,omitempty"`
	// Filled when read.
	Status   string    `json:"status"`
	Done     time.Time `json:"done,omitzero"`
	OnTime   *bool     `json:"on_time,omitempty"`
	HoursNow *float64  `json:"hours_now,omitempty"`
}

// Store keeps the items (internal/store/sqlite).
type Store interface {
	// CreatePMItem stores it; false when the plan already has an item for
	// that asset and due (nothing is stored).
	CreatePMItem(ctx context.Context, it *Item) (bool, error)
	SetPMWorkOrder(ctx context.Context, id, workorder int64) error
	LatestPMItem(ctx context.Context, plan, asset string) (*Item, error) // nil when none
	PMItems(ctx context.Context, plan string, since time.Time, limit int) ([]*Item, error)
}

// Orders opens and reads work orders.
type Orders interface {
	Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error)
}

// OrderReader reads a work order (the store).
type OrderReader interface {
	WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error)
}

// Readings reads live values (collectors.State).
type Readings interface {
	Get(asset, field string) (collectors.FieldState, bool)
}

// Deps are what the service uses.
type Deps struct {
	Store     Store
	Orders    Orders
	OrderRead OrderReader
	Telemetry Readings
	Log       *slog.Logger
	Now       func() time.Time
}

// Service opens PM work orders as plans come due.
type Service struct {
	cfg Config
	d   Deps
	mu  sync.Mutex
}

// By is who the service opens work orders as.
const By = "maintenance-plan"

// NewService builds the service; nothing runs until Run.
func NewService(cfg Config, d Deps) *Service {
	cfg.SetDefaults()
	return &Service{cfg: cfg, d: d}
}

// Plans are the configured plans.
func (s *Service) Plans() []Plan { return s.cfg.Plans }

// maxCatchUp bounds the items opened for one plan and asset in one tick.
const maxCatchUp = 24

// Tick opens the work orders that have come due (and retries any that
// could not be opened).
func (s *Service) Tick(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.d.Now()
	var errs []error
	for i := range s.cfg.Plans {
		p := &s.cfg.Plans[i]
		for _, a := range p.Assets {
			var err error
			if p.RunHours != nil {
				err = s.byHours(ctx, p, a, now)
			} else {
				err = s.byCalendar(ctx, p, a, now)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("plan %s, %s: %w", p.ID, a, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Service) byCalendar(ctx context.Context, p *Plan, asset string, now time.Time) error {
	sched := s.cfg.schedule(p)
	if sched == nil {
		return errors.New("no schedule")
	}
	last, err := s.d.Store.LatestPMItem(ctx, p.ID, asset)
	if err != nil {
		return err
	}
	if last != nil && last.WorkOrder == 0 {
		return s.openOrder(ctx, p, last)
	}
	var due time.Time
	if last == nil {
		due = sched.Next(now.Add(-time.Second)) // a new plan starts with its next due day
	} else {
		due = sched.Next(last.Due)
	}
	for n := 0; n < maxCatchUp && !now.Before(due.Add(-p.Lead)); n++ {
		it := &Item{Plan: p.ID, Asset: asset, Due: due, Opened: now}
		if err := s.create(ctx, p, it); err != nil {
			return err
		}
		due = sched.Next(due)
	}
	return nil
}

func (s *Service) byHours(ctx context.Context, p *Plan, asset string, now time.Time) error {
	rh := p.RunHours
	f, ok := s.d.Telemetry.Get(asset, rh.Field)
	if !ok || f.Quality != collectors.QualityGood {
		return nil // no meter reading yet: nothing to decide
	}
	h, ok := f.Value.AsFloat()
	if !ok || math.IsNaN(h) {
		return nil
	}
	last, err := s.d.Store.LatestPMItem(ctx, p.ID, asset)
	if err != nil {
		return err
	}
	if last != nil && last.WorkOrder == 0 {
		return s.openOrder(ctx, p, last)
	}
	var due float64
	switch {
	case last != nil:
		due = last.DueHours + rh.Every
	default:
		base, ok := rh.Last[asset]
		if !ok {
			base = math.Floor(h/rh.Every) * rh.Every
		}
		due = base + rh.Every
	}
	if h < due-rh.Lead {
		return nil
	}
	// One work order for the interval the meter is in, even after a long
	// stop: skipped intervals are not separate jobs.
	for h >= due+rh.Every {
		due += rh.Every
	}
	return s.create(ctx, p, &Item{Plan: p.ID, Asset: asset, DueHours: due, Opened: now, OpenedHours: h})
}

func (s *Service) create(ctx context.Context, p *Plan, it *Item) error {
	ok, err := s.d.Store.CreatePMItem(ctx, it)
	if err != nil || !ok {
		return err
	}
	return s.openOrder(ctx, p, it)
}

func (s *Service) openOrder(ctx context.Context, p *Plan, it *Item) error {
	desc := fmt.Sprintf("计划维保 Preventive maintenance — %s", p.Name)
	if p.RunHours != nil {
		desc += fmt.Sprintf("：运行 %.0f 小时到期 due at %.0f running hours (now %.0f h)", it.DueHours, it.DueHours, it.OpenedHours)
	} else {
		desc += "：到期 due " + it.Due.In(s.loc()).Format("2006-01-02 15:04")
	}
	if p.Notes != "" {
		desc += " — " + p.Notes
	}
	w, err := s.d.Orders.Create(ctx, workorder.WorkOrder{Type: workorder.PM, Channel: "gateway", Category: p.Category, Asset: it.Asset, Priority: p.Priority, Description: desc}, By)
	if err != nil {
		return err
	}
	it.WorkOrder = w.ID
	s.d.Log.Info("PM work order opened", "plan", p.ID, "asset", it.Asset, "workorder", w.ID)
	return s.d.Store.SetPMWorkOrder(ctx, it.ID, w.ID)
}

func (s *Service) loc() *time.Location {
	if s.cfg.loc != nil {
		return s.cfg.loc
	}
	return time.Local
}

func (s *Service) plan(id string) *Plan {
	for i := range s.cfg.Plans {
		if s.cfg.Plans[i].ID == id {
			return &s.cfg.Plans[i]
		}
	}
	return nil
}

// fill computes an item's status from its work order.
func (s *Service) fill(ctx context.Context, it *Item, now time.Time) error {
	p := s.plan(it.Plan)
	var hoursNow *float64
	if p != nil && p.RunHours != nil {
		if f, ok := s.d.Telemetry.Get(it.Asset, p.RunHours.Field); ok {
			if h, ok := f.Value.AsFloat(); ok {
				hoursNow = &h
			}
		}
	}
	it.HoursNow = hoursNow
	if it.WorkOrder == 0 {
		it.Status = StatusPending
		return nil
	}
	w, _, err := s.d.OrderRead.WorkOrder(ctx, it.WorkOrder)
	if err != nil {
		return err
	}
	past := (!it.Due.IsZero() && now.After(it.Due)) || (it.DueHours > 0 && hoursNow != nil && *hoursNow > it.DueHours)
	switch {
	case w.Status == workorder.Cancelled:
		it.Status = StatusCanceled
	case !w.ResolvedAt.IsZero() || w.Status == workorder.Closed:
		it.Status, it.Done = StatusDone, w.ResolvedAt
		if !it.Due.IsZero() && !w.ResolvedAt.IsZero() {
			ok := !w.ResolvedAt.After(it.Due)
			it.OnTime = &ok
		}
	case past:
		it.Status = StatusOverdue
	default:
		it.Status = StatusUpcoming
	}
	return nil
}

// Items lists the items of a plan ("" all) opened since, newest first, with
// their status.
func (s *Service) Items(ctx context.Context, plan string, since time.Time, limit int) ([]*Item, error) {
	its, err := s.d.Store.PMItems(ctx, plan, since, limit)
	if err != nil {
		return nil, err
	}
	now := s.d.Now()
	for _, it := range its {
		if err := s.fill(ctx, it, now); err != nil {
			return nil, err
		}
	}
	return its, nil
}

// Counts are the PM figures for a period (the monthly report).
type Counts struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Opened     int       `json:"opened"`       // PM work orders opened in the period
	Done       int       `json:"done"`         // of those, done
	DoneOnTime int       `json:"done_on_time"` // done by the due day (calendar plans)
	Overdue    int       `json:"overdue"`      // open past due now
	Cancelled  int       `json:"cancelled"`
	Pending    int       `json:"pending"`
	// CompletionRate is done / (opened − cancelled); null without items.
	CompletionRate *float64 `json:"completion_rate"`
}

// Counts counts the items opened in [from, to).
func (s *Service) Counts(ctx context.Context, from, to time.Time) (*Counts, error) {
	its, err := s.Items(ctx, "", from, 10000)
	if err != nil {
		return nil, err
	}
	c := &Counts{From: from, To: to}
	for _, it := range its {
		if !it.Opened.Before(to) {
			continue
		}
		c.Opened++
		switch it.Status {
		case StatusDone:
			c.Done++
			if it.OnTime != nil && *it.OnTime {
				c.DoneOnTime++
			}
		case StatusOverdue:
			c.Overdue++
		case StatusCanceled:
			c.Cancelled++
		case StatusPending:
			c.Pending++
		}
	}
	if n := c.Opened - c.Cancelled; n > 0 {
		r := float64(c.Done) / float64(n)
		c.CompletionRate = &r
	}
	return c, nil
}

// Run ticks every 30 seconds until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	tick := func() {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.d.Log.Error("maintenance plans", "err", err)
		}
	}
	tick()
	collectors.Every(ctx, 30*time.Second, tick)
	return nil
}
