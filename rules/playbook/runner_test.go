package playbook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	. "github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/playbook/report"
	"github.com/propgate/gateway/rules/workorder"
)

var siteAssets = []collectors.Asset{
	{ID: "b3-panel", Kind: "distribution_panel", Name: "B3 panel", Building: "B3", Floor: "B1"},
	{ID: "b3-pump", Kind: "pump_room", Name: "B3 pump room", Building: "B3", Floor: "B1"},
	{ID: "b3-lift-1", Kind: "elevator", Name: "B3 car 1", Building: "B3"},
	{ID: "b3-lift-2", Kind: "elevator", Name: "B3 car 2", Building: "B3"},
	{ID: "b5-lift-1", Kind: "elevator", Name: "B5 car 1", Building: "B5"},
}

func testPlaybooks() []Playbook {
	return []Playbook{
		{ID: "outage", Name: "Power outage", Trigger: Trigger{Rules: []string{"mains-lost"}, OncePer: "site", Records: "start"},
			Record: []RecordField{{Key: "start", Label: "Outage start"}, {Key: "cause", Label: "Cause"}, {Key: "restored", Label: "Supply restored"}},
			Steps: []Step{
				{ID: "classify", Title: "Internal fault or external loss", Role: "duty_engineer", Deadline: 2 * time.Minute,
					Decide: []Case{
						{When: []Condition{{Kind: "distribution_panel", Field: "mains_present", Value: false}, {Kind: "distribution_panel", Field: "main_breaker_closed", Value: true}}, Note: "external supply loss"},
						{When: []Condition{{Kind: "distribution_panel", Field: "main_breaker_closed", Value: false}}, Note: "internal fault"},
					}},
				{ID: "check-lifts", Title: "Check every elevator", Role: "security", Deadline: 3 * time.Minute,
					Action: &ActionSpec{StartPlaybook: &SpawnAction{Playbook: "entrapment", ForEach: &ForEach{Kind: "elevator", Scope: "site",
						WhenAny: []Condition{{Field: "trapped", Op: "gt", Value: 0}, {Field: "between_floors", Value: true}}}}}},
				{ID: "call-utility", Title: "Call the utility", Role: "duty_engineer", Deadline: 5 * time.Minute, After: "classify", Records: "cause", NoteRequired: true},
				{ID: "supply-back", Title: "Incoming supply back", Role: "duty_engineer", Deadline: 4 * time.Hour, Records: "restored",
					When: []Condition{{Kind: "distribution_panel", Field: "mains_present", Value: true}}},
				{ID: "verify-cctv", Title: "CCTV back", Role: "duty_engineer", After: "supply-back", Deadline: 10 * time.Minute,
					When:      []Condition{{Kind: "cctv", Field: "online", Value: true}},
					OnOverdue: &ActionSpec{WorkOrder: &WorkOrderAction{Category: "security_systems", Description: "CCTV not verified after the outage"}}},
			}},
		{ID: "entrapment", Name: "Elevator entrapment", Trigger: Trigger{Rules: []string{"trapped"}},
			Capture: []string{"floor", "trapped"},
			Steps: []Step{
				{ID: "released", Title: "Passengers released", Role: "maintenance", Deadline: 30 * time.Minute,
					When: []Condition{{Field: "trapped", Value: 0}}},
			}},
		{ID: "flooding", Name: "Flooding", Steps: []Step{
			{ID: "cut-source", Title: "Stop the pumps", Role: "duty_engineer", Deadline: 5 * time.Minute, Complete: ByAction,
				Action: &ActionSpec{Write: []WriteAction{{Kind: "pump_room", Field: "pump1_run_cmd", Value: false}}}},
		}},
	}
}

type fakeWriter struct {
	mu     sync.Mutex
	writes []string
}

func (f *fakeWriter) Write(_ context.Context, asset, field string, v collectors.Value) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, fmt.Sprintf("%s.%s=%s", asset, field, v))
	return nil
}

type runnerHarness struct {
	t      *testing.T
	clock  *clock
	state  *collectors.State
	store  *sqlite.Rules
	bus    *event.Bus
	sub    *event.Sub
	engine *rules.Engine
	r      *Runner
	writer *fakeWriter
}

var bg = context.Background()

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)} }
func quietLog() *slog.Logger             { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func pt(asset, field string, v collectors.Value) collectors.Point {
	return collectors.Point{Asset: asset, Field: field, Value: v, Quality: collectors.QualityGood}
}

// fired is an alarm activation as the engine reports it.
func fired(id, rule, asset string) rules.Alarm {
	return rules.Alarm{ID: id, Rule: rule, Asset: asset, State: rules.StateUnacked, Active: true}
}

func newRunner(t *testing.T, path string, c *clock, state *collectors.State) *runnerHarness {
	return newRunnerWith(t, path, c, state, nil)
}

// newRunnerWith builds the harness; alarms (nil: the harness's own engine,
// which has no rules) is where the runner looks for active alarms.
func newRunnerWith(t *testing.T, path string, c *clock, state *collectors.State, alarms Alarms) *runnerHarness {
	return newRunnerFull(t, path, c, state, alarms, testPlaybooks())
}

func newRunnerFull(t *testing.T, path string, c *clock, state *collectors.State, alarms Alarms, pbs []Playbook) *runnerHarness {
	t.Helper()
	store, err := sqlite.OpenRules(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bus := event.NewBus(nil)
	h := &runnerHarness{t: t, clock: c, state: state, store: store, bus: bus, sub: bus.Subscribe(1000), writer: &fakeWriter{}}
	wo := workorder.NewService(workorder.Config{}, siteAssets, store, quietLog(), c.now, bus)
	h.engine = rules.NewEngine(rules.Config{}, siteAssets, rules.Deps{Store: store, Observers: []rules.Observer{bus}, OnFire: wo, Log: quietLog(), Now: c.now})
	if err := h.engine.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if alarms == nil {
		alarms = h.engine
	}
	ids := map[string]bool{}
	for _, p := range pbs {
		ids[p.ID] = true
	}
	for i := range pbs {
		pbs[i].SetDefaults()
		if err := pbs[i].Validate(ids, map[string]bool{"mains-lost": true, "trapped": true, "alarm-button": true}); err != nil {
			t.Fatal(err)
		}
	}
	h.r = NewRunner(pbs, siteAssets, Deps{Store: store, Alarms: alarms, WorkOrders: wo, Telemetry: state, Equipment: h.writer,
		Observers: []Observer{bus}, Log: quietLog(), Now: c.now})
	if err := h.r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *runnerHarness) set(asset, field string, v collectors.Value) {
	h.state.Apply([]collectors.Point{{Asset: asset, Field: field, Value: v, Quality: collectors.QualityGood, Time: h.clock.t}})
}

func (h *runnerHarness) notifications() []string {
	var out []string
	for len(h.sub.C) > 0 {
		if ev := <-h.sub.C; ev.Type == event.EventNotify {
			out = append(out, fmt.Sprintf("%v overdue=%v", ev.Notify.Roles, ev.Notify.Overdue))
		}
	}
	return out
}

func outageSite(h *runnerHarness) {
	h.set("b3-panel", "mains_present", collectors.Bool(false))
	h.set("b3-panel", "main_breaker_closed", collectors.Bool(true))
	for id, st := range map[string][2]int64{"b3-lift-1": {2, 1}, "b3-lift-2": {0, 0}, "b5-lift-1": {0, 0}} {
		h.set(id, "trapped", collectors.Float(float64(st[0])))
		h.set(id, "between_floors", collectors.Bool(st[1] == 1))
	}
}

// The outage playbook: decided from telemetry, one entrapment incident for
// the trapped car and none for cars at a landing, overdue steps escalate,
// an unverifiable system becomes a work order, restart in the middle.
func TestOutagePlaybook(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.db")
	c := newClock()
	state := collectors.NewState(siteAssets)
	h := newRunner(t, path, c, state)
	outageSite(h)
	first := fired("mains-lost:b3-panel", "mains-lost", "b3-panel")
	first.ActiveSince = c.t
	h.r.Trigger(first)
	ins, _ := h.r.Incidents(bg, false)
	if len(ins) != 2 {
		t.Fatalf("%d incidents, want the outage and one entrapment", len(ins))
	}
	outage, lift := ins[1], ins[0]
	if outage.Playbook != "outage" || lift.Playbook != "entrapment" || lift.Asset != "b3-lift-1" || lift.Parent != outage.ID {
		t.Fatalf("incidents: %+v / %+v", outage, lift)
	}
	if outage.Step("classify").Status != StepDone || outage.Step("classify").Note[:21] != "external supply loss " {
		t.Fatalf("classify: %+v", outage.Step("classify"))
	}
	// A second trigger (the other panel) does not open a second site-wide
	// outage. The outage remembers both activations (what the alarms'
	// message links may act on); the entrapment it started, none.
	second := fired("mains-lost:b5-panel", "mains-lost", "b3-panel")
	second.ActiveSince = c.t.Add(time.Second)
	h.r.Trigger(second)
	if ins, _ := h.r.Incidents(bg, true); len(ins) != 2 {
		t.Fatalf("%d open incidents after a second trigger", len(ins))
	}
	if o, _ := h.r.Incident(bg, outage.ID); !o.TriggeredBy(first.ID, first.ActiveSince) || !o.TriggeredBy(second.ID, second.ActiveSince) ||
		o.TriggeredBy(first.ID, first.ActiveSince.Add(time.Hour)) || len(lift.Activations) != 0 {
		t.Fatalf("activations: outage %+v, entrapment %+v", o.Activations, lift.Activations)
	}
	h.notifications()
	// check-lifts is due at 3 min, call-utility at 5 min (after classify,
	// done at once): each escalates once, just after its deadline.
	for _, at := range []struct {
		advance time.Duration
		want    string
	}{
		{3 * time.Minute, "[]"},
		{time.Second, "[[shift_lead] overdue=true]"},
		{2*time.Minute - time.Second, "[]"},
		{time.Second, "[[shift_lead] overdue=true]"},
		{time.Minute, "[]"},
	} {
		c.advance(at.advance)
		h.r.Tick()
		if n := fmt.Sprint(h.notifications()); n != at.want {
			t.Fatalf("notifications at +%s: %s, want %s", c.t.Sub(outage.Started), n, at.want)
		}
	}
	// Restart in the middle: a new runner on the same database continues.
	h.store.Close()
	h2 := newRunner(t, path, c, state)
	if _, err := h2.r.Complete(bg, outage.ID, "call-utility", "wang.li", ""); err == nil || err.Error() != "step call-utility needs a note: Call the utility" {
		t.Fatalf("complete without note: %v", err)
	}
	if _, err := h2.r.Complete(bg, outage.ID, "call-utility", "wang.li", "State Grid: feeder fault, back by 14:00"); err != nil {
		t.Fatal(err)
	}
	h2.set("b3-lift-1", "trapped", collectors.Float(0))
	h2.set("b3-panel", "mains_present", collectors.Bool(true))
	c.advance(time.Minute)
	h2.r.Tick()
	got, _ := h2.r.Incident(bg, outage.ID)
	if got.Step("supply-back").Status != StepDone || got.Record["restored"].At != c.t || got.Record["cause"].Note == "" {
		t.Fatalf("after restoration: %+v record %+v", got.Step("supply-back"), got.Record)
	}
	if l, _ := h2.r.Incident(bg, lift.ID); l.Step("released").Status != StepDone {
		t.Fatalf("entrapment not released from telemetry: %+v", l.Step("released"))
	}
	// No CCTV asset can confirm it is back: at its deadline, a work order.
	c.advance(10*time.Minute + time.Second)
	h2.r.Tick()
	ws, _ := h2.store.WorkOrders(context.Background(), workorder.Filter{Category: "security_systems"})
	if len(ws) != 1 || !strings.HasPrefix(ws[0].Description, "CCTV not verified after the outage (incident 1") {
		t.Fatalf("work orders: %+v", ws)
	}
	if o, _ := h2.r.Incident(bg, outage.ID); !slices.Contains(o.WorkOrders, ws[0].ID) || !o.TriggeredBy(first.ID, first.ActiveSince) {
		t.Fatalf("after a restart the outage remembers work orders %v and activations %+v", o.WorkOrders, o.Activations)
	}
	if _, err := h2.r.Close(bg, outage.ID, "li.ming", "done"); err == nil || err.Error() != "steps still open: check-lifts, verify-cctv; complete or skip them first" {
		t.Fatalf("close with open steps: %v", err)
	}
	h2.r.Complete(bg, outage.ID, "check-lifts", "zhao.gang", "all cars checked")
	h2.r.Skip(bg, outage.ID, "verify-cctv", "li.ming", "CCTV vendor booked, see work order")
	closed, err := h2.r.Close(bg, outage.ID, "li.ming", "supply restored, all systems checked")
	if err != nil || closed.Status != "closed" {
		t.Fatalf("close: %v", err)
	}
	md := report.Markdown(must(h2.r.Playbook(closed.Playbook)), closed)
	for _, want := range []string{"# Power outage", "| Outage start |", "| Cause |", "State Grid: feeder fault", "| Supply restored |", "| 引发的事件 Incidents it started | 2 |", "值班人签字", "工程部经理签字", "was overdue"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if _, err := report.HTML(must(h2.r.Playbook(closed.Playbook)), closed); err != nil {
		t.Fatal(err)
	}
}

// An entrapment started by its own alarm before the outage noticed the car
// is linked to the outage, not started twice.
func TestOutageLinksAnEntrapmentAlreadyOpen(t *testing.T) {
	c := newClock()
	h := newRunner(t, filepath.Join(t.TempDir(), "gw.db"), c, collectors.NewState(siteAssets))
	outageSite(h)
	h.r.Trigger(fired("trapped:b3-lift-1", "trapped", "b3-lift-1"))
	c.advance(2 * time.Second)
	h.r.Trigger(fired("mains-lost:b3-panel", "mains-lost", "b3-panel"))
	ins, _ := h.r.Incidents(bg, false)
	if len(ins) != 2 || ins[0].Playbook != "outage" || ins[1].Parent != ins[0].ID || fmt.Sprint(ins[0].Children) != fmt.Sprintf("[%d]", ins[1].ID) {
		t.Fatalf("incidents: %d; outage children %v, entrapment parent %d", len(ins), ins[0].Children, ins[1].Parent)
	}
}

// A trigger whose event the bus dropped is picked up from the engine on
// the next tick, once.
func TestTriggerNotLostWhenTheBusDropsIt(t *testing.T) {
	c := newClock()
	state := collectors.NewState(siteAssets)
	// An engine with the trigger rule; its changes are never given to the runner.
	store2, _ := sqlite.OpenRules(filepath.Join(t.TempDir(), "engine.db"), false)
	defer store2.Close()
	cfg := rules.Config{Rules: []rules.Rule{{ID: "mains-lost", Target: rules.Target{Kind: "distribution_panel"}, Field: "mains_present",
		State: &rules.StateMatch{Equals: false}, Priority: rules.Critical}}}
	if err := cfg.Validate(siteAssets); err != nil {
		t.Fatal(err)
	}
	e := rules.NewEngine(cfg, siteAssets, rules.Deps{Store: store2, Log: quietLog(), Now: c.now})
	e.Load(context.Background())
	h := newRunnerWith(t, filepath.Join(t.TempDir(), "gw.db"), c, state, e)
	c.advance(time.Second)
	e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(false))})
	h.r.Tick()
	h.r.Tick()
	ins, _ := h.r.Incidents(bg, false)
	if len(ins) != 1 || ins[0].Playbook != "outage" || ins[0].Trigger != "alarm mains-lost:b3-panel" {
		t.Fatalf("incidents %+v", ins)
	}
	if n := len(ins[0].Timeline); strings.Contains(fmt.Sprint(ins[0].Timeline), "triggered again") {
		t.Fatalf("re-triggered on every tick (%d entries)", n)
	}
}

// A drill runs the same steps but never touches equipment.
func TestDrillDoesNotWriteEquipment(t *testing.T) {
	c := newClock()
	h := newRunner(t, filepath.Join(t.TempDir(), "gw.db"), c, collectors.NewState(siteAssets))
	in, err := h.r.Start(bg, "flooding", "b3-pump", true, "li.ming")
	if err != nil {
		t.Fatal(err)
	}
	if in.Step("cut-source").Awaiting != "b3-pump.pump1_run_cmd = false" {
		t.Fatalf("drill: the write does not wait for a confirmation: %+v", in.Step("cut-source"))
	}
	if in, err = h.r.Confirm(bg, in.ID, "cut-source", "wang.li", "drill: pumps would stop"); err != nil {
		t.Fatal(err)
	}
	if len(h.writer.writes) != 0 || !in.Drill || in.Step("cut-source").Status != StepDone {
		t.Fatalf("drill: writes %v, step %+v", h.writer.writes, in.Step("cut-source"))
	}
	if !strings.Contains(report.Markdown(must(h.r.Playbook(in.Playbook)), in), "# 演练 DRILL — Flooding") {
		t.Fatal("drill report is not marked")
	}
	real, _ := h.r.Start(bg, "flooding", "b3-pump", false, "li.ming")
	if real.ID == in.ID {
		t.Fatal("a drill and a real incident shared an incident")
	}
	if len(h.writer.writes) != 0 {
		t.Fatalf("wrote before anyone confirmed: %v", h.writer.writes)
	}
	real, err = h.r.Confirm(bg, real.ID, "cut-source", "wang.li", "burst pipe in the pump room, not rain")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(h.writer.writes) != "[b3-pump.pump1_run_cmd=false]" || real.Step("cut-source").Status != StepDone || real.Step("cut-source").By != "wang.li" {
		t.Fatalf("real incident: writes %v, step %+v", h.writer.writes, real.Step("cut-source"))
	}
	if _, err := h.r.Confirm(bg, real.ID, "cut-source", "wang.li", ""); !errors.Is(err, ErrNothingToConfirm) {
		t.Fatalf("a second confirmation: %v", err)
	}
}

// A write the author marks auto (with a reason) runs without a person; auto
// without a reason is refused at load.
func TestAutoWritesNeedAReason(t *testing.T) {
	p := Playbook{ID: "flooding", Name: "x", Steps: []Step{{ID: "a", Title: "a", Role: "r", Deadline: time.Minute, Complete: ByAction,
		Action: &ActionSpec{Auto: true, Write: []WriteAction{{Field: "siren", Value: true}}}}}}
	p.SetDefaults()
	if err := p.Validate(map[string]bool{"flooding": true}, nil); err == nil || !strings.Contains(err.Error(), "steps[0].action.reason: auto: true needs a reason") {
		t.Fatalf("auto without reason: %v", err)
	}
	p.Steps[0].Action.Reason = "the siren only warns; it cuts nothing"
	if err := p.Validate(map[string]bool{"flooding": true}, nil); err != nil {
		t.Fatal(err)
	}
	if got := p.AutoActions(); len(got) != 1 || !strings.Contains(got[0], "the siren only warns") {
		t.Fatalf("auto actions listed for gateway check: %v", got)
	}
}

// A record item is stamped by a change seen after its step started, or by a
// person: an entrapment opened by hand when the car already reports nobody
// trapped does not record "released" at the start; a person confirms it,
// and the record says so. The outage's start is the alarm's activation.
func TestRecordsAreWhenThingsHappened(t *testing.T) {
	c := newClock()
	state := collectors.NewState(siteAssets)
	h := newRunner(t, filepath.Join(t.TempDir(), "gw.db"), c, state)
	h.set("b3-lift-2", "trapped", collectors.Float(0))
	pbs := testPlaybooks()
	pbs[1].Record = []RecordField{{Key: "release", Label: "Passengers released"}}
	pbs[1].Steps[0].Records = "release"
	h = newRunnerFull(t, filepath.Join(t.TempDir(), "gw2.db"), c, state, nil, pbs)
	in, err := h.r.Start(bg, "entrapment", "b3-lift-2", false, "li.ming")
	if err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	h.r.Tick()
	got, _ := h.r.Incident(bg, in.ID)
	if st := got.Step("released"); st.Status != StepActive || !st.HeldAtStart {
		t.Fatalf("released from a level already true at the start: %+v", st)
	}
	if _, ok := got.Record["release"]; ok {
		t.Fatalf("record stamped without a change: %+v", got.Record)
	}
	got, err = h.r.Complete(bg, in.ID, "released", "zhao.gang", "saw them out of the car")
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Record["release"]; v.Source != FromConfirmed || v.By != "zhao.gang" || !v.At.Equal(c.t) || !strings.HasPrefix(v.Note, "confirmed by zhao.gang") {
		t.Fatalf("record: %+v", v)
	}

	// The other way round: trapped at the start, released later by telemetry.
	h.set("b3-lift-1", "trapped", collectors.Float(3))
	in2, _ := h.r.Start(bg, "entrapment", "b3-lift-1", false, "li.ming")
	c.advance(time.Minute)
	h.set("b3-lift-1", "trapped", collectors.Float(0))
	h.r.Tick()
	got, _ = h.r.Incident(bg, in2.ID)
	if v := got.Record["release"]; v.Source != FromTelemetry || !v.At.Equal(c.t) || !strings.Contains(v.Value, "b3-lift-1.trapped = 0") {
		t.Fatalf("telemetry record: %+v", v)
	}

	// Outage start: the alarm's activation, not when it was classified.
	outageSite(h)
	activated := c.t.Add(-90 * time.Second)
	a := fired("mains-lost:b3-panel", "mains-lost", "b3-panel")
	a.ActiveSince = activated
	h.r.Trigger(a)
	ins, _ := h.r.Incidents(bg, true)
	for _, in := range ins {
		if in.Playbook == "outage" {
			if v := in.Record["start"]; !v.At.Equal(activated) || v.Source != FromTelemetry {
				t.Fatalf("outage start: %+v", v)
			}
			return
		}
	}
	t.Fatal("no outage")
}

func TestPlaybookValidation(t *testing.T) {
	ids := map[string]bool{"outage": true}
	ruleIDs := map[string]bool{"mains-lost": true}
	cases := []struct {
		p    Playbook
		want string
	}{
		{Playbook{ID: "outage", Name: "x", Trigger: Trigger{Rules: []string{"mains-gone"}}, Steps: []Step{{ID: "a", Title: "a", Role: "r", Deadline: time.Minute}}},
			`trigger.rules[0]: "mains-gone" is not a rule id (rules.rules in the gateway config)`},
		{Playbook{ID: "outage", Name: "x", Steps: []Step{{ID: "a", Title: "a", Role: "r"}}}, "steps[0].deadline: is required: how long after the step starts it must be done, e.g. 3m"},
		{Playbook{ID: "outage", Name: "x", Steps: []Step{{ID: "a", Title: "a", Role: "r", Deadline: time.Minute, After: "b"}}}, `steps[0].after: "b" is not an earlier step`},
		{Playbook{ID: "outage", Name: "x", Steps: []Step{{ID: "a", Title: "a", Role: "r", Deadline: time.Minute,
			Action: &ActionSpec{StartPlaybook: &SpawnAction{Playbook: "rescue"}}}}}, `steps[0].action.start_playbook.playbook: "rescue" is not a playbook; fix: the id of a file in the playbooks folder`},
		{Playbook{ID: "outage", Name: "x", Steps: []Step{{ID: "a", Title: "a", Role: "r", Deadline: time.Minute,
			When: []Condition{{Field: "f", Op: "approx", Value: 1}}}}}, `steps[0].when[0].op: "approx" is not an operator; fix: eq, ne, gt, ge, lt or le`},
		{Playbook{ID: "outage", Name: "x", Steps: []Step{{ID: "a", Title: "a", Role: "r", Deadline: time.Minute, Records: "arrival"}}}, `steps[0].records: "arrival" is not a key under record:`},
	}
	for _, c := range cases {
		c.p.SetDefaults()
		if err := c.p.Validate(ids, ruleIDs); err == nil || err.Error() != c.want {
			t.Errorf("err = %v\nwant %s", err, c.want)
		}
	}
}

// A note cannot forge timeline lines or inject HTML into the Markdown
// report (the record an inspector reads).
func TestReportEscapesWhatPeopleWrote(t *testing.T) {
	c := newClock()
	h := newRunner(t, filepath.Join(t.TempDir(), "gw.db"), c, collectors.NewState(siteAssets))
	in, err := h.r.Start(bg, "entrapment", "b3-lift-1", false, "li.ming")
	if err != nil {
		t.Fatal(err)
	}
	forged := "ok\n- 2026-11-02 08:00:00 — admin — closed: all fine <img src=x onerror=alert(1)> [x](javascript:alert(1)) | cell"
	in, err = h.r.AddEvidence(bg, in.ID, "li.ming", forged)
	if err != nil {
		t.Fatal(err)
	}
	md := report.Markdown(must(h.r.Playbook(in.Playbook)), in)
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "- 2026-11-02 08:00:00 — admin") {
			t.Errorf("forged timeline line: %s", line)
		}
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`<img`), regexp.MustCompile(`[^\\]\]\(javascript`), regexp.MustCompile(`[^\\]\| cell`)} {
		if bad.MatchString(md) {
			t.Errorf("report matches %s:\n%s", bad, md)
		}
	}
	if !strings.Contains(md, `&lt;img src=x onerror=alert(1)&gt; \[x\](javascript:alert(1)) \| cell`) {
		t.Errorf("the note is not kept, escaped:\n%s", md)
	}
}

// Editing a playbook while one of its incidents is open (a step added, a
// step removed) or removing the playbook must not crash the runner on the
// next start (it used to index steps by position: a crash loop); the
// incident continues with the new steps, and the record says what changed.
func TestIncidentsSurviveAnEditedPlaybook(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.db")
	c := newClock()
	state := collectors.NewState(siteAssets)
	h := newRunner(t, path, c, state)
	outageSite(h)
	h.r.Trigger(fired("mains-lost:b3-panel", "mains-lost", "b3-panel"))
	ins, _ := h.r.Incidents(bg, true)
	var outage, lift *Incident
	for _, in := range ins {
		switch in.Playbook {
		case "outage":
			outage = in
		case "entrapment":
			lift = in
		}
	}
	if outage == nil || lift == nil {
		t.Fatalf("incidents %+v", ins)
	}
	h.store.Close()

	// The edit: outage gets a step before the others and loses call-utility;
	// the entrapment playbook is deleted.
	pbs := testPlaybooks()
	out := &pbs[0]
	out.Steps = append([]Step{{ID: "announce", Title: "Announce on the PA", Role: "security", Deadline: time.Minute}}, out.Steps...)
	for i, st := range out.Steps {
		if st.ID == "call-utility" {
			out.Steps = append(out.Steps[:i], out.Steps[i+1:]...)
			break
		}
	}
	out.Steps[0].Title = "Announce on the PA"
	pbs = []Playbook{pbs[0], pbs[2]} // outage, flooding
	for i := range pbs[0].Steps {    // check-lifts spawned entrapment, which is gone
		if pbs[0].Steps[i].Action != nil {
			pbs[0].Steps[i].Action = nil
		}
	}
	h2 := newRunnerFull(t, path, c, state, nil, pbs)
	c.advance(2 * time.Minute)
	h2.r.Tick() // used to panic: index out of range

	got, err := h2.r.Incident(bg, outage.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.Step("announce"); st == nil || st.Status != StepActive {
		t.Fatalf("new step: %+v", st)
	}
	if st := got.Step("call-utility"); st == nil || !st.Removed {
		t.Fatalf("removed step not kept as removed: %+v", st)
	}
	if _, err := h2.r.Complete(bg, outage.ID, "call-utility", "wang.li", "x"); err == nil {
		t.Fatal("a removed step was completed")
	}
	tl := fmt.Sprint(got.Timeline)
	for _, want := range []string{"the playbook has a new step since this incident started: Announce on the PA", "step call-utility (Call the utility, active) is no longer in the playbook"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	l, err := h2.r.Incident(bg, lift.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Status != "closed" || !strings.Contains(fmt.Sprint(l.Timeline), `playbook "entrapment" is no longer configured; steps not done: released`) {
		t.Fatalf("orphaned incident: %s %v", l.Status, l.Timeline)
	}
	if open, _ := h2.r.Incidents(bg, true); len(open) != 1 {
		t.Fatalf("%d open incidents, want the outage only", len(open))
	}
	// Closing waits for the steps the playbook has now, not for removed ones.
	for _, st := range got.Steps {
		if !st.Removed && st.Status != StepDone && st.Status != StepSkipped && !st.Optional {
			if _, err := h2.r.Skip(bg, outage.ID, st.ID, "li.ming", "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := h2.r.Close(bg, outage.ID, "li.ming", "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func must(p *Playbook, ok bool) *Playbook {
	if !ok {
		panic("no such playbook")
	}
	return p
}

// A plan drilled every six months: with none on record the first starts the
// next time the clock reaches its hour, as a drill (nothing written, its
// work orders flagged), the team is reminded, and the next is due six
// calendar months later; the API lists both dates.
func TestScheduledDrills(t *testing.T) {
	c := newClock() // 2026-11-02 08:00 UTC
	pbs := testPlaybooks()
	pbs[2].Drill = &DrillSchedule{Every: Interval{Months: 6}, At: "10:00", Notify: []string{"shift_lead"}}
	pbs[2].Steps = append(pbs[2].Steps, Step{ID: "damage", Title: "Damage work order", Role: "duty_engineer", Deadline: time.Hour,
		Complete: ByAction, Action: &ActionSpec{WorkOrder: &WorkOrderAction{Category: "flood_damage"}}})
	h := newRunnerFull(t, filepath.Join(t.TempDir(), "gw.db"), c, collectors.NewState(siteAssets), nil, pbs)
	for _, d := range []time.Duration{time.Hour, 59 * time.Minute} {
		c.advance(d)
		h.r.Tick()
		if ins, _ := h.r.Incidents(bg, false); len(ins) != 0 {
			t.Fatalf("a drill started at %s, before 10:00", c.t.Format("15:04"))
		}
	}
	h.notifications()
	c.advance(time.Minute) // 10:00
	h.r.Tick()
	ins, _ := h.r.Incidents(bg, false)
	if len(ins) != 1 || !ins[0].Drill || ins[0].Playbook != "flooding" || ins[0].Trigger != "scheduled drill (every 6mo)" {
		t.Fatalf("incidents at 10:00: %+v", ins)
	}
	if n := h.notifications(); !strings.Contains(fmt.Sprint(n), "[shift_lead]") {
		t.Fatalf("team not reminded: %v", n)
	}
	if len(h.writer.writes) != 0 {
		t.Fatalf("a drill wrote to equipment: %v", h.writer.writes)
	}
	orders, _ := h.store.WorkOrders(bg, workorder.Filter{Category: "flood_damage"})
	if len(orders) != 1 || !orders[0].Drill {
		t.Fatalf("drill work orders: %+v", orders)
	}
	c.advance(24 * time.Hour)
	h.r.Tick()
	if ins, _ := h.r.Incidents(bg, false); len(ins) != 1 {
		t.Fatalf("%d incidents a day later", len(ins))
	}
	for _, p := range h.r.Playbooks() {
		if p.ID != "flooding" {
			continue
		}
		if p.LastDrill == nil || !p.LastDrill.Equal(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)) ||
			p.NextDrill == nil || !p.NextDrill.Equal(time.Date(2027, 5, 2, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("last %v next %v", p.LastDrill, p.NextDrill)
		}
		return
	}
	t.Fatal("flooding not listed")
}

func TestIntervals(t *testing.T) {
	for in, want := range map[string]string{"6mo": "6mo", "1y": "1y", "2w": "14d", "90d": "90d", "72h": "72h0m0s"} {
		iv, err := ParseInterval(in)
		if err != nil || iv.String() != want {
			t.Errorf("%s: %v %v", in, iv, err)
		}
	}
	if _, err := ParseInterval("half a year"); err == nil || !strings.Contains(err.Error(), "fix: 6mo, 1y, 2w, 90d or 72h") {
		t.Errorf("bad interval: %v", err)
	}
	iv, _ := ParseInterval("6mo")
	if got := iv.After(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2027, 5, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("6mo after: %v", got)
	}
}

// Every deadline can say where it comes from, and the report shows it.
func TestDeadlineSourceInTheReport(t *testing.T) {
	pbs := testPlaybooks()
	pbs[1].Steps[0].Source = "national rule: maintenance arrives within 30 min"
	h := newRunnerFull(t, filepath.Join(t.TempDir(), "gw.db"), newClock(), collectors.NewState(siteAssets), nil, pbs)
	in, err := h.r.Start(bg, "entrapment", "b3-lift-1", false, "li.ming")
	if err != nil {
		t.Fatal(err)
	}
	if in.Step("released").DeadlineSource != "national rule: maintenance arrives within 30 min" {
		t.Fatalf("step: %+v", in.Step("released"))
	}
	if md := report.Markdown(must(h.r.Playbook(in.Playbook)), in); !strings.Contains(md, "2026-11-02 08:30:00 (national rule: maintenance arrives within 30 min)") {
		t.Fatalf("report:\n%s", md)
	}
}

// A drill ends with its evaluation and the participants; a real incident
// skips that step, does not wait for it and does not report it missing.
func TestDrillOnlyEvaluation(t *testing.T) {
	pbs := testPlaybooks()
	pbs[1].Record = []RecordField{{Key: "evaluation", Label: "Drill evaluation and participants"}}
	pbs[1].Steps = append(pbs[1].Steps, Step{ID: "drill-evaluation", Title: "Evaluate the drill; list the participants", Role: "shift_lead",
		After: "released", Deadline: 24 * time.Hour, DrillOnly: true, NoteRequired: true, Records: "evaluation"})
	c := newClock()
	state := collectors.NewState(siteAssets)
	h := newRunnerFull(t, filepath.Join(t.TempDir(), "gw.db"), c, state, nil, pbs)
	h.set("b3-lift-1", "trapped", collectors.Float(2))
	real, _ := h.r.Start(bg, "entrapment", "b3-lift-1", false, "li.ming")
	drill, _ := h.r.Start(bg, "entrapment", "b3-lift-1", true, "li.ming")
	if st := real.Step("drill-evaluation"); st.Status != StepSkipped {
		t.Fatalf("real incident: %+v", st)
	}
	if st := drill.Step("drill-evaluation"); st.Status != StepWaiting {
		t.Fatalf("drill: %+v", st)
	}
	c.advance(time.Minute)
	h.set("b3-lift-1", "trapped", collectors.Float(0))
	h.r.Tick()
	if _, err := h.r.Close(bg, real.ID, "li.ming", "all out"); err != nil {
		t.Fatalf("a real incident waits for the drill's evaluation: %v", err)
	}
	if _, err := h.r.Close(bg, drill.ID, "li.ming", "done"); !errors.Is(err, ErrStepsOpen) {
		t.Fatalf("a drill closed without its evaluation: %v", err)
	}
	got, _ := h.r.Incident(bg, real.ID)
	if md := report.Markdown(must(h.r.Playbook("entrapment")), got); strings.Contains(md, "Drill evaluation") {
		t.Fatalf("the real incident's report lists the drill evaluation:\n%s", md)
	}
	drillIn, err := h.r.Complete(bg, drill.ID, "drill-evaluation", "li.ming", "reached the car in 2 min; participants: 赵刚, 王立, 李明")
	if err != nil || drillIn.Record["evaluation"].By != "li.ming" {
		t.Fatalf("evaluation: %v %+v", err, drillIn)
	}
}

// A condition can compare a reading with another reading of the same
// asset: the car at its own top floor (电梯升至最高层), whatever the
// building's height.
func TestConditionAgainstAnotherReading(t *testing.T) {
	state := collectors.NewState(siteAssets)
	in := &Incident{Asset: "b3-lift-1", Building: "B3"}
	set := func(field string, v collectors.Value) {
		state.Apply([]collectors.Point{{Asset: "b3-lift-1", Field: field, Value: v, Quality: collectors.QualityGood, Time: time.Unix(1, 0)}})
	}
	c := []Condition{{Field: "floor", ValueField: "top_floor"}}
	set("top_floor", collectors.Float(18))
	set("floor", collectors.Float(1))
	if ok, _ := AllHold(c, in, siteAssets, state); ok {
		t.Fatal("floor 1 held as the top floor")
	}
	set("floor", collectors.Float(18))
	if ok, ev := AllHold(c, in, siteAssets, state); !ok || !strings.Contains(fmt.Sprint(ev), "b3-lift-1.top_floor = 18") {
		t.Fatalf("at the top: %v %v", ok, ev)
	}
	p := Playbook{ID: "x", Name: "x", Steps: []Step{{ID: "a", Title: "a", Role: "r", Deadline: time.Minute,
		When: []Condition{{Field: "floor", Value: 1, ValueField: "top_floor"}}}}}
	p.SetDefaults()
	if err := p.Validate(map[string]bool{"x": true}, nil); err == nil || !strings.Contains(err.Error(), "set value or value_field, not both") {
		t.Fatalf("both: %v", err)
	}
}

// The alarm button starts the entrapment plan only when the car is stopped
// between floors (or reports people inside); pressed in a car at a landing
// it starts nothing, and the plan starts as soon as the guard holds while
// the alarm is still active.
func TestTriggerGuard(t *testing.T) {
	pbs := testPlaybooks()
	pbs[1].Trigger = Trigger{Rules: []string{"trapped", "alarm-button"}, WhenAny: []Condition{{Field: "trapped", Op: "gt", Value: 0}, {Field: "between_floors", Value: true}}}
	c := newClock()
	state := collectors.NewState(siteAssets)
	h := newRunnerFull(t, filepath.Join(t.TempDir(), "gw.db"), c, state, nil, pbs)
	h.set("b3-lift-2", "trapped", collectors.Float(0))
	h.set("b3-lift-2", "between_floors", collectors.Bool(false))
	a := fired("alarm-button:b3-lift-2", "alarm-button", "b3-lift-2")
	a.ActiveSince = c.t
	h.r.Trigger(a)
	if ins, _ := h.r.Incidents(bg, false); len(ins) != 0 {
		t.Fatalf("an alarm button at a landing started %d incidents", len(ins))
	}
	c.advance(time.Second)
	h.set("b3-lift-2", "between_floors", collectors.Bool(true))
	h.r.Trigger(a) // the next pass while the alarm is active
	h.r.Trigger(a)
	ins, _ := h.r.Incidents(bg, false)
	if len(ins) != 1 || ins[0].Playbook != "entrapment" || ins[0].Asset != "b3-lift-2" {
		t.Fatalf("incidents: %+v", ins)
	}
}
