package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
	Queued      prometheus.Gauge // alarm changes waiting for the writer
}

// NewMetrics registers the engine's metrics (reg may be nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_rules_store_errors_total", Help: "Alarm saves that failed (the alarm's state lived in memory until its next change)."}),
		Ticks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_rules_ticks_total", Help: "Evaluations of delays, no-data timeouts, shelving and suppression as time passes."}),
		Queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_rules_alarm_writes_queued", Help: "Alarm changes made on the ingest path, waiting to be saved and told (a full queue makes ingest wait)."}),
	}
	if reg != nil {
		reg.MustRegister(m.StoreErrors, m.Ticks, m.Queued)
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

// inst is one rule applied to one asset. The fields a point touches are
// kept here, in one contiguous slice per rule set, so evaluating the rules
// of one field walks adjacent memory; the Alarm itself (names, times,
// acknowledgement) is touched only when something changes.
type inst struct {
	// active mirrors alarm.Active; resting is true while the alarm is
	// normal with no delay, shelving or chattering running: a false
	// condition then changes nothing but last.
	active, resting bool
	suppressible    bool  // the rule has suppressed_by: always the full path
	ruleN           int32 // index of rule in the set's config
	cond            Condition
	mem             Memory
	last            collectors.Value // latest reading; copied into alarm.last before the alarm is used
	rule            *Rule
	alarm           *Alarm
	asset           *collectors.Asset // in the set's assets
}

// sync copies the hot fields into the alarm before it is used.
func (in *inst) sync() *Alarm {
	in.alarm.last = in.last
	return in.alarm
}

// settled refreshes the mirrored fields after the alarm changed.
func (in *inst) settled() {
	a := in.alarm
	in.last = a.last
	in.active = a.Active
	in.resting = !a.Active && a.PendingSince.IsZero() && a.ClearSince.IsZero() && a.ShelvedUntil.IsZero() && !a.Chattering
}

// span is the instances watching one field of one asset: insts[from:to].
type span struct {
	field    int32
	from, to int32
}

// ruleSet is a compiled set of rules: asset ids and rule fields interned to
// small integers, and per asset the fields its rules watch, each with its
// instances contiguous. The index never changes after compile; a config
// reload compiles a new set and swaps it whole (the instances' alarm state
// is what carries over).
type ruleSet struct {
	cfg     Config
	assets  []collectors.Asset
	assetIx map[string]int32 // asset id → index in assets and spans
	fieldIx map[string]int32 // field name a rule watches → small integer
	spans   [][]span         // per asset
	insts   []inst           // grouped by asset, then field
	byAlarm map[string]*inst
	byRule  map[string][]*inst
	// activeByRule counts each rule's active alarms, so suppression needs no
	// scan while no suppressing alarm is active (the usual case).
	activeByRule []int32
	suppressors  [][]int32 // per rule: the rules in its suppressed_by, by index
}

// compile builds the rule set; rules without a compiled condition are left
// out and logged.
func compile(cfg Config, assets []collectors.Asset, log *slog.Logger) *ruleSet {
	rs := &ruleSet{cfg: cfg, assets: slices.Clone(assets), assetIx: make(map[string]int32, len(assets)), fieldIx: map[string]int32{},
		spans: make([][]span, len(assets)), byAlarm: map[string]*inst{}, byRule: map[string][]*inst{},
		activeByRule: make([]int32, len(cfg.Rules)), suppressors: make([][]int32, len(cfg.Rules))}
	for i, a := range assets {
		rs.assetIx[a.ID] = int32(i)
	}
	ruleIx := map[string]int32{}
	conds := make([]Condition, len(cfg.Rules))
	for i := range rs.cfg.Rules {
		r := &rs.cfg.Rules[i]
		ruleIx[r.ID] = int32(i)
		cond := r.cond
		if cond == nil {
			var kindErr, err error
			if cond, kindErr, err = compileCondition(r); kindErr != nil || err != nil {
				log.Error("rule left out: it was not validated", "rule", r.ID, "err", errors.Join(kindErr, err))
				continue
			}
		}
		conds[i] = cond
		if _, ok := rs.fieldIx[r.Field]; !ok {
			rs.fieldIx[r.Field] = int32(len(rs.fieldIx))
		}
	}
	for i, r := range rs.cfg.Rules {
		for _, s := range r.SuppressedBy {
			if j, ok := ruleIx[s.Rule]; ok {
				rs.suppressors[i] = append(rs.suppressors[i], j)
			}
		}
	}
	// Per asset, per field (in the order fields first appear among the
	// rules), the instances in rule order.
	type key struct{ asset, field int32 }
	var order []key
	members := map[key][]int32{} // rule indexes
	for i := range rs.cfg.Rules {
		r := &rs.cfg.Rules[i]
		if conds[i] == nil {
			continue
		}
		f := rs.fieldIx[r.Field]
		for ai, a := range assets {
			if !r.Target.matches(a) {
				continue
			}
			k := key{int32(ai), f}
			if _, ok := members[k]; !ok {
				order = append(order, k)
			}
			members[k] = append(members[k], int32(i))
		}
	}
	slices.SortStableFunc(order, func(x, y key) int { return int(x.asset - y.asset) })
	n := 0
	for _, k := range order {
		n += len(members[k])
	}
	rs.insts = make([]inst, 0, n)
	for _, k := range order {
		from := int32(len(rs.insts))
		for _, ri := range members[k] {
			r := &rs.cfg.Rules[ri]
			a := &rs.assets[k.asset]
			id := r.ID + ":" + a.ID
			rs.insts = append(rs.insts, inst{rule: r, cond: conds[ri], asset: a, ruleN: ri, suppressible: len(r.SuppressedBy) > 0,
				alarm: &Alarm{ID: id, Rule: r.ID, Asset: a.ID, State: StateNormal, Acked: true}})
		}
		rs.spans[k.asset] = append(rs.spans[k.asset], span{field: k.field, from: from, to: int32(len(rs.insts))})
	}
	for i := range rs.insts {
		in := &rs.insts[i]
		in.settled()
		rs.byAlarm[in.alarm.ID] = in
		rs.byRule[in.rule.ID] = append(rs.byRule[in.rule.ID], in)
	}
	return rs
}

// Engine evaluates rules on every point and on a clock.
type Engine struct {
	store   AlarmStore
	obs     []Observer
	onFire  FireHandler
	planner Planner
	metrics *Metrics
	guard   *guard.Guard
	log     *slog.Logger
	now     func() time.Time

	mu  sync.Mutex
	set *ruleSet // swapped whole under mu

	// Alarm writes leave the ingest path through an ordered queue while Run
	// runs (async, under mu); a full queue makes the engine wait, nothing
	// is dropped. Flush waits until every write queued before it is done.
	async   bool
	jobs    chan job
	queued  atomic.Uint64
	applied atomic.Uint64
	wmu     sync.Mutex
	wcond   *sync.Cond
}

// job is one alarm change to save and tell, in order.
type job struct {
	alarm Alarm // as it was after the change
	tr    []Transition
	in    *inst
	at    time.Time
}

// JobQueue is the length of the ordered queue of alarm writes.
const JobQueue = 256

var _ collectors.Processor = (*Engine)(nil)

// NewEngine builds the engine; nothing is read until Load.
// The rules must have been validated (Config.Validate compiles their
// conditions); a rule without a condition is left out and logged.
func NewEngine(cfg Config, assets []collectors.Asset, d Deps) *Engine {
	cfg.SetDefaults()
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	e := &Engine{store: d.Store, obs: d.Observers, onFire: d.OnFire, planner: d.Planner, metrics: d.Metrics, guard: d.Guard, log: d.Log, now: d.Now,
		set: compile(cfg, assets, d.Log), jobs: make(chan job, JobQueue)}
	e.wcond = sync.NewCond(&e.wmu)
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
	rs := e.set
	now := e.now()
	for _, a := range saved {
		if in, ok := rs.byAlarm[a.ID]; ok {
			in.alarm = a
		}
	}
	clear(rs.activeByRule)
	for i := range rs.insts {
		in := &rs.insts[i]
		in.mem.LastSeen = now // a silent sensor alarms no_data after the gateway has been up that long
		r := in.rule
		a := in.alarm
		a.Name, a.NameZH, a.Priority, a.Category, a.Instructions, a.InstructionsZH = r.Name, r.NameZH, r.Priority, r.Category, r.Instructions, r.InstructionsZH
		in.settled()
		if in.active {
			rs.activeByRule[in.ruleN]++
		}
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

// Process implements collectors.Processor: every accepted point, under one
// lock per call (one call per message). The asset is looked up once per run
// of points of one asset, the field once per point; the instances watching
// it are adjacent. A point that leaves a resting alarm resting (the usual
// case) costs its condition and nothing else, and allocates nothing.
func (e *Engine) Process(pts []collectors.Point) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := e.set
	var now time.Time
	var spans []span
	asset := ""
	known := false
	for i := range pts {
		p := &pts[i]
		if !known || p.Asset != asset {
			var ai int32
			ai, known = rs.assetIx[p.Asset]
			asset, spans = p.Asset, nil
			if known {
				spans = rs.spans[ai]
			}
		}
		if len(spans) == 0 {
			continue
		}
		f, ok := rs.fieldIx[p.Field]
		if !ok {
			continue
		}
		for _, sp := range spans {
			if sp.field != f {
				continue
			}
			if now.IsZero() {
				now = e.now()
			}
			for k := sp.from; k < sp.to; k++ {
				e.evalPoint(rs, &rs.insts[k], p, now)
			}
			break
		}
	}
}

func (e *Engine) evalPoint(rs *ruleSet, in *inst, p *collectors.Point, now time.Time) {
	if in.suppressible {
		a := in.sync()
		before := factsOf(a)
		tr := e.applySuppression(rs, in, now)
		if cond, ok := in.cond.Eval(p, a.Active, now, &in.mem); ok {
			tr = append(tr, a.Observe(cond, p.Value, now, in.rule)...)
		}
		e.commit(rs, in, before, tr, now)
		return
	}
	cond, ok := in.cond.Eval(p, in.active, now, &in.mem)
	if !ok {
		return
	}
	if !cond && in.resting {
		in.last = p.Value
		return
	}
	a := in.sync()
	before := factsOf(a)
	tr := a.Observe(cond, p.Value, now, in.rule)
	e.commit(rs, in, before, tr, now)
}

// Tick applies delays, no-data timeouts, shelving expiry and suppression
// as time passes; Run calls it every second.
func (e *Engine) Tick() {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := e.set
	now := e.now()
	for i := range rs.insts {
		in := &rs.insts[i]
		if in.resting && !in.suppressible {
			// Time alone changes a resting alarm only through its condition.
			if v, ok := in.cond.Elapsed(now, &in.mem); ok {
				a := in.sync()
				before := factsOf(a)
				e.commit(rs, in, before, a.Observe(true, v, now, in.rule), now)
			}
			continue
		}
		a := in.sync()
		before := factsOf(a)
		var tr []Transition
		tr = append(tr, e.applySuppression(rs, in, now)...)
		if v, ok := in.cond.Elapsed(now, &in.mem); ok {
			tr = append(tr, a.Observe(true, v, now, in.rule)...)
		} else {
			tr = append(tr, a.Tick(now, in.rule)...)
		}
		e.commit(rs, in, before, tr, now)
	}
	e.metrics.Ticks.Inc()
}

// applySuppression sets the suppressed flag from the suppressing rules.
func (e *Engine) applySuppression(rs *ruleSet, in *inst, now time.Time) []Transition {
	if len(in.rule.SuppressedBy) == 0 {
		return nil
	}
	var cause string
	for si, s := range in.rule.SuppressedBy {
		if sup := rs.suppressors[in.ruleN]; si < len(sup) && rs.activeByRule[sup[si]] == 0 {
			continue // none of that rule's alarms is active
		}
		for _, other := range rs.byRule[s.Rule] {
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

// commit records what changed: the planned-work tag is decided here, the
// store write, the observers and the work order follow in order through
// the alarm writer (see write). It returns the change's sequence number (0:
// nothing changed). mu is held.
func (e *Engine) commit(rs *ruleSet, in *inst, before facts, tr []Transition, now time.Time) uint64 {
	a := in.alarm
	if len(tr) == 0 && factsOf(a) == before {
		in.settled()
		return 0
	}
	if a.Active != before.active {
		if a.Active {
			rs.activeByRule[in.ruleN]++
		} else {
			rs.activeByRule[in.ruleN]--
		}
	}
	if a.Active && !before.active {
		// A new activation: planned work explains it, or it is a fault.
		a.Planned = nil
		if e.planner != nil {
			a.Planned = e.planner.PlannedFor(*in.asset, in.rule, a.ActiveSince)
		}
	}
	a.render()
	in.settled()
	j := job{alarm: *a, tr: tr, in: in, at: now}
	seq := e.queued.Add(1)
	if e.async {
		e.metrics.Queued.Inc()
		e.jobs <- j // the writer needs no lock: a full queue waits, never drops
	} else {
		e.write(j)
		e.done(seq)
	}
	return seq
}

// write saves one change, tells the observers and opens the work order.
func (e *Engine) write(j job) {
	a := j.alarm
	if err := e.store.SaveAlarm(context.Background(), &a, j.tr); err != nil {
		e.metrics.StoreErrors.Inc()
		e.log.Error("saving alarm failed; its state lives in memory until the next change", "alarm", a.ID, "err", err)
	}
	for _, t := range j.tr {
		a := j.alarm
		for _, o := range e.obs {
			o.AlarmChanged(a, t)
		}
		if t.Fired() {
			e.log.Warn("alarm", "alarm", a.ID, "priority", a.Priority, "value", a.Value, "asset", a.Asset)
			if a.Planned != nil {
				e.log.Info("alarm is planned work: no fault work order", "alarm", a.ID, "planned_work", a.Planned.Work)
			} else if j.in.rule.WorkOrder != nil && e.onFire != nil {
				if err := e.onFire.AlarmFired(context.Background(), Fired{Alarm: a, Rule: j.in.rule, Asset: *j.in.asset, At: j.at}); err != nil {
					e.log.Error("work order for alarm failed", "alarm", a.ID, "err", err)
				}
			}
		}
	}
}

// done marks every change up to seq as written.
func (e *Engine) done(seq uint64) {
	e.wmu.Lock()
	if seq > e.applied.Load() {
		e.applied.Store(seq)
	}
	e.wcond.Broadcast()
	e.wmu.Unlock()
}

// wait returns once the change seq (and every one before it) is written.
func (e *Engine) wait(seq uint64) {
	if seq == 0 || e.applied.Load() >= seq {
		return
	}
	e.wmu.Lock()
	for e.applied.Load() < seq {
		e.wcond.Wait()
	}
	e.wmu.Unlock()
}

// Flush returns once every alarm change made before the call is saved,
// told and its work order opened: the pipeline calls it before a collector
// acknowledges its source (MQTT PUBACK), so an acknowledged message's
// alarm transitions are in the store too. Without changes it costs two
// atomic loads.
func (e *Engine) Flush() error {
	e.wait(e.queued.Load())
	return nil
}

// writeLoop is the alarm writer: it saves changes in the order they were
// made until ctx ends, then writes what is queued and hands writing back to
// the callers.
func (e *Engine) writeLoop(ctx context.Context) {
	for {
		select {
		case j := <-e.jobs:
			e.writeQueued(j)
		case <-ctx.Done():
			// A sender blocked on a full queue holds mu: keep writing until
			// mu is ours, then nothing more can be queued.
			locked := make(chan struct{})
			go func() { e.mu.Lock(); close(locked) }()
			for {
				select {
				case j := <-e.jobs:
					e.writeQueued(j)
				case <-locked:
					e.async = false
					for {
						select {
						case j := <-e.jobs:
							e.writeQueued(j)
						default:
							e.mu.Unlock() // locked by the goroutine above, for this one
							return
						}
					}
				}
			}
		}
	}
}

func (e *Engine) writeQueued(j job) {
	e.metrics.Queued.Dec()
	e.write(j)
	e.done(e.applied.Load() + 1)
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
	for i := range e.set.insts {
		in := &e.set.insts[i]
		if a := in.sync(); filter == nil || filter(a) {
			a.render()
			out = append(out, *a)
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
	in, ok := e.set.byAlarm[id]
	if !ok {
		return Alarm{}, false
	}
	a := in.sync()
	a.render()
	return *a, true
}

// Operator actions on alarms.
type action func(a *Alarm, now time.Time) ([]Transition, error)

func (e *Engine) act(id string, do action) (Alarm, error) {
	e.mu.Lock()
	in, ok := e.set.byAlarm[id]
	if !ok {
		e.mu.Unlock()
		return Alarm{}, ErrNotFound
	}
	now := e.now()
	a := in.sync()
	before := factsOf(a)
	saved := *a
	tr, err := do(a, now)
	if err != nil {
		*a = saved
		e.mu.Unlock()
		return saved, err
	}
	seq := e.commit(e.set, in, before, tr, now)
	out := *a
	e.mu.Unlock()
	// An operator's action is saved before it is confirmed.
	e.wait(seq)
	return out, nil
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

// Run ticks every second and writes alarm changes off the caller's
// goroutine (in order, see Flush) until ctx ends; then it writes what is
// queued and later changes are written by the goroutine that makes them.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.async = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); e.writeLoop(ctx) }()
	collectors.Every(ctx, time.Second, func() { e.guard.Do("rules", e.Tick) })
	<-done
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
