package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/guard"
)

// Config is the alarm rules of the rules: section.
type Config struct {
	Rules []Rule `yaml:"rules"`
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	for i := range c.Rules {
		c.Rules[i].SetDefaults()
	}
}

// Validate checks the rules and compiles their conditions; assets are the
// declared ones, for targets.
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
	return nil
}

// AlarmStore is what the engine keeps alarms in.
type AlarmStore interface {
	LoadAlarms(ctx context.Context) ([]*Alarm, error)
	// SaveAlarm upserts the alarm and appends its transitions atomically.
	SaveAlarm(ctx context.Context, a *Alarm, tr []Transition) error
	// TransitionsBetween lists transitions with from <= at < to, in order.
	TransitionsBetween(ctx context.Context, from, to time.Time) ([]Transition, error)
	// StatesAt is each alarm's state just before t (alarms with no
	// transition before t are absent).
	StatesAt(ctx context.Context, t time.Time) (map[string]AlarmState, error)
}

// Observer is told of every alarm transition, in order, from inside the
// engine: it must not block or call back into the engine.
type Observer interface {
	AlarmChanged(a Alarm, t Transition)
}

// Fired is an alarm that has just fired (became unacknowledged from normal).
type Fired struct {
	Alarm Alarm
	Rule  *Rule
	Asset collectors.Asset
	At    time.Time
}

// FireHandler opens a work order for a rule with a workorder: block; it is
// called inside the engine's commit and must not call back into the engine.
type FireHandler interface {
	AlarmFired(ctx context.Context, f Fired) error
}

// PlannedTag names the planned work (计划停水停电/维保) an alarm's
// activation belongs to.
type PlannedTag struct {
	Work  int64  `json:"work"`
	Title string `json:"title"`
}

// Planner says whether an alarm activating at a time on an asset is the
// expected consequence of planned work (rules/planned). It is called
// inside the engine's commit: it must not block or call back into the
// engine.
type Planner interface {
	PlannedFor(a collectors.Asset, r *Rule, at time.Time) *PlannedTag
}

// Metrics are the engine's Prometheus counters.
type Metrics struct {
	StoreErrors prometheus.Counter
	Ticks       prometheus.Counter
}

// NewMetrics registers the engine's metrics (reg may be nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_rules_store_errors_total", Help: "Alarm saves that failed (the alarm's state lived in memory until its next change)."}),
		Ticks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_rules_ticks_total", Help: "Evaluations of delays, no-data timeouts, shelving and suppression as time passes."}),
	}
	if reg != nil {
		reg.MustRegister(m.StoreErrors, m.Ticks)
	}
	return m
}

// Deps are what the engine works with.
type Deps struct {
	Store     AlarmStore
	Observers []Observer   // the event bus, the playbook runner
	OnFire    FireHandler  // nil: no work orders from rules
	Planner   Planner      // nil: no planned works (SetPlanner)
	Metrics   *Metrics     // nil: counted but not exported
	Guard     *guard.Guard // recovers a panicking tick (nil: none)
	Log       *slog.Logger
	Now       func() time.Time
}

// inst is one rule applied to one asset.
type inst struct {
	rule  *Rule
	cond  Condition
	asset collectors.Asset
	alarm *Alarm
	mem   Memory
}

// Engine evaluates rules on every point and on a clock.
type Engine struct {
	cfg     Config
	store   AlarmStore
	obs     []Observer
	onFire  FireHandler
	planner Planner
	metrics *Metrics
	guard   *guard.Guard
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	assets  []collectors.Asset
	index   map[string]map[string][]*inst // asset → field → instances
	insts   []*inst
	byAlarm map[string]*inst
	byRule  map[string][]*inst
}

var _ collectors.Processor = (*Engine)(nil)

// NewEngine builds the engine; nothing is read until Load.
// The rules must have been validated (Config.Validate compiles their
// conditions); a rule without a condition is left out and logged.
func NewEngine(cfg Config, assets []collectors.Asset, d Deps) *Engine {
	cfg.SetDefaults()
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	e := &Engine{cfg: cfg, store: d.Store, obs: d.Observers, onFire: d.OnFire, planner: d.Planner, metrics: d.Metrics, guard: d.Guard, log: d.Log, now: d.Now, assets: assets,
		index: map[string]map[string][]*inst{}, byAlarm: map[string]*inst{}, byRule: map[string][]*inst{}}
	for i := range e.cfg.Rules {
		r := &e.cfg.Rules[i]
		cond := r.cond
		if cond == nil {
			var kindErr, err error
			if cond, kindErr, err = compileCondition(r); kindErr != nil || err != nil {
				e.log.Error("rule left out: it was not validated", "rule", r.ID, "err", errors.Join(kindErr, err))
				continue
			}
		}
		for _, a := range assets {
			if !r.Target.matches(a) {
				continue
			}
			id := r.ID + ":" + a.ID
			in := &inst{rule: r, cond: cond, asset: a, alarm: &Alarm{ID: id, Rule: r.ID, Asset: a.ID, State: StateNormal, Acked: true}}
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

// Observe adds an observer; call it before Run.
func (e *Engine) Observe(o Observer) { e.obs = append(e.obs, o) }

// SetPlanner sets what tags activations as planned; call it before Run.
func (e *Engine) SetPlanner(p Planner) { e.planner = p }

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
		in.mem.LastSeen = now // a silent sensor alarms no_data after the gateway has been up that long
		r := in.rule
		a := in.alarm
		a.Name, a.NameZH, a.Priority, a.Category, a.Instructions, a.InstructionsZH = r.Name, r.NameZH, r.Priority, r.Category, r.Instructions, r.InstructionsZH
	}
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
			tr := e.applySuppression(in, now)
			if cond, ok := in.cond.Eval(p, in.alarm.Active, now, &in.mem); ok {
				tr = append(tr, in.alarm.Observe(cond, p.Value, now, in.rule)...)
			}
			e.commit(in, before, tr, now)
		}
	}
}

// Tick applies delays, no-data timeouts, shelving expiry and suppression
// as time passes; Run calls it every second.
func (e *Engine) Tick() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, in := range e.insts {
		before := factsOf(in.alarm)
		var tr []Transition
		tr = append(tr, e.applySuppression(in, now)...)
		if v, ok := in.cond.Elapsed(now, &in.mem); ok {
			tr = append(tr, in.alarm.Observe(true, v, now, in.rule)...)
		} else {
			tr = append(tr, in.alarm.Tick(now, in.rule)...)
		}
		e.commit(in, before, tr, now)
	}
	e.metrics.Ticks.Inc()
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

// commit persists what changed, tells the observers and opens work orders.
func (e *Engine) commit(in *inst, before facts, tr []Transition, now time.Time) {
	if len(tr) == 0 && factsOf(in.alarm) == before {
		return
	}
	if in.alarm.Active && !before.active {
		// A new activation: planned work explains it, or it is a fault.
		in.alarm.Planned = nil
		if e.planner != nil {
			in.alarm.Planned = e.planner.PlannedFor(in.asset, in.rule, in.alarm.ActiveSince)
		}
	}
	in.alarm.render()
	if err := e.store.SaveAlarm(context.Background(), in.alarm, tr); err != nil {
		e.metrics.StoreErrors.Inc()
		e.log.Error("saving alarm failed; its state lives in memory until the next change", "alarm", in.alarm.ID, "err", err)
	}
	for _, t := range tr {
		a := *in.alarm
		for _, o := range e.obs {
			o.AlarmChanged(a, t)
		}
		if t.Fired() {
			e.log.Warn("alarm", "alarm", a.ID, "priority", a.Priority, "value", a.Value, "asset", a.Asset)
			if a.Planned != nil {
				e.log.Info("alarm is planned work: no fault work order", "alarm", a.ID, "planned_work", a.Planned.Work)
			} else if in.rule.WorkOrder != nil && e.onFire != nil {
				if err := e.onFire.AlarmFired(context.Background(), Fired{Alarm: a, Rule: in.rule, Asset: in.asset, At: now}); err != nil {
					e.log.Error("work order for alarm failed", "alarm", a.ID, "err", err)
				}
			}
		}
	}
}

// Location is where an asset is, for people: building, floor, place.
func Location(a collectors.Asset) string {
	parts := []string{}
	for _, s := range []string{a.Building, a.Floor, a.Location} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
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
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority.Rank() != out[j].Priority.Rank() {
			return out[i].Priority.Rank() < out[j].Priority.Rank()
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

// Run ticks every second until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	collectors.Every(ctx, time.Second, func() { e.guard.Do("rules", e.Tick) })
	return nil
}

// ErrNothingToUnack: Unack applies only to an acknowledged, active alarm.
var ErrNothingToUnack = errors.New("the alarm is not acknowledged and active")

// Unack returns an acknowledged, still active alarm to unacknowledged: the
// alert router does this when an acknowledgement was not followed by any
// progress in time (the forgotten acknowledgement), so it is annunciated
// and must be acknowledged again.
func (e *Engine) Unack(id, by, note string) (Alarm, error) {
	return e.act(id, func(a *Alarm, now time.Time) ([]Transition, error) {
		if a.State != StateAcked {
			return nil, ErrNothingToUnack
		}
		a.Acked, a.AckBy, a.AckNote = false, "", ""
		return a.settle(now, by, note), nil
	})
}
