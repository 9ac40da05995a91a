package inspection

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

// Field is the derived reading published on each route's asset: rounds
// missed and not yet entered late or closed.
const Field = "inspections_missed"

// Source is the collector name the inspections publish under.
const Source = "inspection"

// Store keeps rounds (internal/store/sqlite).
type Store interface {
	CreateRound(ctx context.Context, r *Round) error
	// SaveRound saves r if the stored version is r.Version-1, else ErrConflict.
	SaveRound(ctx context.Context, r *Round) error
	Round(ctx context.Context, id int64) (*Round, error) // ErrNotFound
	Rounds(ctx context.Context, f RoundFilter) ([]*Round, error)
	// Cursor is the last time the route's schedule was looked at.
	Cursor(ctx context.Context, route string) (time.Time, bool, error)
	SetCursor(ctx context.Context, route string, at time.Time) error
	SavePhoto(ctx context.Context, round int64, checkpoint, item, mime string, data []byte) error
	Photo(ctx context.Context, round int64, checkpoint, item string) (mime string, data []byte, err error)
}

// Readings reads live values (collectors.State).
type Readings interface {
	Get(asset, field string) (collectors.FieldState, bool)
}

// WorkOrders opens work orders for abnormal items (the work-order service).
type WorkOrders interface {
	Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error)
}

// Service opens rounds on their schedules, records entries and reports
// missed rounds.
type Service struct {
	cfg    Config
	store  Store
	tel    Readings
	orders WorkOrders
	sink   collectors.Sink
	assets map[string]collectors.Asset
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex     // one change at a time
	missed map[string]int // by route; bounded by the configured routes
}

// Deps are what the service uses.
type Deps struct {
	Store      Store
	Telemetry  Readings
	WorkOrders WorkOrders
	Sink       collectors.Sink // the pipeline, for inspections_missed and night_unlit; nil: not published
	Log        *slog.Logger
	Now        func() time.Time
}

// NewService builds the service; nothing runs until Run.
func NewService(cfg Config, assets []collectors.Asset, d Deps) *Service {
	cfg.SetDefaults()
	s := &Service{cfg: cfg, store: d.Store, tel: d.Telemetry, orders: d.WorkOrders, sink: d.Sink, assets: map[string]collectors.Asset{},
		log: d.Log, now: d.Now, missed: map[string]int{}}
	for _, a := range assets {
		s.assets[a.ID] = a
	}
	return s
}

// Routes are the configured routes.
func (s *Service) Routes() []Route { return s.cfg.Routes }

func (s *Service) route(id string) (*Route, bool) {
	for i := range s.cfg.Routes {
		if s.cfg.Routes[i].ID == id {
			return &s.cfg.Routes[i], true
		}
	}
	return nil, false
}

func (s *Service) checkpoint(route, cp string) (*Checkpoint, bool) {
	r, ok := s.route(route)
	if !ok {
		return nil, false
	}
	for i := range r.Checkpoints {
		if r.Checkpoints[i].ID == cp {
			return &r.Checkpoints[i], true
		}
	}
	return nil, false
}

// Load counts the missed rounds (so the alarm survives a restart).
func (s *Service) Load(ctx context.Context) error {
	rs, err := s.store.Rounds(ctx, RoundFilter{Status: StatusMissed, Limit: 10000})
	if err != nil {
		return fmt.Errorf("inspections: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.missed)
	for _, r := range rs {
		if _, ok := s.route(r.Route); ok {
			s.missed[r.Route]++
		}
	}
	return nil
}

// maxCatchUp bounds the rounds created for one route in one tick (after a
// long stop the gateway records the ones it slept through, not years).
const maxCatchUp = 100

// Tick opens the rounds whose time has come, marks rounds past their
// window missed, and publishes the missed counts.
func (s *Service) Tick(ctx context.Context) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i := range s.cfg.Routes {
		r := &s.cfg.Routes[i]
		if err := s.open(ctx, r, now); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.ID, err))
		}
	}
	open, err := s.store.Rounds(ctx, RoundFilter{Status: StatusOpen, Limit: 10000})
	if err != nil {
		errs = append(errs, err)
	}
	for _, rd := range open {
		if now.Before(rd.Due) {
			continue
		}
		rd.Status = StatusMissed
		rd.Version++
		if err := s.store.SaveRound(ctx, rd); err != nil {
			errs = append(errs, err)
			continue
		}
		s.missed[rd.Route]++
		s.log.Warn("inspection round missed", "route", rd.Route, "round", rd.ID, "scheduled", rd.Scheduled, "due", rd.Due)
	}
	s.publish(now)
	return errors.Join(errs...)
}

func (s *Service) open(ctx context.Context, r *Route, now time.Time) error {
	sched, err := s.cfg.schedule(r)
	if err != nil {
		return err
	}
	cur, ok, err := s.store.Cursor(ctx, r.ID)
	if err != nil {
		return err
	}
	if !ok { // a new route: its schedule starts now, nothing before
		return s.store.SetCursor(ctx, r.ID, now)
	}
	last := cur
	for n, next := 0, sched.Next(cur); !next.After(now) && n < maxCatchUp; n, next = n+1, sched.Next(next) {
		rd := &Round{Route: r.ID, Name: r.Name, Scheduled: next, Due: next.Add(r.Window), Status: StatusOpen, Results: []CheckpointResult{}, Version: 1}
		if err := s.store.CreateRound(ctx, rd); err != nil {
			return err
		}
		s.log.Info("inspection round opened", "route", r.ID, "round", rd.ID, "scheduled", next, "due", rd.Due)
		last = next
	}
	if !last.Equal(cur) {
		return s.store.SetCursor(ctx, r.ID, last)
	}
	return nil
}

func (s *Service) publish(now time.Time) {
	if s.sink == nil {
		return
	}
	per := map[string]int64{}
	for _, r := range s.cfg.Routes {
		per[r.Asset] += int64(s.missed[r.ID])
	}
	pts := make([]collectors.Point, 0, len(per))
	for a, n := range per {
		pts = append(pts, collectors.Point{Asset: a, Kind: s.assets[a].Kind, Field: Field, Value: collectors.Int(n), Quality: collectors.QualityGood, Time: now})
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Asset < pts[j].Asset })
	s.sink.Publish(Source, pts)
}

// Start opens a round by hand (an extra round, e.g. before a storm).
func (s *Service) Start(ctx context.Context, route, by string) (*Round, error) {
	r, ok := s.route(route)
	if !ok {
		return nil, fmt.Errorf("route %q: %w", route, ErrNotFound)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rd := &Round{Route: r.ID, Name: r.Name, Scheduled: now, Due: now.Add(r.Window), Status: StatusOpen, AdHoc: true, Results: []CheckpointResult{},
		Note: "started by " + by, Version: 1}
	if err := s.store.CreateRound(ctx, rd); err != nil {
		return nil, err
	}
	return rd, nil
}

// Rounds lists rounds, newest first.
func (s *Service) Rounds(ctx context.Context, f RoundFilter) ([]*Round, error) {
	return s.store.Rounds(ctx, f)
}

// Round reads one round.
func (s *Service) Round(ctx context.Context, id int64) (*Round, error) { return s.store.Round(ctx, id) }

// Prefill is a checkpoint as the inspector sees it: its items with the live
// readings that verify them.
type Prefill struct {
	Route      string            `json:"route"`
	RouteName  string            `json:"route_name"`
	Checkpoint Checkpoint        `json:"checkpoint"`
	Round      *Round            `json:"round,omitempty"` // the route's open (or missed) round, if any
	Telemetry  map[string]any    `json:"telemetry"`       // item id → live value
	Quality    map[string]string `json:"quality"`
	Suggested  map[string]any    `json:"suggested"` // item id → the entry the live reading suggests (the pre-filled answer)
}

// Checkpoint is what a scanned code (or the console) opens.
func (s *Service) Checkpoint(ctx context.Context, route, cp string) (*Prefill, error) {
	r, ok := s.route(route)
	if !ok {
		return nil, fmt.Errorf("route %q: %w", route, ErrNotFound)
	}
	c, ok := s.checkpoint(route, cp)
	if !ok {
		return nil, fmt.Errorf("checkpoint %q: %w", cp, ErrNotFound)
	}
	p := &Prefill{Route: r.ID, RouteName: r.Name, Checkpoint: *c, Telemetry: map[string]any{}, Quality: map[string]string{}, Suggested: map[string]any{}}
	for _, it := range c.Items {
		if it.Telemetry == nil {
			continue
		}
		f, ok := s.tel.Get(it.Telemetry.Asset, it.Telemetry.Field)
		if !ok {
			continue
		}
		p.Telemetry[it.ID] = f.Value
		p.Quality[it.ID] = f.Quality.String()
		if v, num := f.Value.AsFloat(); num && f.Quality == collectors.QualityGood {
			if it.Kind == KindYesNo {
				p.Suggested[it.ID] = (v != 0) != it.Telemetry.Invert
			} else {
				p.Suggested[it.ID] = v
			}
		}
	}
	for _, st := range []string{StatusOpen, StatusMissed} {
		rs, err := s.store.Rounds(ctx, RoundFilter{Route: route, Status: st, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(rs) > 0 {
			p.Round = rs[0]
			break
		}
	}
	return p, nil
}

// Submit records one checkpoint of a round. A checkpoint entered again
// replaces the earlier entry (recorded anew with its time). Readings and
// yes/no items verified by telemetry are flagged when the entry disagrees;
// abnormal items open a work order each.
func (s *Service) Submit(ctx context.Context, id int64, e Entry, by string) (*Round, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rd, err := s.store.Round(ctx, id)
	if err != nil {
		return nil, err
	}
	if rd.Status != StatusOpen && rd.Status != StatusMissed {
		return nil, fmt.Errorf("round %d is %s: %w", id, rd.Status, ErrClosed)
	}
	r, ok := s.route(rd.Route)
	if !ok {
		return nil, fmt.Errorf("route %q is no longer configured: %w", rd.Route, ErrClosed)
	}
	cp, ok := s.checkpoint(rd.Route, e.Checkpoint)
	if !ok {
		return nil, fmt.Errorf("checkpoint %q is not on route %s: %w", e.Checkpoint, rd.Route, ErrInvalid)
	}
	checkIn := "manual"
	if e.Code != "" {
		rt, c, err := s.ParseCode(e.Code)
		if err != nil || rt != rd.Route || c != cp.ID {
			return nil, fmt.Errorf("the scanned code is not checkpoint %s of route %s: %w", cp.ID, rd.Route, ErrBadCode)
		}
		checkIn = "qr"
	}
	now := s.now()
	res := CheckpointResult{Checkpoint: cp.ID, CheckIn: checkIn, At: now, By: by, Items: []ItemResult{}}
	given := map[string]EntryItem{}
	for _, ei := range e.Items {
		if _, dup := given[ei.Item]; dup {
			return nil, fmt.Errorf("item %q is entered twice: %w", ei.Item, ErrInvalid)
		}
		given[ei.Item] = ei
	}
	type photo struct {
		item, mime string
		data       []byte
	}
	var photos []photo
	for _, it := range cp.Items {
		ei := given[it.ID]
		delete(given, it.ID)
		ir := ItemResult{Item: it.ID}
		if utf8.RuneCountInString(ei.Text) > 1000 {
			return nil, fmt.Errorf("item %s: the note is longer than 1000 characters: %w", it.ID, ErrInvalid)
		}
		ir.Text = ei.Text
		switch it.Kind {
		case KindReading:
			if ei.Reading == nil {
				if it.Optional {
					break
				}
				return nil, fmt.Errorf("item %s (%s): a reading is required: %w", it.ID, it.Label, ErrInvalid)
			}
			if math.IsNaN(*ei.Reading) || math.IsInf(*ei.Reading, 0) {
				return nil, fmt.Errorf("item %s (%s): not a number: %w", it.ID, it.Label, ErrInvalid)
			}
			v := *ei.Reading
			ir.Reading = &v
			ir.Abnormal = (it.Min != nil && v < *it.Min) || (it.Max != nil && v > *it.Max)
		case KindYesNo:
			if ei.Yes == nil {
				if it.Optional {
					break
				}
				return nil, fmt.Errorf("item %s (%s): answer yes or no: %w", it.ID, it.Label, ErrInvalid)
			}
			v := *ei.Yes
			ir.Yes = &v
			ir.Abnormal = it.Expect != nil && v != *it.Expect
		case KindPhoto:
			if ei.Photo == "" {
				if it.Optional {
					break
				}
				return nil, fmt.Errorf("item %s (%s): a photo is required: %w", it.ID, it.Label, ErrInvalid)
			}
			mime, data, err := decodePhoto(ei.Photo)
			if err != nil {
				return nil, fmt.Errorf("item %s: %w: %w", it.ID, err, ErrInvalid)
			}
			photos = append(photos, photo{it.ID, mime, data})
			ir.Photo = fmt.Sprintf("/api/v1/inspections/%d/photos/%s/%s", rd.ID, cp.ID, it.ID)
		case KindNote:
			if ei.Text == "" && !it.Optional {
				return nil, fmt.Errorf("item %s (%s): a note is required: %w", it.ID, it.Label, ErrInvalid)
			}
		}
		if t := it.Telemetry; t != nil && (ir.Reading != nil || ir.Yes != nil) {
			if f, ok := s.tel.Get(t.Asset, t.Field); ok && f.Quality == collectors.QualityGood {
				v := f.Value
				ir.Telemetry = &v
				ir.Flagged = disagrees(ir, v, *t)
			}
		}
		res.Items = append(res.Items, ir)
	}
	for id := range given {
		return nil, fmt.Errorf("item %q is not on checkpoint %s: %w", id, cp.ID, ErrInvalid)
	}
	for _, p := range photos {
		if err := s.store.SavePhoto(ctx, rd.ID, cp.ID, p.item, p.mime, p.data); err != nil {
			return nil, err
		}
	}
	// Work orders for abnormal items (not again for one already opened in
	// an earlier entry of the same checkpoint).
	prev := map[string]int64{}
	kept := rd.Results[:0]
	for _, old := range rd.Results {
		if old.Checkpoint == cp.ID {
			for _, it := range old.Items {
				if it.WorkOrder != 0 {
					prev[it.Item] = it.WorkOrder
				}
			}
			continue
		}
		kept = append(kept, old)
	}
	for i := range res.Items {
		ir := &res.Items[i]
		if !ir.Abnormal {
			continue
		}
		if w, ok := prev[ir.Item]; ok {
			ir.WorkOrder = w
			continue
		}
		w, err := s.orders.Create(ctx, s.abnormalOrder(r, cp, ir), by)
		if err != nil {
			s.log.Error("inspection: work order for an abnormal item", "round", rd.ID, "item", ir.Item, "err", err)
			continue
		}
		ir.WorkOrder = w.ID
	}
	rd.Results = append(kept, res)
	rd.Abnormal, rd.Flagged = 0, 0
	for _, c := range rd.Results {
		for _, it := range c.Items {
			if it.Abnormal {
				rd.Abnormal++
			}
			if it.Flagged {
				rd.Flagged++
			}
		}
	}
	wasMissed := rd.Status == StatusMissed
	if len(rd.Results) == len(r.Checkpoints) {
		rd.Status, rd.Completed, rd.Late = StatusDone, now, now.After(rd.Due)
		if wasMissed && s.missed[rd.Route] > 0 {
			s.missed[rd.Route]--
		}
	}
	rd.Version++
	if err := s.store.SaveRound(ctx, rd); err != nil {
		return nil, err
	}
	if wasMissed && rd.Status == StatusDone {
		s.publish(now)
	}
	return rd, nil
}

func (s *Service) abnormalOrder(r *Route, cp *Checkpoint, ir *ItemResult) workorder.WorkOrder {
	var it Item
	for _, x := range cp.Items {
		if x.ID == ir.Item {
			it = x
		}
	}
	what := ""
	switch {
	case ir.Reading != nil:
		what = fmt.Sprintf("读数 reading %g%s", *ir.Reading, it.Unit)
	case ir.Yes != nil && *ir.Yes:
		what = "是 yes"
	case ir.Yes != nil:
		what = "否 no"
	}
	desc := fmt.Sprintf("巡检异常 Inspection finding — %s / %s: %s: %s", r.Name, cp.Name, it.Label, what)
	if ir.Text != "" {
		desc += " — " + ir.Text
	}
	w := workorder.WorkOrder{Type: workorder.Fault, Channel: "gateway", Category: r.Category, Priority: rules.Medium, Description: desc, Location: cp.Location}
	if it.Telemetry != nil {
		w.Asset = it.Telemetry.Asset
	} else {
		w.Asset = r.Asset
	}
	if w.Location == "" {
		if a, ok := s.assets[w.Asset]; ok {
			w.Location = rules.Location(a)
		}
	}
	return w
}

// disagrees: the inspector's entry and the live reading differ (beyond the
// tolerance, for numbers).
func disagrees(ir ItemResult, v collectors.Value, t Telemetry) bool {
	f, ok := v.AsFloat()
	if !ok {
		return false
	}
	if ir.Yes != nil {
		return ((f != 0) != t.Invert) != *ir.Yes
	}
	return math.Abs(f-*ir.Reading) > t.Tolerance
}

func decodePhoto(s string) (string, []byte, error) {
	for _, mime := range []string{"image/jpeg", "image/png", "image/webp"} {
		if p := "data:" + mime + ";base64,"; strings.HasPrefix(s, p) {
			if base64.StdEncoding.DecodedLen(len(s)-len(p)) > MaxPhotoBytes+3 {
				return "", nil, fmt.Errorf("the photo is larger than %d KB", MaxPhotoBytes>>10)
			}
			b, err := base64.StdEncoding.DecodeString(s[len(p):])
			if err != nil {
				return "", nil, errors.New("the photo is not valid base64")
			}
			return mime, b, nil
		}
	}
	return "", nil, errors.New("a photo is a data:image/jpeg (png, webp);base64,… URL")
}

// Close closes a missed round with the reason (the alarm then clears).
func (s *Service) Close(ctx context.Context, id int64, by, note string) (*Round, error) {
	if strings.TrimSpace(note) == "" {
		return nil, fmt.Errorf("a reason is required (note): %w", ErrInvalid)
	}
	if utf8.RuneCountInString(note) > 1000 {
		return nil, fmt.Errorf("the note is longer than 1000 characters: %w", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rd, err := s.store.Round(ctx, id)
	if err != nil {
		return nil, err
	}
	if rd.Status != StatusMissed && rd.Status != StatusOpen {
		return nil, fmt.Errorf("round %d is %s: %w", id, rd.Status, ErrClosed)
	}
	was := rd.Status
	rd.Status, rd.ClosedBy, rd.Note, rd.Completed = StatusClosed, by, note, s.now()
	rd.Version++
	if err := s.store.SaveRound(ctx, rd); err != nil {
		return nil, err
	}
	if was == StatusMissed && s.missed[rd.Route] > 0 {
		s.missed[rd.Route]--
		s.publish(s.now())
	}
	return rd, nil
}

// Photo reads a stored photo.
func (s *Service) Photo(ctx context.Context, id int64, cp, item string) (string, []byte, error) {
	return s.store.Photo(ctx, id, cp, item)
}

// Run ticks every 10 seconds until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	tick := func() {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("inspections", "err", err)
		}
	}
	tick()
	collectors.Every(ctx, 10*time.Second, tick)
	return nil
}
