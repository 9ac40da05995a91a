package playbook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/propgate/gateway/internal/i18n"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/guard"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

// ByEngine is the "who" of what the runner does by itself.
const ByEngine = rules.ByEngine

// Equipment sets writable equipment fields (the Modbus collector).
type Equipment interface {
	Write(ctx context.Context, asset, field string, v collectors.Value) error
}

// Commands sends MQTT commands (sirens, LED boards).
type Commands interface {
	PublishCommand(topic, payload string) error
}

// Telemetry is the live state the runner checks conditions against.
type Telemetry interface {
	Get(asset, field string) (collectors.FieldState, bool)
}

// Alarms is the engine, for triggers.
type Alarms interface {
	Alarms(filter func(*rules.Alarm) bool) []rules.Alarm
}

// WorkOrders opens work orders for workorder actions.
type WorkOrders interface {
	Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error)
}

// Store keeps incidents.
type Store interface {
	// CreateIncident inserts in (setting its ID); SaveIncident replaces it.
	CreateIncident(ctx context.Context, in *Incident) error
	SaveIncident(ctx context.Context, in *Incident) error
	// Incident is one incident (rules.ErrNotFound if none).
	Incident(ctx context.Context, id int64) (*Incident, error)
	// Incidents lists incidents newest first; limit 0 means all.
	Incidents(ctx context.Context, openOnly bool, limit int) ([]*Incident, error)
}

// Observer is told of every incident change and of every request to
// notify people (alert routing, the dashboard). It must not block.
type Observer interface {
	IncidentChanged(in *Incident)
	Notify(n Notification)
}

// Notification asks alert routing to tell people in roles.
type Notification struct {
	At       time.Time `json:"at"`
	Roles    []string  `json:"roles"`
	Text     string    `json:"text"`
	Incident int64     `json:"incident"`
	Step     string    `json:"step,omitempty"`
	Drill    bool      `json:"drill"`
	Overdue  bool      `json:"overdue"`
}

// Deps are what the runner works with; Equipment and Commands may be nil
// (actions then fail with a clear error, recorded on the step), and so may
// Alarms and WorkOrders.
type Deps struct {
	Store      Store
	Alarms     Alarms
	WorkOrders WorkOrders
	Telemetry  Telemetry
	Equipment  Equipment
	Commands   Commands
	Observers  []Observer
	Ticks      prometheus.Counter // nil: not counted
	Guard      *guard.Guard       // recovers a panicking pass (nil: none)
	Log        *slog.Logger
	Now        func() time.Time
}

// Runner runs playbooks: it starts incidents when their trigger alarms
// fire (or by hand, or on schedule), drives their steps from telemetry and
// actions, escalates overdue steps, and keeps every incident in the store.
type Runner struct {
	playbooks  map[string]*Playbook
	list       []*Playbook
	assets     []collectors.Asset
	store      Store
	alarms     Alarms
	workorders WorkOrders
	telemetry  Telemetry
	equipment  Equipment
	commands   Commands
	obs        []Observer
	ticks      prometheus.Counter
	guard      *guard.Guard
	log        *slog.Logger
	now        func() time.Time
	fired      chan rules.Alarm

	mu        sync.Mutex
	open      map[int64]*Incident
	lastRun   map[string]time.Time // scheduled playbooks
	lastDrill map[string]time.Time // playbook → when its last drill started
	since     time.Time            // when the runner started: alarms active since then are triggers
	handled   map[string]time.Time // alarm id → the activation (ActiveSince) already handled
}

var _ rules.Observer = (*Runner)(nil)

// NewRunner builds a runner.
func NewRunner(playbooks []Playbook, assets []collectors.Asset, d Deps) *Runner {
	r := &Runner{playbooks: map[string]*Playbook{}, assets: assets, store: d.Store, alarms: d.Alarms, workorders: d.WorkOrders,
		telemetry: d.Telemetry, equipment: d.Equipment, commands: d.Commands, obs: d.Observers, ticks: d.Ticks, guard: d.Guard, log: d.Log, now: d.Now,
		fired: make(chan rules.Alarm, 256), open: map[int64]*Incident{}, lastRun: map[string]time.Time{}, lastDrill: map[string]time.Time{}, handled: map[string]time.Time{}}
	for i := range playbooks {
		p := &playbooks[i]
		p.SetDefaults()
		r.playbooks[p.ID] = p
		r.list = append(r.list, p)
	}
	return r
}

// Observe adds an observer; call it before Run.
func (r *Runner) Observe(o Observer) { r.obs = append(r.obs, o) }

// Playbook is one definition, for its report.
func (r *Runner) Playbook(id string) (*Playbook, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.playbooks[id]
	return p, ok
}

// Playbooks lists the definitions.
func (r *Runner) Playbooks() []PlaybookInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PlaybookInfo, len(r.list))
	for i, p := range r.list {
		out[i] = PlaybookInfo{Playbook: *p}
		if t, ok := r.lastDrill[p.ID]; ok {
			out[i].LastDrill = &t
		}
		if p.Drill != nil {
			next := p.Drill.next(r.lastDrill[p.ID], r.since)
			out[i].NextDrill = &next
		}
	}
	return out
}

// Load restores open incidents; they continue where they were.
func (r *Runner) Load(ctx context.Context) error {
	open, err := r.store.Incidents(ctx, true, 0)
	if err != nil {
		return err
	}
	all, err := r.store.Incidents(ctx, false, 0)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, in := range open {
		if r.reconcileDefinition(in) {
			r.open[in.ID] = in
		}
	}
	for _, in := range all {
		if t, ok := r.lastRun[in.Playbook]; !ok || in.Started.After(t) {
			r.lastRun[in.Playbook] = in.Started
		}
		if in.Drill && in.Started.After(r.lastDrill[in.Playbook]) {
			r.lastDrill[in.Playbook] = in.Started
		}
	}
	now := r.now()
	r.since = now
	for _, p := range r.list {
		if _, ok := r.lastRun[p.ID]; !ok && p.Trigger.Every > 0 {
			r.lastRun[p.ID] = now // first run one interval after the first start
		}
	}
	return nil
}

// Run drives incidents every second, and at once when an alarm fires,
// until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-r.fired:
			r.guard.Do("playbooks", func() { r.Trigger(a) })
		case <-t.C:
			r.guard.Do("playbooks", r.Tick)
		}
	}
}

// AlarmChanged implements rules.Observer: a firing alarm is handed to the
// runner's loop (it is called inside the engine, so it must not take the
// runner's lock). It never blocks: if the hand-over is full, the next tick
// finds the alarm among the engine's active ones (reconcile).
func (r *Runner) AlarmChanged(a rules.Alarm, t rules.Transition) {
	if !t.Fired() {
		return
	}
	select {
	case r.fired <- a:
	default:
	}
}

// Trigger starts the playbooks an alarm activation triggers, once per
// activation.
func (r *Runner) Trigger(a rules.Alarm) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trigger(&a)
}

// trigger starts the playbooks for one alarm activation, once. An
// activation that planned work explains (a planned power cut) starts no
// emergency plan: the sudden-outage plan is for outages nobody announced.
func (r *Runner) trigger(a *rules.Alarm) {
	if a.Planned != nil {
		if _, seen := r.handled["planned|"+a.ID]; !seen || a.ActiveSince.After(r.handled["planned|"+a.ID]) {
			r.handled["planned|"+a.ID] = a.ActiveSince // bounded: configured alarms
			r.log.Info("alarm is planned work: no emergency playbook", "alarm", a.ID, "planned_work", a.Planned.Work, "title", a.Planned.Title)
		}
		return
	}
	for _, p := range r.list {
		if slices.Contains(p.Trigger.Rules, a.Rule) {
			key := p.ID + "|" + a.ID // bounded: playbooks × configured alarms
			if t, ok := r.handled[key]; ok && !a.ActiveSince.After(t) && !a.ActiveSince.IsZero() {
				continue
			}
			if len(p.Trigger.WhenAny) > 0 {
				// A guard on the triggering asset (an alarm button counts as
				// an entrapment only with the car stopped between floors);
				// not handled yet, so the next pass looks again while the
				// alarm is active.
				asset, _ := r.asset(a.Asset)
				if ok, _ := anyHolds(p.Trigger.WhenAny, &Incident{Asset: asset.ID, Building: asset.Building}, r.assets, r.telemetry); !ok {
					continue
				}
			}
			r.handled[key] = a.ActiveSince
			in, err := r.startLocked(p, a.Asset, false, ByEngine, "alarm "+a.ID, 0, a)
			if err != nil {
				r.log.Error("starting playbook failed", "playbook", p.ID, "alarm", a.ID, "err", err)
				continue
			}
			if key := p.Trigger.Records; key != "" && !a.ActiveSince.IsZero() {
				if _, done := in.Record[key]; !done {
					in.Record[key] = RecordValue{At: a.ActiveSince, By: ByEngine, Source: FromTelemetry,
						Value: fmt.Sprintf("alarm %s active since %s (value %s)", a.ID, a.ActiveSince.Format("15:04:05"), a.Value)}
					r.save(in)
				}
			}
		}
	}
}

// reconcile starts playbooks for alarms active since the runner started
// that have not been handled yet.
func (r *Runner) reconcile() {
	if r.alarms == nil {
		return
	}
	for _, a := range r.alarms.Alarms(func(a *rules.Alarm) bool {
		return a.Active && !a.Suppressed && a.ShelvedUntil.IsZero() && !a.OutOfService && !a.ActiveSince.Before(r.since)
	}) {
		r.trigger(&a)
	}
}

func (r *Runner) asset(id string) (collectors.Asset, bool) {
	for _, a := range r.assets {
		if a.ID == id {
			return a, true
		}
	}
	return collectors.Asset{}, false
}

func onceKey(p *Playbook, a collectors.Asset) string {
	switch p.Trigger.OncePer {
	case "site":
		return ""
	case "building":
		return a.Building
	}
	return a.ID
}

// Start starts a playbook by hand (or as a drill).
func (r *Runner) Start(ctx context.Context, playbook, asset string, drill bool, by string) (*Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.playbooks[playbook]
	if !ok {
		return nil, fmt.Errorf("%w: no playbook %q", rules.ErrNotFound, playbook)
	}
	if asset != "" {
		if _, ok := r.asset(asset); !ok {
			return nil, fmt.Errorf("asset %q is not declared", asset)
		}
	}
	return r.startLocked(p, asset, drill, by, "started by "+by, 0, nil)
}

// startLocked opens an incident unless one is already open for the same
// playbook and once_per key (drills never collide with real incidents);
// cause is the alarm activation that triggers it (nil: none). r.mu is held.
func (r *Runner) startLocked(p *Playbook, assetID string, drill bool, by, trigger string, parent int64, cause *rules.Alarm) (*Incident, error) {
	a, _ := r.asset(assetID)
	now := r.now()
	if !drill {
		for _, in := range r.open {
			ia, _ := r.asset(in.Asset)
			if in.Playbook == p.ID && !in.Drill && onceKey(p, ia) == onceKey(p, a) {
				in.log(now, by, "note", "", "triggered again: %s", trigger)
				in.addActivation(cause)
				r.link(in, parent, now)
				r.save(in)
				return in, nil
			}
		}
	}
	in := &Incident{Playbook: p.ID, Name: p.Name, Drill: drill, Status: "open", Asset: a.ID, Building: a.Building,
		Location: rules.Location(a), Trigger: trigger, Started: now, Record: map[string]RecordValue{}, Version: 1}
	in.addActivation(cause)
	for _, s := range p.Steps {
		st := StepState{ID: s.ID, Title: s.Title, TitleZH: s.TitleZH, Role: s.Role, Status: StepWaiting, Optional: s.Optional, DeadlineSource: s.Source}
		if s.DrillOnly && !drill {
			st.Status, st.Note = StepSkipped, "演练专用 only in drills"
		}
		in.Steps = append(in.Steps, st)
	}
	in.log(now, by, "started", "", "%s started: %s", kindOf(in), trigger)
	for _, f := range p.Capture {
		if fs, ok := r.telemetry.Get(a.ID, f); ok {
			in.log(now, ByEngine, "evidence", "", "%s.%s = %s (%s) at %s", a.ID, f, strings.Trim(fs.Value.String(), `"`), fs.Quality, fs.Time.Format("15:04:05"))
		}
	}
	if err := r.store.CreateIncident(context.Background(), in); err != nil {
		return nil, err
	}
	r.open[in.ID] = in
	if drill {
		r.lastDrill[p.ID] = now
	} else {
		r.lastRun[p.ID] = now
	}
	r.link(in, parent, now)
	r.advance(in, p, now)
	r.save(in)
	r.log.Warn("incident started", "incident", in.ID, "playbook", p.ID, "asset", a.ID, "drill", drill)
	return in, nil
}

// link records a child incident under its parent (also when the child was
// already open, started by its own alarm).
func (r *Runner) link(child *Incident, parent int64, now time.Time) {
	if parent == 0 || child.Parent != 0 || child.ID == parent {
		return
	}
	pin, ok := r.open[parent]
	if !ok {
		return
	}
	child.Parent = parent
	pin.Children = append(pin.Children, child.ID)
	pin.log(now, ByEngine, "child", "", "incident %d (%s) for %s is part of this one", child.ID, child.Name, child.Asset)
	r.save(pin)
}

// save persists an incident and tells the observers.
func (r *Runner) save(in *Incident) {
	in.Version++
	if err := r.store.SaveIncident(context.Background(), in); err != nil {
		r.log.Error("saving incident failed", "incident", in.ID, "err", err)
	}
	for _, o := range r.obs {
		o.IncidentChanged(in.clone())
	}
}

// notify asks the observers to tell people in roles.
func (r *Runner) notify(n Notification) {
	if n.At.IsZero() {
		n.At = r.now()
	}
	for _, o := range r.obs {
		o.Notify(n)
	}
}

// reconcileDefinition checks an incident reloaded from the store against
// the playbook as configured now: steps are matched by id, steps added
// since are appended (waiting), steps removed are kept in the record but
// no longer driven or waited for, each change noted on the timeline. An
// incident whose playbook is gone is closed with a note saying so (it is
// kept, never driven). It reports whether the incident stays open.
func (r *Runner) reconcileDefinition(in *Incident) bool {
	now := r.now()
	p, ok := r.playbooks[in.Playbook]
	if !ok {
		var pending []string
		for _, st := range in.Steps {
			if st.Status != StepDone && st.Status != StepSkipped {
				pending = append(pending, st.ID)
			}
		}
		in.Status, in.Closed = "closed", now
		in.log(now, ByEngine, "closed", "", "closed by the gateway (at start or on a config reload): playbook %q is no longer configured; steps not done: %s",
			in.Playbook, strings.Join(pending, ", "))
		r.log.Warn("incident closed: its playbook is no longer configured", "incident", in.ID, "playbook", in.Playbook)
		r.save(in)
		return false
	}
	changed := false
	defined := map[string]bool{}
	for _, def := range p.Steps {
		defined[def.ID] = true
		st := in.Step(def.ID)
		if st == nil {
			in.Steps = append(in.Steps, StepState{ID: def.ID, Title: def.Title, TitleZH: def.TitleZH, Role: def.Role, Status: StepWaiting, Optional: def.Optional})
			in.log(now, ByEngine, "note", def.ID, "the playbook has a new step since this incident started: %s", def.Title)
			changed = true
			continue
		}
		if st.Removed {
			st.Removed = false
			changed = true
		}
		st.Optional, st.DeadlineSource = def.Optional, def.Source
	}
	for i := range in.Steps {
		st := &in.Steps[i]
		if !defined[st.ID] && !st.Removed {
			st.Removed = true
			in.log(now, ByEngine, "note", st.ID, "step %s (%s, %s) is no longer in the playbook: kept in the record, no longer driven", st.ID, st.Title, st.Status)
			changed = true
		}
	}
	if changed {
		r.log.Warn("incident reconciled with a changed playbook", "incident", in.ID, "playbook", in.Playbook)
		r.save(in)
	}
	return true
}

// Tick drives every open incident and starts scheduled playbooks.
func (r *Runner) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.reconcile()
	for _, p := range r.list {
		if p.Trigger.Every > 0 && now.Sub(r.lastRun[p.ID]) >= p.Trigger.Every {
			if _, err := r.startLocked(p, "", false, ByEngine, "scheduled every "+p.Trigger.Every.String(), 0, nil); err != nil {
				r.log.Error("scheduled playbook failed", "playbook", p.ID, "err", err)
			}
		}
	}
	r.scheduleDrills(now)
	for _, in := range r.open {
		if r.advance(in, r.playbooks[in.Playbook], now) {
			r.save(in)
		}
	}
	if r.ticks != nil {
		r.ticks.Inc()
	}
}

// NewTicks registers the runner's tick counter (reg may be nil).
func NewTicks(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_playbook_ticks_total", Help: "Passes over the open incidents (steps, deadlines, schedules)."})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// advance starts steps whose predecessor is done, completes telemetry and
// decision steps, re-runs for_each spawns and handles deadlines. It reports
// whether anything changed.
func (r *Runner) advance(in *Incident, p *Playbook, now time.Time) bool {
	if p == nil || in.Status != "open" {
		return false
	}
	changed := false
	for i := range p.Steps {
		def, st := &p.Steps[i], in.Step(p.Steps[i].ID)
		if st == nil {
			continue // reconcileDefinition adds every step; never index blindly
		}
		if st.Status == StepWaiting {
			prev := in.Step(def.After)
			if def.After == "" || prev != nil && (prev.Status == StepDone || prev.Status == StepSkipped) {
				r.activate(in, def, st, now)
				changed = true
			}
		}
		if st.Status != StepActive {
			continue
		}
		if sp := actionSpawn(def.Action); sp != nil && sp.ForEach != nil {
			changed = r.spawn(in, def, st, sp, now) || changed
		}
		if c := completions[def.Complete]; c != nil && !st.HeldAtStart {
			if done, ev, note := c.Check(&Exec{ctx: context.Background(), r: r, in: in, def: def, st: st, now: now}); done {
				st.Evidence = ev
				r.finish(in, def, st, StepDone, "telemetry", note, now)
				changed = true
			}
		}
		if st.Status == StepActive && !st.Overdue && now.After(st.Due) {
			st.Overdue = true
			in.log(now, ByEngine, "overdue", st.ID, "%s is overdue (due %s); escalated to %s", st.Title, st.Due.Format("15:04:05"), strings.Join(def.Escalate, ", "))
			r.notify(Notification{At: now, Roles: def.Escalate, Incident: in.ID, Step: st.ID, Drill: in.Drill, Overdue: true,
				Text: "【" + i18n.Both("msg.overdue") + "】" + describe(in, st)})
			if def.OnOverdue != nil {
				r.perform(in, def, st, def.OnOverdue, now)
			}
			changed = true
		}
	}
	return changed
}

func actionSpawn(a *ActionSpec) *SpawnAction {
	if a == nil {
		return nil
	}
	return a.StartPlaybook
}

func (r *Runner) activate(in *Incident, def *Step, st *StepState, now time.Time) {
	st.Status, st.Started, st.Due = StepActive, now, now.Add(def.Deadline)
	in.log(now, ByEngine, "step_started", st.ID, "%s (%s, due %s)", st.Title, st.Role, st.Due.Format("15:04:05"))
	// A step that fills a record item completes from telemetry only on a
	// change observed after it started: a condition already true now says
	// nothing about when the thing happened, so a person must confirm it.
	if c := completions[def.Complete]; c != nil && def.Records != "" {
		if done, ev, _ := c.Check(&Exec{ctx: context.Background(), r: r, in: in, def: def, st: st, now: now}); done {
			st.HeldAtStart, st.Evidence = true, ev
			in.log(now, ByEngine, "note", st.ID, "步骤开始时条件已成立，须人工确认 already true when the step started (%s): a person must confirm it; the record will say who", strings.Join(ev, "; "))
		}
	}
	if def.Action != nil {
		ok := r.perform(in, def, st, def.Action, now)
		if c := completions[def.Complete]; ok && c != nil && c.OnAction() {
			r.finish(in, def, st, StepDone, ByEngine, "done by the gateway", now)
		}
	}
}

func (r *Runner) finish(in *Incident, def *Step, st *StepState, status StepStatus, by, note string, now time.Time) {
	st.Status, st.Done, st.By, st.Note = status, now, by, note
	kind := "step_done"
	if status == StepSkipped {
		kind = "step_skipped"
	}
	in.log(now, by, kind, st.ID, "%s: %s", st.Title, note)
	if def.Records != "" && status == StepDone {
		v := RecordValue{At: now, By: by, Note: note, Value: note, Source: FromPerson}
		switch {
		case by == "telemetry":
			v.Source, v.Value = FromTelemetry, strings.Join(st.Evidence, "; ")
		case st.HeldAtStart:
			v.Source, v.Note = FromConfirmed, "confirmed by "+by+": "+note
		}
		in.Record[def.Records] = v
	}
}

// Confirm is a person's go-ahead for the equipment writes a step is
// waiting for; they are performed now (a drill only records them). When
// the step completes by its action, it is done.
func (r *Runner) Confirm(ctx context.Context, id int64, step, by, note string) (*Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, err := r.openIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	p := r.playbooks[in.Playbook]
	if p == nil {
		return nil, ErrIncidentClosed
	}
	now := r.now()
	for i := range p.Steps {
		def := &p.Steps[i]
		st := in.Step(def.ID)
		if def.ID != step || st == nil {
			continue
		}
		if st.Awaiting == "" {
			return nil, kindErr(ErrNothingToConfirm, "step %s is not waiting for a confirmation", step)
		}
		spec := def.Action
		if st.AwaitingOverdue || spec == nil {
			spec = def.OnOverdue
		}
		x := &Exec{ctx: context.WithoutCancel(ctx), r: r, in: in, def: def, st: st, now: now}
		in.log(now, by, "confirmed", st.ID, "confirmed: %s%s", st.Awaiting, suffix(note))
		var werr error
		for _, act := range spec.actions() {
			if w, ok := act.(writeActions); ok {
				werr = w.Perform(x)
			}
		}
		if werr != nil {
			st.ActionErr = werr.Error()
			x.log("FAILED: %s", st.ActionErr)
			r.save(in)
			return in.clone(), nil // still awaiting: the person may try again
		}
		st.Awaiting, st.ActionErr = "", ""
		if c := completions[def.Complete]; c != nil && c.OnAction() && st.Status == StepActive && spec == def.Action {
			r.finish(in, def, st, StepDone, by, "confirmed and done: "+note, now)
		}
		r.advance(in, p, now)
		r.save(in)
		return in.clone(), nil
	}
	return nil, fmt.Errorf("%w %q in playbook %s", ErrNoStep, step, in.Playbook)
}

func suffix(note string) string {
	if strings.TrimSpace(note) == "" {
		return ""
	}
	return " (" + note + ")"
}

// spawn starts a child incident for each asset that newly matches.
func (r *Runner) spawn(in *Incident, def *Step, st *StepState, sp *SpawnAction, now time.Time) bool {
	child, ok := r.playbooks[sp.Playbook]
	if !ok {
		return false
	}
	changed := false
	for _, a := range assetsFor(sp.ForEach.Kind, sp.ForEach.Scope, in, r.assets) {
		if slices.Contains(st.Spawned, a.ID) {
			continue
		}
		probe := &Incident{Asset: a.ID, Building: a.Building}
		if ok, ev := anyHolds(sp.ForEach.WhenAny, probe, r.assets, r.telemetry); ok {
			st.Spawned = append(st.Spawned, a.ID)
			in.log(now, ByEngine, "evidence", st.ID, "%s: %s", a.ID, strings.Join(ev, "; "))
			if _, err := r.startLocked(child, a.ID, in.Drill, ByEngine, fmt.Sprintf("started by incident %d (%s)", in.ID, in.Name), in.ID, nil); err != nil {
				in.log(now, ByEngine, "action", st.ID, "FAILED to start %s for %s: %v", child.ID, a.ID, err)
			}
			changed = true
		}
	}
	return changed
}

// Errors for incident operations that do not apply.
var (
	ErrIncidentClosed   = errors.New("the incident is closed")
	ErrNoStep           = errors.New("no such step")
	ErrStepFinished     = errors.New("the step is already finished")
	ErrStepsOpen        = errors.New("steps still open")
	ErrNothingToConfirm = errors.New("nothing to confirm")
)

// kindErr is an error with its own message that errors.Is matches to kind.
func kindErr(kind error, format string, a ...any) error {
	return &kinded{kind: kind, msg: fmt.Sprintf(format, a...)}
}

type kinded struct {
	kind error
	msg  string
}

func (e *kinded) Error() string { return e.msg }
func (e *kinded) Unwrap() error { return e.kind }

func (r *Runner) openIncident(ctx context.Context, id int64) (*Incident, error) {
	in, ok := r.open[id]
	if ok {
		return in, nil
	}
	if _, err := r.store.Incident(ctx, id); err != nil {
		return nil, err
	}
	return nil, ErrIncidentClosed
}

// Complete marks a step done by a person.
func (r *Runner) Complete(ctx context.Context, id int64, step, by, note string) (*Incident, error) {
	return r.finishByPerson(ctx, id, step, by, note, StepDone)
}

// Skip marks a step skipped (the note says why).
func (r *Runner) Skip(ctx context.Context, id int64, step, by, note string) (*Incident, error) {
	if strings.TrimSpace(note) == "" {
		return nil, errors.New("a skipped step needs a note saying why")
	}
	return r.finishByPerson(ctx, id, step, by, note, StepSkipped)
}

func (r *Runner) finishByPerson(ctx context.Context, id int64, step, by, note string, status StepStatus) (*Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, err := r.openIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	p := r.playbooks[in.Playbook]
	now := r.now()
	if p == nil {
		return nil, ErrIncidentClosed
	}
	for i := range p.Steps {
		def, st := &p.Steps[i], in.Step(p.Steps[i].ID)
		if st == nil || st.ID != step {
			continue
		}
		if st.Status == StepDone || st.Status == StepSkipped {
			return nil, kindErr(ErrStepFinished, "step %s is already %s", step, st.Status)
		}
		if status == StepDone && def.NoteRequired && strings.TrimSpace(note) == "" {
			return nil, fmt.Errorf("step %s needs a note: %s", step, def.Title)
		}
		if st.Status == StepWaiting {
			st.Started = now
		}
		r.finish(in, def, st, status, by, note, now)
		r.advance(in, p, now)
		r.save(in)
		return in.clone(), nil
	}
	return nil, fmt.Errorf("%w %q in playbook %s", ErrNoStep, step, in.Playbook)
}

// AddEvidence attaches a note or observation to the timeline.
func (r *Runner) AddEvidence(ctx context.Context, id int64, by, text string) (*Incident, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("evidence needs text")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	in, err := r.openIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	in.log(r.now(), by, "evidence", "", "%s", text)
	r.save(in)
	return in.clone(), nil
}

// Close ends an incident once every required step is done or skipped.
func (r *Runner) Close(ctx context.Context, id int64, by, note string) (*Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, err := r.openIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	var open []string
	for _, st := range in.Steps {
		if !st.Optional && !st.Removed && st.Status != StepDone && st.Status != StepSkipped {
			open = append(open, st.ID)
		}
	}
	if len(open) > 0 {
		return nil, kindErr(ErrStepsOpen, "steps still open: %s; complete or skip them first", strings.Join(open, ", "))
	}
	now := r.now()
	in.Status, in.Closed = "closed", now
	in.log(now, by, "closed", "", "closed: %s", note)
	r.save(in)
	delete(r.open, id)
	return in.clone(), nil
}

// Incident returns one incident (open or closed).
func (r *Runner) Incident(ctx context.Context, id int64) (*Incident, error) {
	r.mu.Lock()
	if in, ok := r.open[id]; ok {
		c := in.clone()
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()
	return r.store.Incident(ctx, id)
}

// Incidents lists incidents, newest first.
func (r *Runner) Incidents(ctx context.Context, openOnly bool) ([]*Incident, error) {
	return r.store.Incidents(ctx, openOnly, 500)
}
