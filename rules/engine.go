package rules

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Config is the rules: section.
type Config struct {
	Database     string         `yaml:"database"`      // SQLite file; default data/gateway.db
	ReopenWindow time.Duration  `yaml:"reopen_window"` // a fault back within this reopens its work order; default 24h
	SLA          SLA            `yaml:"sla"`
	Webhook      *WebhookConfig `yaml:"webhook"`
	Rules        []Rule         `yaml:"rules"`
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.Database == "" {
		c.Database = "data/gateway.db"
	}
	if c.ReopenWindow == 0 {
		c.ReopenWindow = 24 * time.Hour
	}
	c.SLA.SetDefaults()
	if c.Webhook != nil {
		c.Webhook.SetDefaults()
	}
	for i := range c.Rules {
		c.Rules[i].SetDefaults()
	}
}

// Validate checks the section; assets are the declared ones, for targets.
func (c *Config) Validate(assets []collectors.Asset) error {
	ids := map[string]int{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if err := r.Validate(); err != nil {
			return cfgerr.Prefix(fmt.Sprintf("rules[%d]", i), err)
		}
		if j, dup := ids[r.ID]; dup {
			return cfgerr.Errorf(fmt.Sprintf("rules[%d].id", i), "%q is already used by rules[%d]", r.ID, j)
		}
		ids[r.ID] = i
		n := 0
		for _, a := range assets {
			if r.Target.matches(a) {
				n++
			}
		}
		if n == 0 {
			return cfgerr.Errorf(fmt.Sprintf("rules[%d].target", i), "matches no declared asset; fix: check the asset id, kind, building or floor")
		}
	}
	for i, r := range c.Rules {
		for j, s := range r.SuppressedBy {
			if _, ok := ids[s.Rule]; !ok {
				return cfgerr.Errorf(fmt.Sprintf("rules[%d].suppressed_by[%d].rule", i, j), "%q is not a rule id", s.Rule)
			}
		}
	}
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

// inst is one rule applied to one asset.
type inst struct {
	rule     *Rule
	asset    collectors.Asset
	alarm    *Alarm
	prev     sample
	lastSeen time.Time
}

// Engine evaluates rules on every point and on a clock.
type Engine struct {
	cfg   Config
	store Store
	bus   *Bus
	log   *slog.Logger
	now   func() time.Time

	mu          sync.Mutex
	assets      map[string]collectors.Asset
	index       map[string]map[string][]*inst // asset → field → instances
	insts       []*inst
	byAlarm     map[string]*inst
	byRule      map[string][]*inst
	nextSLA     time.Time
	storeErrors int
}

var _ collectors.Processor = (*Engine)(nil)

// NewEngine builds the engine; nothing is read until Load.
func NewEngine(cfg Config, assets []collectors.Asset, store Store, bus *Bus, log *slog.Logger, now func() time.Time) *Engine {
	cfg.SetDefaults()
	e := &Engine{cfg: cfg, store: store, bus: bus, log: log, now: now, assets: map[string]collectors.Asset{},
		index: map[string]map[string][]*inst{}, byAlarm: map[string]*inst{}, byRule: map[string][]*inst{}}
	for _, a := range assets {
		e.assets[a.ID] = a
	}
	for i := range e.cfg.Rules {
		r := &e.cfg.Rules[i]
		for _, a := range assets {
			if !r.Target.matches(a) {
				continue
			}
			id := r.ID + ":" + a.ID
			in := &inst{rule: r, asset: a, alarm: &Alarm{ID: id, Rule: r.ID, Asset: a.ID, State: StateNormal, Acked: true}}
			e.insts = append(e.insts, in)
			e.byAlarm[id] = in
			e.byRule[r.ID] = append(e.byRule[r.ID], in)
			if e.index[a.ID] == nil {
				e.index[a.ID] = map[string][]*inst{}
			}
			e.index[a.ID][r.Field] = append(e.index[a.ID][r.Field], in)
		}
	}
	return e
}

// Load restores alarms (with their running delays and shelving) from the store.
func (e *Engine) Load(ctx context.Context) error {
	saved, err := e.store.LoadAlarms(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, a := range saved {
		if in, ok := e.byAlarm[a.ID]; ok {
			in.alarm = a
		}
	}
	for _, in := range e.insts {
		in.lastSeen = now // a silent sensor alarms no_data after the gateway has been up that long
		r := in.rule
		a := in.alarm
		a.Name, a.NameZH, a.Priority, a.Category, a.Instructions = r.Name, r.NameZH, r.Priority, r.Category, r.Instructions
	}
	e.nextSLA = now
	return nil
}

// facts is what must be persisted for an alarm to resume after a crash.
type facts struct {
	state                                 AlarmState
	active, acked, oos, suppressed, chatt bool
	pending, clear, shelved               time.Time
}

func factsOf(a *Alarm) facts {
	return facts{a.State, a.Active, a.Acked, a.OutOfService, a.Suppressed, a.Chattering, a.PendingSince, a.ClearSince, a.ShelvedUntil}
}

// Process implements collectors.Processor: every accepted point.
func (e *Engine) Process(pts []collectors.Point) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for i := range pts {
		p := &pts[i]
		for _, in := range e.index[p.Asset][p.Field] {
			before := factsOf(in.alarm)
			r := in.rule
			var tr []Transition
			if r.NoData > 0 {
				if p.Quality == collectors.QualityGood {
					in.lastSeen = now
					tr = in.alarm.Observe(false, p.Value, now, r)
				}
			} else {
				e.applySuppression(in, now)
				cond, ok := r.evaluate(p, in.alarm.Active, &in.prev)
				if !ok {
					continue
				}
				tr = in.alarm.Observe(cond, p.Value, now, r)
			}
			e.commit(in, before, tr, now)
		}
	}
}

// Tick applies delays, no-data timeouts, shelving expiry, suppression and
// SLA deadlines as time passes; the gateway calls it every second.
func (e *Engine) Tick() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, in := range e.insts {
		before := factsOf(in.alarm)
		var tr []Transition
		tr = append(tr, e.applySuppression(in, now)...)
		if in.rule.NoData > 0 && now.Sub(in.lastSeen) > in.rule.NoData {
			tr = append(tr, in.alarm.Observe(true, collectors.String("no data since "+in.lastSeen.Format(time.RFC3339)), now, in.rule)...)
		} else {
			tr = append(tr, in.alarm.Tick(now, in.rule)...)
		}
		e.commit(in, before, tr, now)
	}
	if !now.Before(e.nextSLA) {
		e.nextSLA = now.Add(10 * time.Second)
		e.checkSLA(now)
	}
}

// applySuppression sets the suppressed flag from the suppressing rules.
func (e *Engine) applySuppression(in *inst, now time.Time) []Transition {
	if len(in.rule.SuppressedBy) == 0 {
		return nil
	}
	var cause string
	for _, s := range in.rule.SuppressedBy {
		for _, other := range e.byRule[s.Rule] {
			if !other.alarm.Active {
				continue
			}
			if s.Scope == "site" || (s.Scope == "asset" && other.asset.ID == in.asset.ID) ||
				(s.Scope == "building" && other.asset.Building == in.asset.Building) {
				cause = other.alarm.ID
				break
			}
		}
	}
	if cause == "" {
		return in.alarm.SetSuppressed(false, now, "no suppressing alarm active")
	}
	return in.alarm.SetSuppressed(true, now, cause)
}

// commit persists what changed, publishes events and opens work orders.
func (e *Engine) commit(in *inst, before facts, tr []Transition, now time.Time) {
	if len(tr) == 0 && factsOf(in.alarm) == before {
		return
	}
	in.alarm.render()
	if err := e.store.SaveAlarm(context.Background(), in.alarm, tr); err != nil {
		e.storeErrors++
		e.log.Error("saving alarm failed; its state lives in memory until the next change", "alarm", in.alarm.ID, "err", err)
	}
	for _, t := range tr {
		a := *in.alarm
		t := t
		e.bus.Publish(Event{Type: EventAlarm, At: t.At, Alarm: &a, Transition: &t})
		if t.To == StateUnacked && (t.From == StateNormal || t.From == StateRTNUnacked) {
			e.log.Warn("alarm", "alarm", a.ID, "priority", a.Priority, "value", a.Value, "asset", a.Asset)
			if in.rule.WorkOrder != nil {
				if err := e.workOrderForAlarm(in, now); err != nil {
					e.log.Error("work order for alarm failed", "alarm", a.ID, "err", err)
				}
			}
		}
	}
}

// workOrderForAlarm opens a work order for a firing rule, or appends to the
// open one for the same rule and asset, or reopens one resolved recently.
func (e *Engine) workOrderForAlarm(in *inst, now time.Time) error {
	ctx := context.Background()
	spec := in.rule.WorkOrder
	latest, err := e.store.LatestWorkOrderFor(ctx, in.rule.ID, in.asset.ID)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%s fired again (value %s)", in.rule.ID, in.alarm.Value)
	switch {
	case latest != nil && latest.Status != Closed && latest.Status != Cancelled && latest.Status != Resolved && latest.Status != CallbackDone:
		latest.Occurrences++
		latest.Version++
		latest.Updated = now
		return e.saveWorkOrder(latest, HistoryEntry{At: now, By: ByEngine, Note: note})
	case latest != nil && latest.Status != Cancelled && now.Sub(latest.ResolvedAt) < e.cfg.ReopenWindow && !latest.ResolvedAt.IsZero():
		from := latest.Status
		latest.Status, latest.ResolvedAt, latest.CallbackAt, latest.ClosedAt = InProgress, time.Time{}, time.Time{}, time.Time{}
		d := e.cfg.SLA.For(latest.Category, latest.Priority)
		latest.ResolutionDue, latest.ResolutionBreached = now.Add(d.Resolution), false
		latest.Occurrences++
		latest.Version++
		latest.Updated = now
		return e.saveWorkOrder(latest, HistoryEntry{At: now, By: ByEngine, From: from, To: InProgress,
			Note: fmt.Sprintf("reopened: the fault came back within %s of being resolved (value %s)", e.cfg.ReopenWindow, in.alarm.Value)})
	}
	a := in.asset
	w := &WorkOrder{Category: spec.Category, Asset: a.ID, Location: location(a), Priority: spec.Priority,
		Description: fmt.Sprintf("%s: %s (value %s)", in.rule.Name, a.Name, in.alarm.Value),
		Status:      Opened, Source: "rule", Rule: in.rule.ID, AlarmID: in.alarm.ID, Reporter: ByEngine, Occurrences: 1, Version: 1}
	return e.createWorkOrder(w, now, "opened by rule "+in.rule.ID)
}

func location(a collectors.Asset) string {
	parts := []string{}
	for _, s := range []string{a.Building, a.Floor, a.Location} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func (e *Engine) createWorkOrder(w *WorkOrder, now time.Time, note string) error {
	d := e.cfg.SLA.For(w.Category, w.Priority)
	w.Created, w.Updated = now, now
	w.ResponseDue, w.ResolutionDue = now.Add(d.Response), now.Add(d.Resolution)
	if err := e.store.CreateWorkOrder(context.Background(), w, HistoryEntry{At: now, By: w.Reporter, To: Opened, Note: note}); err != nil {
		return err
	}
	c := *w
	e.bus.Publish(Event{Type: EventWorkOrder, At: now, WorkOrder: &c, Change: &HistoryEntry{WorkOrder: w.ID, At: now, By: w.Reporter, To: Opened, Note: note}})
	return nil
}

func (e *Engine) saveWorkOrder(w *WorkOrder, h HistoryEntry) error {
	if err := e.store.UpdateWorkOrder(context.Background(), w, h); err != nil {
		return err
	}
	c := *w
	h.WorkOrder = w.ID
	e.bus.Publish(Event{Type: EventWorkOrder, At: h.At, WorkOrder: &c, Change: &h})
	return nil
}

// checkSLA records response and resolution breaches of open orders.
func (e *Engine) checkSLA(now time.Time) {
	open, err := e.store.WorkOrders(context.Background(), WorkOrderFilter{Open: true})
	if err != nil {
		e.log.Error("SLA check failed", "err", err)
		return
	}
	for _, w := range open {
		if changed := w.breaches(now); len(changed) > 0 {
			w.Version++
			w.Updated = now
			note := "SLA breached: " + strings.Join(changed, " and ") + " deadline passed"
			if err := e.saveWorkOrder(w, HistoryEntry{At: now, By: ByEngine, Note: note}); err != nil {
				e.log.Error("recording an SLA breach failed", "workorder", w.ID, "err", err)
			}
			e.log.Warn("work order SLA breached", "workorder", w.ID, "deadline", strings.Join(changed, ","))
		}
	}
}

// Alarms lists alarms, most urgent first; filter by state group and priority.
func (e *Engine) Alarms(filter func(*Alarm) bool) []Alarm {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alarm
	for _, in := range e.insts {
		if filter == nil || filter(in.alarm) {
			in.alarm.render()
			out = append(out, *in.alarm)
		}
	}
	rank := map[Priority]int{Critical: 0, High: 1, Medium: 2, Low: 3}
	sort.SliceStable(out, func(i, j int) bool {
		if rank[out[i].Priority] != rank[out[j].Priority] {
			return rank[out[i].Priority] < rank[out[j].Priority]
		}
		return out[i].Since.After(out[j].Since)
	})
	return out
}

// Alarm returns one alarm.
func (e *Engine) Alarm(id string) (Alarm, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in, ok := e.byAlarm[id]
	if !ok {
		return Alarm{}, false
	}
	in.alarm.render()
	return *in.alarm, true
}

// Operator actions on alarms.
type action func(a *Alarm, now time.Time) ([]Transition, error)

func (e *Engine) act(id string, do action) (Alarm, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in, ok := e.byAlarm[id]
	if !ok {
		return Alarm{}, ErrNotFound
	}
	now := e.now()
	before := factsOf(in.alarm)
	saved := *in.alarm
	tr, err := do(in.alarm, now)
	if err != nil {
		*in.alarm = saved
		return saved, err
	}
	e.commit(in, before, tr, now)
	return *in.alarm, nil
}

// Ack acknowledges an alarm.
func (e *Engine) Ack(id, by, note string) (Alarm, error) {
	return e.act(id, func(a *Alarm, now time.Time) ([]Transition, error) { return a.Ack(now, by, note) })
}

// Shelve shelves an alarm for a duration.
func (e *Engine) Shelve(id string, d time.Duration, by, note string) (Alarm, error) {
	return e.act(id, func(a *Alarm, now time.Time) ([]Transition, error) { return a.Shelve(now, now.Add(d), by, note) })
}

// Unshelve returns a shelved alarm.
func (e *Engine) Unshelve(id, by, note string) (Alarm, error) {
	return e.act(id, func(a *Alarm, now time.Time) ([]Transition, error) { return a.Unshelve(now, by, note) })
}

// SetOutOfService takes an alarm out of service or returns it.
func (e *Engine) SetOutOfService(id string, on bool, by, note string) (Alarm, error) {
	return e.act(id, func(a *Alarm, now time.Time) ([]Transition, error) { return a.SetOutOfService(on, now, by, note), nil })
}

// CreateWorkOrder opens a work order by hand (a resident's call).
func (e *Engine) CreateWorkOrder(w WorkOrder) (*WorkOrder, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w.Asset != "" {
		a, ok := e.assets[w.Asset]
		if !ok {
			return nil, fmt.Errorf("asset %q is not declared", w.Asset)
		}
		if w.Location == "" {
			w.Location = location(a)
		}
	}
	w.Status, w.Source, w.Version, w.Occurrences = Opened, "manual", 1, 1
	if err := e.createWorkOrder(&w, e.now(), "opened by "+w.Reporter); err != nil {
		return nil, err
	}
	return &w, nil
}

// Transition moves a work order to another status; an invalid move is a
// *TransitionError and changes nothing.
func (e *Engine) Transition(id int64, to Status, by, note string) (*WorkOrder, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w, _, err := e.store.WorkOrder(context.Background(), id)
	if err != nil {
		return nil, err
	}
	now := e.now()
	from := w.Status
	if err := w.move(to, now); err != nil {
		return nil, err
	}
	w.Version++
	w.Updated = now
	if err := e.saveWorkOrder(w, HistoryEntry{At: now, By: by, From: from, To: to, Note: note}); err != nil {
		return nil, err
	}
	return w, nil
}

// WorkOrderUpdate changes a work order's details; nil fields stay.
type WorkOrderUpdate struct {
	Assignee    *string   `json:"assignee"`
	Description *string   `json:"description"`
	Priority    *Priority `json:"priority"`
	Category    *string   `json:"category"`
	Note        string    `json:"note"`
}

// UpdateWorkOrder applies an update, recorded in the history.
func (e *Engine) UpdateWorkOrder(id int64, u WorkOrderUpdate, by string) (*WorkOrder, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w, _, err := e.store.WorkOrder(context.Background(), id)
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
		if !u.Priority.valid() {
			return nil, fmt.Errorf("%q is not a priority; fix: critical, high, medium or low", *u.Priority)
		}
		w.Priority = *u.Priority
		d := e.cfg.SLA.For(w.Category, w.Priority)
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
	now := e.now()
	w.Version++
	w.Updated = now
	if err := e.saveWorkOrder(w, HistoryEntry{At: now, By: by, Note: note}); err != nil {
		return nil, err
	}
	return w, nil
}

// Store returns the engine's store (for read-only queries).
func (e *Engine) Store() Store { return e.store }

// Run ticks every interval until ctx ends.
func (e *Engine) Run(ctx context.Context, every time.Duration) {
	collectors.Every(ctx, every, e.Tick)
}
