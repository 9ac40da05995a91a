package planned

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/guard"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
)

// FieldNotRecovered is the reading the service publishes on an asset that
// did not come back after planned work (true) and once it has (false); a
// rule on it raises the normal alarm (configs/demo.yaml:
// not-recovered-after-planned-work).
const FieldNotRecovered = "not_recovered"

// Source names the service's readings in the pipeline's counters.
const Source = "planned-works"

// Store keeps planned works.
type Store interface {
	// CreateWork inserts w (setting its ID); SaveWork replaces it.
	CreateWork(ctx context.Context, w *Work) error
	SaveWork(ctx context.Context, w *Work) error
	// Work is one work (rules.ErrNotFound if none).
	Work(ctx context.Context, id int64) (*Work, error)
	// Works lists works, newest start first; open: not completed or
	// cancelled; limit 0 means all.
	Works(ctx context.Context, open bool, limit int) ([]*Work, error)
}

// Points takes the service's own readings (the pipeline).
type Points interface {
	Publish(source string, pts []collectors.Point)
}

// Deps are what the service works with.
type Deps struct {
	Store     Store
	Assets    []collectors.Asset
	Telemetry playbook.Telemetry
	Points    Points             // nil: no not_recovered readings (the alarm is not raised)
	Ticks     prometheus.Counter // nil: not counted
	Guard     *guard.Guard
	Log       *slog.Logger
	Now       func() time.Time
}

// Service keeps the planned works, tags alarms (rules.Planner), follows
// the tagged alarms (rules.Observer) and checks windows and recovery.
type Service struct {
	cfg       Config
	store     Store
	assets    []collectors.Asset
	byID      map[string]collectors.Asset
	buildings map[string]bool
	telemetry playbook.Telemetry
	points    Points
	ticks     prometheus.Counter
	guard     *guard.Guard
	log       *slog.Logger
	now       func() time.Time

	write sync.Mutex // orders changes with their saves; never held by the engine's calls
	mu    sync.Mutex // guards the fields below; never held across I/O or calls out
	open  map[int64]*Work
	// active: tagged alarms still active → their work (bounded: configured alarms).
	active map[string]int64
	// tagged: alarms tagged since the last tick, to add to their work's record.
	tagged  []taggedAlarm
	alarmed map[string]bool // asset → not_recovered=true published
}

type taggedAlarm struct {
	work  int64
	alarm string
	at    time.Time
}

// maxPendingTags bounds the hand-over from the engine to the tick.
const maxPendingTags = 1024

var (
	_ rules.Planner  = (*Service)(nil)
	_ rules.Observer = (*Service)(nil)
)

// New builds the service; nothing is read until Load. cfg must have been
// validated.
func New(cfg Config, d Deps) *Service {
	cfg.SetDefaults()
	s := &Service{cfg: cfg, store: d.Store, assets: d.Assets, byID: map[string]collectors.Asset{}, buildings: map[string]bool{},
		telemetry: d.Telemetry, points: d.Points, ticks: d.Ticks, guard: d.Guard, log: d.Log, now: d.Now,
		open: map[int64]*Work{}, active: map[string]int64{}, alarmed: map[string]bool{}}
	for _, a := range d.Assets {
		s.byID[a.ID] = a
		if a.Building != "" {
			s.buildings[a.Building] = true
		}
	}
	return s
}

// NewTicks registers the service's pass counter (reg may be nil).
func NewTicks(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_planned_works_ticks_total", Help: "Passes over the planned works (windows, recovery checks)."})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// Load reads the works that are not finished.
func (s *Service) Load(ctx context.Context) error {
	ws, err := s.store.Works(ctx, true, 0)
	if err != nil {
		return fmt.Errorf("planned works: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range ws {
		s.open[w.ID] = w
		if w.Recovery != nil {
			for _, a := range w.Recovery.Alarmed {
				s.alarmed[a] = true
			}
		}
	}
	return nil
}

// Resume follows the alarms tagged planned that are still active after a
// restart (the engine's, after its Load).
func (s *Service) Resume(active []rules.Alarm) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range active {
		if a.Active && a.Planned != nil {
			s.active[a.ID] = a.Planned.Work
		}
	}
}

// Run checks the works every second until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	collectors.Every(ctx, time.Second, func() { s.guard.Do("planned-works", s.Tick) })
	return nil
}

func (s *Service) assetName(id string) string {
	if a, ok := s.byID[id]; ok && a.Name != "" {
		return a.Name
	}
	return id
}

// covers reports whether the work affects the asset.
func (w *Work) covers(a collectors.Asset) bool {
	return slices.Contains(w.Assets, a.ID) || a.Building != "" && slices.Contains(w.Buildings, a.Building)
}

// windowEnd is when the work's window closes: its end, or earlier when an
// operator said it finished.
func (w *Work) windowEnd() time.Time {
	if !w.Ended.IsZero() && w.Ended.Before(w.End) {
		return w.Ended
	}
	return w.End
}

// PlannedFor implements rules.Planner: an alarm of a rule the work's kind
// explains, on an asset it covers, activating within its window (widened
// by grace). Entrapment and fire are never planned.
func (s *Service) PlannedFor(a collectors.Asset, r *rules.Rule, at time.Time) *rules.PlannedTag {
	rule := r.ID
	if slices.Contains(s.cfg.NeverPlanned, rule) || r.Field == FieldNotRecovered {
		return nil // people trapped, fire, and the recovery alarm itself are never planned
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *Work
	for _, w := range s.open {
		if w.Status == Cancelled || w.Status == Completed || !w.covers(a) {
			continue
		}
		if at.Before(w.Start.Add(-s.cfg.Grace)) || at.After(w.windowEnd().Add(s.cfg.Grace)) {
			continue
		}
		if rs := s.cfg.Kinds[w.Kind].Rules; len(rs) > 0 && !slices.Contains(rs, rule) {
			continue
		}
		if best == nil || w.Start.Before(best.Start) || w.Start.Equal(best.Start) && w.ID < best.ID {
			best = w
		}
	}
	if best == nil {
		return nil
	}
	return &rules.PlannedTag{Work: best.ID, Title: best.Title}
}

// AlarmChanged implements rules.Observer: it follows the tagged alarms
// (for the record and the recovery check). It never blocks.
func (s *Service) AlarmChanged(a rules.Alarm, t rules.Transition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case a.Active && a.Planned != nil:
		if _, known := s.active[a.ID]; !known {
			s.active[a.ID] = a.Planned.Work
			if len(s.tagged) < maxPendingTags {
				s.tagged = append(s.tagged, taggedAlarm{a.Planned.Work, a.ID, a.ActiveSince})
			}
		}
	case !a.Active:
		delete(s.active, a.ID)
	}
}

// Create records a planned work entered by a person. Announced less than
// min_notice before the start, it is accepted with a warning, recorded.
func (s *Service) Create(ctx context.Context, req Request, by string) (*Work, error) {
	now := s.now()
	if err := req.validate(s.buildings, s.assetSet(), now); err != nil {
		return nil, err
	}
	w := &Work{Request: req, Status: Scheduled, Created: now, CreatedBy: by, Warnings: []string{}, Tagged: []string{}, Version: 1}
	w.Buildings, w.Assets = nonNil(w.Buildings), nonNil(w.Assets)
	w.log(now, by, "created", "%s %s–%s: %s", w.Title, w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339), w.Reason)
	if !w.AnnouncedAt.IsZero() {
		w.AnnouncedBy = by
		w.log(now, by, "announced", "residents told at %s (entered by %s)", w.AnnouncedAt.Format(time.RFC3339), by)
	}
	s.checkNotice(w, now, by)
	s.write.Lock()
	defer s.write.Unlock()
	if err := s.store.CreateWork(ctx, w); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.open[w.ID] = w
	c := w.clone()
	s.mu.Unlock()
	s.log.Info("planned work recorded", "work", w.ID, "kind", w.Kind, "start", w.Start, "end", w.End, "warnings", len(w.Warnings))
	return c, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Service) assetSet() map[string]bool {
	out := make(map[string]bool, len(s.byID))
	for id := range s.byID {
		out[id] = true
	}
	return out
}

// checkNotice warns when residents are (or were) told less than
// min_notice before the start.
func (s *Service) checkNotice(w *Work, now time.Time, by string) {
	told := w.AnnouncedAt
	if told.IsZero() {
		told = now // the notice can go out now at the earliest
	}
	lead := w.Start.Sub(told)
	if lead >= s.cfg.MinNotice {
		return
	}
	msg := fmt.Sprintf("提前通知不足%s：住户仅提前%s获知（标准要求提前%s通知，002；001 篇3 二.1） residents told %s ahead, less than the %s the standard asks",
		hours(s.cfg.MinNotice), hours(lead), hours(s.cfg.MinNotice), hoursEN(lead), hoursEN(s.cfg.MinNotice))
	if lead <= 0 {
		msg = fmt.Sprintf("未提前通知：开始后才通知住户（标准要求提前%s通知） residents told only after the start; the standard asks %s ahead", hours(s.cfg.MinNotice), hoursEN(s.cfg.MinNotice))
	}
	w.Warnings = append(w.Warnings, msg)
	w.log(now, by, "warning", "%s", msg)
	s.log.Warn("planned work announced late", "work", w.ID, "lead", lead.Round(time.Minute), "min_notice", s.cfg.MinNotice)
}

// hours writes a lead time the way the notice's readers count: "25小时",
// "2小时30分".
func hours(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case m == 0:
		return fmt.Sprintf("%d小时", h)
	case h == 0:
		return fmt.Sprintf("%d分钟", m)
	}
	return fmt.Sprintf("%d小时%d分", h, m)
}

// hoursEN is a lead time in English: "2h", "2h30m".
func hoursEN(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return strings.TrimSuffix(strings.TrimSuffix(d.Round(time.Minute).String(), "0s"), "0m")
}

// Announce records when residents were told (the notice posted in the
// WeChat group and on the boards); at zero means now.
func (s *Service) Announce(ctx context.Context, id int64, at time.Time, by string) (*Work, error) {
	now := s.now()
	if at.IsZero() {
		at = now
	}
	return s.change(ctx, id, func(w *Work) error {
		if w.Status.Closed() {
			return invalid("work %d is %s", id, w.Status)
		}
		if at.After(now.Add(time.Minute)) {
			return invalid(`"at" is in the future: record the notice when it has been posted`)
		}
		w.AnnouncedAt, w.AnnouncedBy = at, by
		w.log(now, by, "announced", "residents told at %s", at.Format(time.RFC3339))
		w.Warnings = w.Warnings[:0]
		s.checkNotice(w, now, by)
		return nil
	})
}

// Cancel calls a work off before it ends.
func (s *Service) Cancel(ctx context.Context, id int64, by, note string) (*Work, error) {
	if strings.TrimSpace(note) == "" {
		return nil, invalid("a cancellation needs a note saying why")
	}
	return s.change(ctx, id, func(w *Work) error {
		if w.Status != Scheduled && w.Status != InProgress {
			return invalid("work %d is %s: only scheduled or running work is cancelled", id, w.Status)
		}
		w.Status = Cancelled
		w.log(s.now(), by, "cancelled", "%s", note)
		return nil
	})
}

// Finish says the work ended before its expected end: the recovery check
// starts now.
func (s *Service) Finish(ctx context.Context, id int64, by, note string) (*Work, error) {
	return s.change(ctx, id, func(w *Work) error {
		if w.Status != InProgress {
			return invalid("work %d is %s: only running work is finished", id, w.Status)
		}
		now := s.now()
		w.Status, w.Ended = Verifying, now
		w.log(now, by, "finished", "work finished%s; checking supply, pumps and lifts", suffix(note))
		return nil
	})
}

func suffix(note string) string {
	if strings.TrimSpace(note) == "" {
		return ""
	}
	return ": " + note
}

// change applies fn to an open work and saves it.
func (s *Service) change(ctx context.Context, id int64, fn func(w *Work) error) (*Work, error) {
	s.write.Lock()
	defer s.write.Unlock()
	s.mu.Lock()
	w, ok := s.open[id]
	if !ok {
		s.mu.Unlock()
		if _, err := s.store.Work(ctx, id); err != nil {
			return nil, err
		}
		return nil, invalid("work %d is finished", id)
	}
	before := w.clone()
	if err := fn(w); err != nil {
		*w = *before
		s.mu.Unlock()
		return nil, err
	}
	w.Version++
	c := w.clone()
	if w.Status.Closed() {
		delete(s.open, id)
	}
	s.mu.Unlock()
	if err := s.store.SaveWork(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Work is one work.
func (s *Service) Work(ctx context.Context, id int64) (*Work, error) {
	s.mu.Lock()
	if w, ok := s.open[id]; ok {
		c := w.clone()
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	return s.store.Work(ctx, id)
}

// Works lists works, newest start first (at most 500).
func (s *Service) Works(ctx context.Context, open bool) ([]*Work, error) {
	return s.store.Works(ctx, open, 500)
}

// Notice is the residents' notice of a work.
func (s *Service) Notice(ctx context.Context, id int64) (Notice, error) {
	w, err := s.Work(ctx, id)
	if err != nil {
		return Notice{}, err
	}
	return s.notice(w), nil
}

// Tick moves works through their windows, records tagged alarms and
// checks recovery after the end.
func (s *Service) Tick() {
	s.write.Lock()
	defer s.write.Unlock()
	now := s.now()
	var saves []*Work
	var pts []collectors.Point
	s.mu.Lock()
	tagged := s.tagged
	s.tagged = nil
	for _, w := range s.open {
		changed := false
		for _, t := range tagged {
			if t.work == w.ID && !slices.Contains(w.Tagged, t.alarm) && len(w.Tagged) < maxList {
				w.Tagged = append(w.Tagged, t.alarm)
				w.log(now, rules.ByEngine, "tagged", "%s active since %s: planned work, annunciated quietly (nobody paged, no emergency plan, no fault work order)", t.alarm, t.at.Format("15:04:05"))
				changed = true
			}
		}
		if w.Status == Scheduled && !now.Before(w.Start) {
			w.Status, w.Started = InProgress, now
			w.log(now, rules.ByEngine, "started", "window started (%s until %s)", w.Kind.ZH(), w.End.Format("15:04"))
			changed = true
		}
		if w.Status == InProgress && !now.Before(w.End) {
			w.Status, w.Ended = Verifying, w.End
			w.log(now, rules.ByEngine, "ended", "window ended; checking supply, pumps and lifts")
			changed = true
		}
		if w.Status == Verifying || w.Status == NotRecovered {
			c, p := s.verify(w, now)
			changed = changed || c
			pts = append(pts, p...)
		}
		if changed {
			w.Version++
			saves = append(saves, w.clone())
			if w.Status.Closed() {
				delete(s.open, w.ID)
			}
		}
	}
	s.mu.Unlock()
	if len(pts) > 0 && s.points != nil {
		s.points.Publish(Source, pts) // the engine raises or clears the not-recovered alarms
	}
	for _, w := range saves {
		if err := s.store.SaveWork(context.Background(), w); err != nil {
			s.log.Error("saving planned work failed", "work", w.ID, "err", err)
		}
	}
	if s.ticks != nil {
		s.ticks.Inc()
	}
}

// verify checks what must be back after the work (mu held). Everything
// back: completed. Not back within recovery_within: not recovered, and
// not_recovered=true is published on each asset that is not back (a normal
// alarm, paged and with a work order as the rule says); false again once
// it is.
func (s *Service) verify(w *Work, now time.Time) (bool, []collectors.Point) {
	missing, assets := s.missing(w)
	if w.Recovery == nil {
		w.Recovery = &Recovery{}
	}
	w.Recovery.Checked = now
	var pts []collectors.Point
	point := func(asset string, v bool) {
		pts = append(pts, collectors.Point{Asset: asset, Field: FieldNotRecovered, Value: collectors.Bool(v), Quality: collectors.QualityGood, Time: now})
	}
	changed := !slices.Equal(missing, w.Recovery.Missing)
	w.Recovery.Missing = missing
	// Assets alarmed before and back now are cleared.
	var still []string
	for _, a := range w.Recovery.Alarmed {
		if slices.Contains(assets, a) {
			still = append(still, a)
			point(a, true) // kept fresh (stale_after)
			continue
		}
		delete(s.alarmed, a)
		point(a, false)
		w.log(now, rules.ByEngine, "recovered", "%s back", a)
		changed = true
	}
	w.Recovery.Alarmed = still
	if len(missing) == 0 {
		w.Status = Completed
		w.Recovery.Recovered = now
		w.log(now, rules.ByEngine, "recovered", "恢复正常 everything is back: supply, pumps and lifts checked from telemetry")
		s.log.Info("planned work: recovery verified", "work", w.ID)
		return true, pts
	}
	if w.Status == Verifying && !now.Before(w.windowEnd().Add(s.cfg.RecoveryWithin)) {
		w.Status = NotRecovered
		w.log(now, rules.ByEngine, "not_recovered", "未恢复 not back %s after the end: %s", s.cfg.RecoveryWithin, strings.Join(missing, "; "))
		s.log.Warn("planned work: not recovered after the end", "work", w.ID, "missing", strings.Join(missing, "; "))
		changed = true
	}
	if w.Status == NotRecovered {
		for _, a := range assets {
			if !slices.Contains(w.Recovery.Alarmed, a) {
				w.Recovery.Alarmed = append(w.Recovery.Alarmed, a)
				s.alarmed[a] = true
				point(a, true)
				w.log(now, rules.ByEngine, "not_recovered", "%s not back: %s=true raises its alarm", a, FieldNotRecovered)
				changed = true
			}
		}
	}
	return changed, pts
}

// missing lists what is not back: each recovery condition of the work's
// kind on every covered asset of its kind, and the work's tagged alarms
// still active. assets are the assets concerned (sorted).
func (s *Service) missing(w *Work) (missing, assets []string) {
	seen := map[string]bool{}
	for _, c := range s.cfg.Kinds[w.Kind].Recovery {
		for _, a := range s.assets {
			if string(a.Kind) != c.Kind || !w.covers(a) {
				continue
			}
			if ok, ev := c.HoldsOn(a.ID, s.telemetry); !ok {
				missing = append(missing, ev)
				seen[a.ID] = true
			}
		}
	}
	for alarm, work := range s.active {
		if work == w.ID {
			missing = append(missing, "alarm "+alarm+" still active")
			if asset, ok := alarmAsset(alarm); ok {
				seen[asset] = true
			}
		}
	}
	sort.Strings(missing)
	for a := range seen {
		assets = append(assets, a)
	}
	sort.Strings(assets)
	return missing, assets
}

// alarmAsset is the asset of an alarm id ("rule:asset").
func alarmAsset(id string) (string, bool) {
	_, a, ok := strings.Cut(id, ":")
	return a, ok
}

// InProgress is what the wall shows: the works in their window or being
// verified, without the people (ForViewer).
func (s *Service) InProgress() []*Work {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Work
	for _, w := range s.open {
		out = append(out, w.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}
