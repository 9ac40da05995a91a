package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
)

// Writer sets equipment fields (the Modbus collector).
type Writer interface {
	Write(ctx context.Context, asset, field string, v collectors.Value) error
}

// Publisher sends MQTT commands (sirens, LED boards).
type Publisher interface {
	PublishCommand(topic, payload string) error
}

// Notification asks alert routing to tell people in roles.
type Notification struct {
	Roles    []string `json:"roles"`
	Text     string   `json:"text"`
	Incident int64    `json:"incident"`
	Step     string   `json:"step,omitempty"`
	Drill    bool     `json:"drill"`
	Overdue  bool     `json:"overdue"`
}

// Runner runs playbooks: it starts incidents when their trigger alarms
// fire (or by hand, or on schedule), drives their steps from telemetry and
// actions, escalates overdue steps, and keeps every incident in the store.
type Runner struct {
	playbooks map[string]*Playbook
	list      []*Playbook
	assets    []collectors.Asset
	store     Store
	engine    *Engine
	state     Reader
	writer    Writer
	pub       Publisher
	bus       *Bus
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	open    map[int64]*Incident
	lastRun map[string]time.Time // scheduled playbooks
	since   time.Time            // when the runner started: alarms active since then are triggers
	handled map[string]time.Time // alarm id → the activation (ActiveSince) already handled
}

// NewRunner builds a runner; writer and pub may be nil (actions then fail
// with a clear error, recorded on the step).
func NewRunner(playbooks []Playbook, assets []collectors.Asset, store Store, engine *Engine, state Reader, writer Writer, pub Publisher, bus *Bus, log *slog.Logger, now func() time.Time) *Runner {
	r := &Runner{playbooks: map[string]*Playbook{}, assets: assets, store: store, engine: engine, state: state, writer: writer, pub: pub,
		bus: bus, log: log, now: now, open: map[int64]*Incident{}, lastRun: map[string]time.Time{}, handled: map[string]time.Time{}}
	for i := range playbooks {
		p := &playbooks[i]
		p.SetDefaults()
		r.playbooks[p.ID] = p
		r.list = append(r.list, p)
	}
	return r
}

// Playbooks lists the definitions.
func (r *Runner) Playbooks() []Playbook {
	out := make([]Playbook, len(r.list))
	for i, p := range r.list {
		out[i] = *p
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
		r.open[in.ID] = in
	}
	for _, in := range all {
		if t, ok := r.lastRun[in.Playbook]; !ok || in.Started.After(t) {
			r.lastRun[in.Playbook] = in.Started
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

// Run starts incidents from alarm events and ticks until ctx ends.
func (r *Runner) Run(ctx context.Context, every time.Duration) {
	Drive(ctx, r.bus.Subscribe(1024), every, r.OnEvent, r.Tick)
}

// OnEvent starts the playbooks an alarm triggers (fast path; Tick
// reconciles against the engine in case the bus dropped the event).
func (r *Runner) OnEvent(ev Event) {
	if ev.Type != EventAlarm || ev.Transition == nil || ev.Transition.To != StateUnacked ||
		(ev.Transition.From != StateNormal && ev.Transition.From != StateRTNUnacked) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trigger(ev.Alarm)
}

// trigger starts the playbooks for one alarm activation, once.
func (r *Runner) trigger(a *Alarm) {
	if t, ok := r.handled[a.ID]; ok && !a.ActiveSince.After(t) && !a.ActiveSince.IsZero() {
		return
	}
	r.handled[a.ID] = a.ActiveSince
	for _, p := range r.list {
		if slices.Contains(p.Trigger.Rules, a.Rule) {
			if _, err := r.startLocked(p, a.Asset, false, ByEngine, "alarm "+a.ID, 0); err != nil {
				r.log.Error("starting playbook failed", "playbook", p.ID, "alarm", a.ID, "err", err)
			}
		}
	}
}

// reconcile starts playbooks for alarms that activated since the runner
// started but whose event the bus did not deliver.
func (r *Runner) reconcile() {
	if r.engine == nil {
		return
	}
	for _, a := range r.engine.Alarms(func(a *Alarm) bool {
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
func (r *Runner) Start(playbook, asset string, drill bool, by string) (*Incident, error) {
	p, ok := r.playbooks[playbook]
	if !ok {
		return nil, fmt.Errorf("%w: no playbook %q", ErrNotFound, playbook)
	}
	if asset != "" {
		if _, ok := r.asset(asset); !ok {
			return nil, fmt.Errorf("asset %q is not declared", asset)
		}
	}
	return r.start(p, asset, drill, by, "started by "+by, 0)
}

// start opens an incident unless one is already open for the same
// playbook and once_per key (drills never collide with real incidents).
func (r *Runner) start(p *Playbook, assetID string, drill bool, by, trigger string, parent int64) (*Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.startLocked(p, assetID, drill, by, trigger, parent)
}

func (r *Runner) startLocked(p *Playbook, assetID string, drill bool, by, trigger string, parent int64) (*Incident, error) {
	a, _ := r.asset(assetID)
	now := r.now()
	if !drill {
		for _, in := range r.open {
			ia, _ := r.asset(in.Asset)
			if in.Playbook == p.ID && !in.Drill && onceKey(p, ia) == onceKey(p, a) {
				in.log(now, by, "note", "", "triggered again: %s", trigger)
				r.link(in, parent, now)
				r.save(in)
				return in, nil
			}
		}
	}
	in := &Incident{Playbook: p.ID, Name: p.Name, Drill: drill, Status: "open", Asset: a.ID, Building: a.Building,
		Location: location(a), Trigger: trigger, Started: now, Record: map[string]RecordValue{}, Version: 1}
	for _, s := range p.Steps {
		in.Steps = append(in.Steps, StepState{ID: s.ID, Title: s.Title, TitleZH: s.TitleZH, Role: s.Role, Status: StepWaiting, Optional: s.Optional})
	}
	in.log(now, by, "started", "", "%s started: %s", kindOf(in), trigger)
	for _, f := range p.Capture {
		if fs, ok := r.state.Get(a.ID, f); ok {
			in.log(now, ByEngine, "evidence", "", "%s.%s = %s (%s) at %s", a.ID, f, strings.Trim(fs.Value.String(), `"`), fs.Quality, fs.Time.Format("15:04:05"))
		}
	}
	if err := r.store.CreateIncident(context.Background(), in); err != nil {
		return nil, err
	}
	r.open[in.ID] = in
	r.lastRun[p.ID] = now
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

func kindOf(in *Incident) string {
	if in.Drill {
		return "DRILL"
	}
	return "incident"
}

// save persists an incident and publishes it.
func (r *Runner) save(in *Incident) {
	in.Version++
	if err := r.store.SaveIncident(context.Background(), in); err != nil {
		r.log.Error("saving incident failed", "incident", in.ID, "err", err)
	}
	r.bus.Publish(Event{Type: EventIncident, At: r.now(), Incident: in.clone()})
}

// Tick drives every open incident and starts scheduled playbooks.
func (r *Runner) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.reconcile()
	for _, p := range r.list {
		if p.Trigger.Every > 0 && now.Sub(r.lastRun[p.ID]) >= p.Trigger.Every {
			if _, err := r.startLocked(p, "", false, ByEngine, "scheduled every "+p.Trigger.Every.String(), 0); err != nil {
				r.log.Error("scheduled playbook failed", "playbook", p.ID, "err", err)
			}
		}
	}
	for _, in := range r.open {
		if r.advance(in, r.playbooks[in.Playbook], now) {
			r.save(in)
		}
	}
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
		def, st := &p.Steps[i], &in.Steps[i]
		if st.Status == StepWaiting {
			prev := in.step(def.After)
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
		switch def.Complete {
		case ByTelemetry:
			ok, ev := false, []string(nil)
			if len(def.When) > 0 {
				ok, ev = allHold(def.When, in, r.assets, r.state)
			} else {
				ok, ev = anyHolds(def.WhenAny, in, r.assets, r.state)
			}
			if ok {
				st.Evidence = ev
				r.finish(in, def, st, StepDone, "telemetry", "confirmed from telemetry: "+strings.Join(ev, "; "), now)
				changed = true
			}
		case ByDecision:
			for _, c := range def.Decide {
				if ok, ev := allHold(c.When, in, r.assets, r.state); ok {
					st.Evidence = ev
					r.finish(in, def, st, StepDone, "telemetry", c.Note+" (from telemetry: "+strings.Join(ev, "; ")+")", now)
					changed = true
					break
				}
			}
		}
		if st.Status == StepActive && !st.Overdue && now.After(st.Due) {
			st.Overdue = true
			in.log(now, ByEngine, "overdue", st.ID, "%s is overdue (due %s); escalated to %s", st.Title, st.Due.Format("15:04:05"), strings.Join(def.Escalate, ", "))
			r.bus.Publish(Event{Type: EventNotify, At: now, Notify: &Notification{Roles: def.Escalate, Incident: in.ID, Step: st.ID, Drill: in.Drill, Overdue: true,
				Text: fmt.Sprintf("OVERDUE %s %d %s: %s (%s)", kindOf(in), in.ID, in.Name, st.Title, in.Location)}})
			if def.OnOverdue != nil {
				r.perform(in, def, st, def.OnOverdue, now)
			}
			changed = true
		}
	}
	return changed
}

func actionSpawn(a *Action) *SpawnAction {
	if a == nil {
		return nil
	}
	return a.StartPlaybook
}

func (r *Runner) activate(in *Incident, def *Step, st *StepState, now time.Time) {
	st.Status, st.Started, st.Due = StepActive, now, now.Add(def.Deadline)
	in.log(now, ByEngine, "step_started", st.ID, "%s (%s, due %s)", st.Title, st.Role, st.Due.Format("15:04:05"))
	if def.Action != nil {
		ok := r.perform(in, def, st, def.Action, now)
		if ok && def.Complete == ByAction {
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
		in.Record[def.Records] = RecordValue{At: now, By: by, Note: note}
	}
}

func toValue(v any) collectors.Value {
	switch x := v.(type) {
	case bool:
		return collectors.Bool(x)
	case int:
		return collectors.Float(float64(x))
	case float64:
		return collectors.Float(x)
	case string:
		return collectors.String(x)
	}
	return collectors.Value{}
}

// perform runs an action; failures are recorded on the step and the
// timeline (and the step stays open, so it escalates when overdue).
func (r *Runner) perform(in *Incident, def *Step, st *StepState, a *Action, now time.Time) bool {
	var errs []string
	if len(a.Notify) > 0 {
		r.bus.Publish(Event{Type: EventNotify, At: now, Notify: &Notification{Roles: a.Notify, Incident: in.ID, Step: st.ID, Drill: in.Drill,
			Text: fmt.Sprintf("%s %d %s: %s (%s)", kindOf(in), in.ID, in.Name, st.Title, in.Location)}})
		in.log(now, ByEngine, "action", st.ID, "notified %s", strings.Join(a.Notify, ", "))
	}
	if w := a.WorkOrder; w != nil {
		desc := w.Description
		if desc == "" {
			desc = st.Title
		}
		if in.Drill {
			desc = "[DRILL] " + desc
		}
		pr := w.Priority
		if pr == "" {
			pr = High
		}
		wo, err := r.engine.CreateWorkOrder(WorkOrder{Category: w.Category, Asset: in.Asset, Location: in.Location, Priority: pr,
			Description: fmt.Sprintf("%s (incident %d, %s)", desc, in.ID, in.Name), Reporter: "playbook " + in.Playbook})
		if err != nil {
			errs = append(errs, "work order: "+err.Error())
		} else {
			in.log(now, ByEngine, "action", st.ID, "opened work order %d (%s)", wo.ID, w.Category)
		}
	}
	if sp := a.StartPlaybook; sp != nil && sp.ForEach == nil {
		if child, ok := r.playbooks[sp.Playbook]; ok {
			if _, err := r.startLocked(child, in.Asset, in.Drill, ByEngine, fmt.Sprintf("started by incident %d (%s)", in.ID, in.Name), in.ID); err != nil {
				errs = append(errs, "start playbook: "+err.Error())
			}
		}
	}
	for _, w := range a.Write {
		for _, target := range assetsFor(w.Kind, w.Scope, in, r.assets) {
			switch {
			case in.Drill:
				in.log(now, ByEngine, "action", st.ID, "drill: %s.%s = %v not written", target.ID, w.Field, w.Value)
			case r.writer == nil:
				errs = append(errs, fmt.Sprintf("write %s.%s: no equipment writer configured", target.ID, w.Field))
			default:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := r.writer.Write(ctx, target.ID, w.Field, toValue(w.Value))
				cancel()
				if err != nil {
					errs = append(errs, err.Error())
				} else {
					in.log(now, ByEngine, "action", st.ID, "wrote %s.%s = %v (verified by read-back)", target.ID, w.Field, w.Value)
				}
			}
		}
	}
	if m := a.MQTT; m != nil {
		topic := strings.NewReplacer("{asset}", in.Asset, "{building}", in.Building).Replace(m.Topic)
		switch {
		case in.Drill:
			in.log(now, ByEngine, "action", st.ID, "drill: MQTT %s %q not published", topic, m.Payload)
		case r.pub == nil:
			errs = append(errs, "mqtt: no broker configured")
		default:
			if err := r.pub.PublishCommand(topic, m.Payload); err != nil {
				errs = append(errs, "mqtt: "+err.Error())
			} else {
				in.log(now, ByEngine, "action", st.ID, "published %q to %s", m.Payload, topic)
			}
		}
	}
	if len(errs) > 0 {
		st.ActionErr = strings.Join(errs, "; ")
		in.log(now, ByEngine, "action", st.ID, "FAILED: %s", st.ActionErr)
		return false
	}
	st.ActionErr = ""
	return true
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
		if ok, ev := anyHolds(sp.ForEach.WhenAny, probe, r.assets, r.state); ok {
			st.Spawned = append(st.Spawned, a.ID)
			in.log(now, ByEngine, "evidence", st.ID, "%s: %s", a.ID, strings.Join(ev, "; "))
			if _, err := r.startLocked(child, a.ID, in.Drill, ByEngine, fmt.Sprintf("started by incident %d (%s)", in.ID, in.Name), in.ID); err != nil {
				in.log(now, ByEngine, "action", st.ID, "FAILED to start %s for %s: %v", child.ID, a.ID, err)
			}
			changed = true
		}
	}
	return changed
}

// Errors for incident operations that do not apply.
var (
	ErrIncidentClosed = errors.New("the incident is closed")
	ErrNoStep         = errors.New("no such step")
)

func (r *Runner) openIncident(id int64) (*Incident, error) {
	in, ok := r.open[id]
	if ok {
		return in, nil
	}
	if _, err := r.store.Incident(context.Background(), id); err != nil {
		return nil, err
	}
	return nil, ErrIncidentClosed
}

// Complete marks a step done by a person.
func (r *Runner) Complete(id int64, step, by, note string) (*Incident, error) {
	return r.finishByPerson(id, step, by, note, StepDone)
}

// Skip marks a step skipped (the note says why).
func (r *Runner) Skip(id int64, step, by, note string) (*Incident, error) {
	if strings.TrimSpace(note) == "" {
		return nil, errors.New("a skipped step needs a note saying why")
	}
	return r.finishByPerson(id, step, by, note, StepSkipped)
}

func (r *Runner) finishByPerson(id int64, step, by, note string, status StepStatus) (*Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, err := r.openIncident(id)
	if err != nil {
		return nil, err
	}
	p := r.playbooks[in.Playbook]
	now := r.now()
	for i := range in.Steps {
		st, def := &in.Steps[i], &p.Steps[i]
		if st.ID != step {
			continue
		}
		if st.Status == StepDone || st.Status == StepSkipped {
			return nil, fmt.Errorf("step %s is already %s", step, st.Status)
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
func (r *Runner) AddEvidence(id int64, by, text string) (*Incident, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("evidence needs text")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	in, err := r.openIncident(id)
	if err != nil {
		return nil, err
	}
	in.log(r.now(), by, "evidence", "", "%s", text)
	r.save(in)
	return in.clone(), nil
}

// Close ends an incident once every required step is done or skipped.
func (r *Runner) Close(id int64, by, note string) (*Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, err := r.openIncident(id)
	if err != nil {
		return nil, err
	}
	var open []string
	for _, st := range in.Steps {
		if !st.Optional && st.Status != StepDone && st.Status != StepSkipped {
			open = append(open, st.ID)
		}
	}
	if len(open) > 0 {
		return nil, fmt.Errorf("steps still open: %s; complete or skip them first", strings.Join(open, ", "))
	}
	now := r.now()
	in.Status, in.Closed = "closed", now
	in.log(now, by, "closed", "", "closed: %s", note)
	r.save(in)
	delete(r.open, id)
	return in.clone(), nil
}

// Incident returns one incident (open or closed).
func (r *Runner) Incident(id int64) (*Incident, error) {
	r.mu.Lock()
	if in, ok := r.open[id]; ok {
		c := in.clone()
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()
	return r.store.Incident(context.Background(), id)
}

// Incidents lists incidents, newest first.
func (r *Runner) Incidents(openOnly bool) ([]*Incident, error) {
	return r.store.Incidents(context.Background(), openOnly, 500)
}
