package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

// An internal fault: Building 3's main breaker opens with the incoming
// supply present (the simulator's breaker-trip scenario). The power-outage
// plan starts from main-breaker-open and classifies the internal branch
// from Building 3's own panel; its start is the alarm's activation.
func TestInternalFaultStartsTheOutagePlanIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	s.postJSON("/api/v1/simulator/scenarios/breaker-trip", `{"target": "b3-power-panel"}`)
	out := s.waitIncident("power-outage", "b3-power-panel")
	s.waitStep(out.ID, "classify")
	if note := s.stepNote(out.ID, "classify"); !strings.HasPrefix(note, "内部故障 internal fault: main breaker open") {
		t.Fatalf("classified as %q", note)
	}
	in := s.planIncident(out.ID)
	a := s.alarm("main-breaker-open:b3-power-panel")
	if in.Record["start"].Source != "telemetry" || !in.Record["start"].At.Equal(a.Since) || !strings.Contains(in.Record["start"].Value, "main-breaker-open:b3-power-panel") {
		t.Fatalf("start %+v, alarm since %v", in.Record["start"], a.Since)
	}
	if m := s.alarm("mains-lost:b3-power-panel"); m.State != "normal" {
		t.Fatalf("mains-lost is %s: the supply was there all along", m.State)
	}
	if p := s.asset("b3-power-panel"); p.Fields["mains_present"].Value != true || p.Fields["main_breaker_closed"].Value != false {
		t.Fatalf("panel: mains %v breaker %v", p.Fields["mains_present"].Value, p.Fields["main_breaker_closed"].Value)
	}
	for _, other := range s.incidents() {
		if other.Playbook == "power-outage" && other.ID != out.ID {
			t.Fatalf("a second outage incident for %s", other.Asset)
		}
	}
	// The internal branch: our electricians find the fault point.
	s.complete(out.ID, "cause", "内部故障：B1 配电室 3# 分路电缆短路，已隔离")
	s.complete(out.ID, "expected-restoration", "our electricians: back within 30 minutes")
	s.clearScenario("breaker-trip")
	// The incoming supply never went: 恢复供电 cannot be read off the
	// panel's mains, so a person confirms it and the record says so.
	s.confirmHeld(out.ID, "supply-back", "fault isolated, main breaker closed again: power back in Building 3")
	if r := s.planIncident(out.ID).Record["restored"]; r.Source != "confirmed" {
		t.Fatalf("supply back recorded as %+v", r)
	}
	s.complete(out.ID, "switch-on", "all breakers open, main first, then the branches except 3#")
	s.waitStep(out.ID, "verify-water") // the pumps run again behind the closed breaker
	s.stop(syscall.SIGTERM)
}

// A garage-only leak (flooding targeted at b3-leak-garage) floods only
// that sensor's area: the flooding plan starts, and no pump or valve is
// touched until a person has found the cause and confirmed the measure;
// then the residents affected are told.
func TestGarageLeakWaitsForAPersonIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	s.postJSON("/api/v1/simulator/scenarios/flooding", `{"target": "b3-leak-garage"}`)
	in := s.waitIncident("flooding", "b3-leak-garage")
	s.waitTicks("gateway_playbook_ticks_total", 3)
	if a := s.asset("b3-pump-room"); a.Fields["pump1_run_cmd"].Value != true || a.Fields["inlet_valve_cmd"].Value != true || a.Fields["pump1_running"].Value != true {
		t.Fatal("the residents' water was touched before anyone found the cause")
	}
	// Only the garage: the pump-room sensor is dry and its sump normal.
	if a := s.asset("b3-leak-pump-room"); a.Fields["leak"].Value != false {
		t.Fatal("the pump room's sensor is wet too")
	}
	if a := s.asset("b3-pump-room"); a.Fields["sump_high"].Value != false {
		t.Fatal("the pump-room sump is high")
	}
	if st := s.stepStatus(in.ID, "cut-source"); st != "waiting" {
		t.Fatalf("cut-source is %s before the report", st)
	}
	s.complete(in.ID, "report", "B2 garage by bay 40: a burst domestic-water pipe, 3 cm, spreading to the ramp")
	s.waitTicks("gateway_playbook_ticks_total", 3)
	if a := s.asset("b3-pump-room"); a.Fields["pump1_run_cmd"].Value != true || a.Fields["inlet_valve_cmd"].Value != true {
		t.Fatal("the pumps were stopped without a confirmation")
	}
	awaiting := s.confirmWrites(in.ID, "cut-source", "the burst pipe is on the supply side: cut it")
	if !strings.Contains(awaiting, "b3-pump-room.pump1_run_cmd = false") || !strings.Contains(awaiting, "b3-pump-room.inlet_valve_cmd = false") || strings.Contains(awaiting, "b5-") {
		t.Fatalf("the confirmation showed %q", awaiting)
	}
	s.waitStep(in.ID, "cut-source")
	s.waitStep(in.ID, "source-stopped")
	s.waitMessage("chen.jing", "Tell the affected residents") // customer service tells the residents their water is off
	s.complete(in.ID, "notify-supply-cut", "WeChat group and notice at the B3 entrance: water off until 16:00")
	if b5 := s.asset("b5-pump-room"); b5.Fields["pump1_run_cmd"].Value != true {
		t.Fatal("the other building's pumps were stopped too")
	}
	s.stop(syscall.SIGTERM)
}

// A drill on the plan's calendar, through the binary: the flooding plan's
// drill.at is set to the next minute (in a copy of the demo config, TZ=UTC)
// with the calendar on. It starts by itself as a drill, the team is told,
// its work order carries drill: true, and the KPIs leave it out.
func TestScheduledDrillIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	demo := demoYAML(t)
	os.WriteFile(filepath.Join(dir, "demo.yaml"), demo, 0o600)
	os.Mkdir(filepath.Join(dir, "playbooks"), 0o755)
	plan, _ := os.ReadFile(filepath.Join(root, "configs", "playbooks", "flooding.yaml"))
	at := time.Now().UTC().Add(time.Minute).Truncate(time.Minute)
	if time.Until(at) < 15*time.Second {
		at = at.Add(time.Minute) // time to start the gateway first
	}
	re := regexp.MustCompile(`(?m)^  at: "10:00"`)
	if !re.Match(plan) {
		t.Fatal(`flooding.yaml has no drill at "10:00" to move`)
	}
	plan = re.ReplaceAll(plan, []byte(fmt.Sprintf(`  at: "%s"`, at.Format("15:04"))))
	os.WriteFile(filepath.Join(dir, "playbooks", "flooding.yaml"), plan, 0o600)
	s.config = filepath.Join(dir, "demo.yaml")
	for i, e := range s.env {
		if e == "SCHEDULE_DRILLS=false" {
			s.env[i] = "SCHEDULE_DRILLS=true"
		}
	}
	s.env = append(s.env, "TZ=UTC")
	s.start()
	var plans []struct {
		ID        string
		NextDrill *time.Time `json:"next_drill"`
		LastDrill *time.Time `json:"last_drill"`
	}
	s.getJSON("/api/v1/playbooks", &plans)
	if len(plans) != 1 || plans[0].NextDrill == nil || !plans[0].NextDrill.Equal(at) || plans[0].LastDrill != nil {
		t.Fatalf("playbooks before the drill: %+v (want next %v)", plans, at)
	}
	if ins := s.incidents(); len(ins) != 0 {
		t.Fatalf("incidents before the drill's time: %+v", ins)
	}
	var drill incidentView
	s.waitFor("the scheduled drill", time.Until(at)+30*time.Second, func() bool {
		ins := s.incidents()
		if len(ins) == 1 {
			drill = ins[0]
		}
		return len(ins) == 1
	})
	if !drill.Drill || drill.Playbook != "flooding" || drill.Started.Before(at) {
		t.Fatalf("drill %+v (due %v)", drill, at)
	}
	var full struct{ Trigger string }
	s.getJSON(fmt.Sprintf("/api/v1/incidents/%d", drill.ID), &full)
	if full.Trigger != "scheduled drill (every 6mo)" {
		t.Fatalf("trigger %q", full.Trigger)
	}
	s.waitMessage("li.ming", "DRILL starts now") // the shift lead is reminded (drill.notify)
	s.waitStep(drill.ID, "damaged-equipment")    // the plan's work order, opened by the drill
	var orders []struct {
		ID    int64
		Drill bool
	}
	s.getJSON("/api/v1/workorders", &orders)
	// Other orders may be open meanwhile (the register's certificate
	// reminders, by the demo's dates): the plan's one is marked drill, and
	// only the others count.
	drills, others := 0, 0
	for _, o := range orders {
		if o.Drill {
			drills++
		} else {
			others++
		}
	}
	if drills != 1 {
		t.Fatalf("work orders %+v: want the drill's one, marked drill", orders)
	}
	var k struct {
		WorkOrders int `json:"workorders"`
		Drills     int `json:"drills"`
	}
	s.getJSON("/api/v1/kpis?from="+time.Now().Add(-time.Hour).Format(time.RFC3339)+"&to="+time.Now().Add(time.Hour).Format(time.RFC3339), &k)
	if k.WorkOrders != others || k.Drills != 1 {
		t.Fatalf("KPIs %+v with %d other orders: the drill's work order must not count", k, others)
	}
	s.getJSON("/api/v1/playbooks", &plans)
	if plans[0].LastDrill == nil || plans[0].LastDrill.Before(at) || !plans[0].NextDrill.After(at.AddDate(0, 5, 0)) {
		t.Fatalf("after the drill: last %v next %v", plans[0].LastDrill, plans[0].NextDrill)
	}
	if a := s.asset("b3-pump-room"); a.Fields["pump1_run_cmd"].Value != true {
		t.Fatal("a drill touched the pumps")
	}
	s.stop(syscall.SIGTERM)
}
