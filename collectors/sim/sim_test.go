package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/testenv"
)

func newSite() *site {
	s := &site{rnd: rand.New(rand.NewSource(1)), scenarios: map[string]string{}}
	s.pumps = []*pumpRoom{{id: "b3-pump", building: "B3", outlet: 0.4, sump: 0.3, tank: tankFull}, {id: "b5-pump", building: "B5", outlet: 0.4, sump: 0.3, tank: tankFull}}
	for _, p := range s.pumps {
		p.coils[PumpCoilRun1], p.coils[PumpCoilValve] = true, true
	}
	s.panels = []*panel{{id: "b3-panel", building: "B3", breaker: true}}
	for i := 1; i <= 3; i++ {
		s.lifts = append(s.lifts, &Elevator{ID: fmt.Sprintf("lift-%d", i), Building: "B3", Floors: 18, Floor: 5, target: 9})
	}
	s.sensors = []*WaterSensor{{ID: "leak-b1", Building: "B3", Floor: "B1"}, {ID: "leak-roof", Building: "B3", Floor: "R"}, {ID: "leak-b5", Building: "B5", Floor: "B1"}}
	s.lights = []*Lighting{{ID: "lobby", rated: 5}}
	s.fires = []*firePanel{{id: "b3-fire", building: "B3"}, {id: "b5-fire", building: "B5"}}
	s.lifts = append(s.lifts, &Elevator{ID: "b5-lift", Building: "B5", Floors: 18, Floor: 12, target: 3})
	s.buildings = map[string]string{"b3-pump": "B3", "b5-pump": "B5", "b3-fire": "B3", "b5-fire": "B5", "leak-b5": "B5", "b5-lift": "B5"}
	for _, e := range s.lifts[:3] {
		s.buildings[e.ID] = "B3"
	}
	return s
}

func TestPowerOutageTrapsOneCarAndStopsPumps(t *testing.T) {
	s := newSite()
	for i := 0; i < 5; i++ {
		s.step()
	}
	s.scenarios[PowerOutage] = ""
	for i := 0; i < 5; i++ {
		s.step()
	}
	if !s.lifts[0].BetweenFloors || s.lifts[0].Trapped == 0 || !s.lifts[0].Alarm {
		t.Fatalf("car 1 should be trapped between floors: %+v", *s.lifts[0])
	}
	for _, e := range s.lifts[1:3] {
		if e.BetweenFloors || e.Trapped != 0 || e.Running {
			t.Fatalf("%s should stand at a floor, empty: %+v", e.ID, *e)
		}
	}
	p := s.pumps[0]
	if p.run1 || p.holding[PumpStatus]&1 != 0 || p.outlet > 0.1 {
		t.Fatalf("pump still running without power: run1=%v outlet=%.2f", p.run1, p.outlet)
	}
	if s.panels[0].mains || s.panels[0].holding[PanelStatus]&1 != 0 || s.panels[0].holding[PanelVoltageA] != 0 {
		t.Fatal("panel still reports mains")
	}
	if s.lights[0].On {
		t.Fatal("lights on during outage")
	}
	delete(s.scenarios, PowerOutage)
	for i := 0; i < 3; i++ {
		s.step()
	}
	if s.lifts[0].Trapped != 0 || !s.panels[0].mains || !s.pumps[0].run1 {
		t.Fatal("site did not recover after the outage")
	}
}

func TestFloodingWetsBasementSensorsAndParksCars(t *testing.T) {
	s := newSite()
	s.scenarios[Flooding] = ""
	for i := 0; i < 45; i++ { // the sump rises 0.08 m a tick from 0.3 m to off-scale at 3.5 m
		s.step()
	}
	wet := map[string]string{}
	for _, w := range s.sensors {
		wet[w.ID] = w.State
	}
	if wet["leak-b1"] != "wet" || wet["leak-roof"] != "dry" || wet["leak-b5"] != "dry" {
		t.Fatalf("sensors: %v", wet)
	}
	if s.pumps[1].flooded || s.pumps[1].holding[PumpStatus]&(1<<3) != 0 {
		t.Fatal("with no target, only the first pump room floods")
	}
	p := s.pumps[0]
	if p.holding[PumpStatus]&(1<<3) == 0 || p.holding[PumpSumpLevel] != 0xFFFF {
		t.Fatalf("sump: status %b level %x", p.holding[PumpStatus], p.holding[PumpSumpLevel])
	}
	for _, e := range s.lifts[:3] {
		if e.Floor != e.Floors || e.Running {
			t.Fatalf("%s not parked at the top floor: %+v", e.ID, *e)
		}
	}
}

func TestEntrapmentTargetsOneCar(t *testing.T) {
	s := newSite()
	s.scenarios[Entrapment] = "lift-2"
	s.step()
	if s.lifts[1].Trapped != 3 || !s.lifts[1].Alarm || s.lifts[0].Trapped != 0 {
		t.Fatalf("lifts: %+v %+v", *s.lifts[0], *s.lifts[1])
	}
}

// The simulated pump room is a real Modbus TCP server: mbpoll, an
// independent client, reads the documented registers from it.
func TestModbusServerAgainstMbpollIntegration(t *testing.T) {
	testenv.Integration(t)
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := New(Config{Tick: 1e9}, []collectors.Asset{{ID: "pump", Kind: collectors.KindPumpRoom}}, []Endpoint{{Asset: "pump", Address: addr, Unit: 3}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	out, err := exec.Command("mbpoll", "-m", "tcp", "-a", "3", "-0", "-r", "4", "-c", "1", "-1", "-p", fmt.Sprint(port), "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll (make deps installs it): %v\n%s", err, out)
	}
	// Status register 4: pump 1 running (bit 0) and inlet valve open (bit 4) = 17.
	if !strings.Contains(string(out), "[4]: \t17") {
		t.Fatalf("mbpoll output:\n%s", out)
	}
	if err := s.Inject("flood", ""); err == nil || err.Error() != `unknown scenario "flood"; fix: one of power-outage, flooding, entrapment, pump-fault, fire, water-outage, breaker-trip, lifts-parked` {
		t.Fatalf("err = %v", err)
	}
}

func TestPumpFaultDropsPressureWithMainsPresent(t *testing.T) {
	s := newSite()
	s.scenarios[PumpFault] = ""
	for i := 0; i < 6; i++ {
		s.step()
	}
	p := s.pumps[0]
	if p.run1 || !p.fault || p.faultCode != 7 || p.outlet > 0.1 || !s.panels[0].mains {
		t.Fatalf("pump fault: run1=%v fault=%v code=%d outlet=%.2f mains=%v", p.run1, p.fault, p.faultCode, p.outlet, s.panels[0].mains)
	}
	delete(s.scenarios, PumpFault)
	s.step()
	if !s.pumps[0].run1 || s.pumps[0].outlet < 0.3 {
		t.Fatal("pump did not restart")
	}
}

// A fire alarm in one building: its panel's fire contact closes, its cars
// come down to the ground floor and leave service (not at once: the recall
// takes time, so a plan sees it happen), the other building is untouched;
// resetting the alarm returns the cars to service.
func TestFireAlarmsTargetBuildingAndRecallsItsCars(t *testing.T) {
	s := newSite()
	s.step()
	s.scenarios[Fire] = "leak-b5" // any asset of Building 5
	s.step()
	b3, b5 := s.fires[0], s.fires[1]
	if !b5.inputs[FireContactAlarm] || b3.inputs[FireContactAlarm] || !b5.inputs[FireContactRunning] || b5.inputs[FireContactFault] {
		t.Fatalf("contacts: b3 %v b5 %v", b3.inputs, b5.inputs)
	}
	car := s.lifts[3]
	if car.FireRecall {
		t.Fatal("the recall completed on the tick the alarm came in")
	}
	for i := 1; i < 20 && !car.FireRecall; i++ {
		s.step()
		if car.FireRecall && i+1 < recallTicks {
			t.Fatalf("recall done after %d ticks, before the least %d", i+1, recallTicks)
		}
	}
	if !car.FireRecall || car.Floor != 1 || car.Door != "open" || car.Running {
		t.Fatalf("B5 car not recalled: %+v", *car)
	}
	for _, e := range s.lifts[:3] {
		if e.FireRecall {
			t.Fatalf("%s in Building 3 recalled for a fire in Building 5", e.ID)
		}
	}
	delete(s.scenarios, Fire)
	s.step()
	if b5.inputs[FireContactAlarm] || car.FireRecall {
		t.Fatal("alarm reset did not return the car to service")
	}
	s.scenarios[Fire] = ""
	s.step()
	if !b3.inputs[FireContactAlarm] || b5.inputs[FireContactAlarm] {
		t.Fatal("with no target, the first panel alarms")
	}
}

// The municipal supply to one building's pump room is lost: its break tank
// empties, dry-run protection stops the pumps and the pressure falls (the
// tank-low contact is the trigger); the other building keeps its water;
// with the supply back the tank refills and the pumps run again.
func TestWaterOutageEmptiesTankAndStopsPumps(t *testing.T) {
	s := newSite()
	s.scenarios[WaterOutage] = "b5-fire" // any asset of Building 5
	p, other := s.pumps[1], s.pumps[0]
	ticks := 0
	for ; ticks < 20 && p.holding[PumpStatus]&(1<<5) == 0; ticks++ {
		s.step()
		if p.inlet != 0 {
			t.Fatalf("inlet pressure %.3f with the supply lost", p.inlet)
		}
	}
	if ticks < 3 || ticks >= 20 {
		t.Fatalf("tank low after %d ticks: not a draining tank", ticks)
	}
	for i := 0; i < 5; i++ {
		s.step()
	}
	if p.run1 || p.outlet > 0.15 || p.holding[PumpTankLevel] > 50 || p.holding[PumpStatus]&1 != 0 {
		t.Fatalf("pumps still supplying: run1=%v outlet=%.2f tank=%d", p.run1, p.outlet, p.holding[PumpTankLevel])
	}
	if !other.run1 || other.tankLow || other.outlet < 0.3 {
		t.Fatal("the other building lost its water too")
	}
	delete(s.scenarios, WaterOutage)
	for i := 0; i < 4; i++ {
		s.step()
	}
	if !p.run1 || p.tankLow || p.outlet < 0.3 || p.holding[PumpStatus]&(1<<5) != 0 {
		t.Fatalf("supply back but pumps not: run1=%v tankLow=%v outlet=%.2f", p.run1, p.tankLow, p.outlet)
	}
}

// The fire panel's dry contacts are Modbus discrete inputs: mbpoll reads
// the fire contact closed during the fire scenario.
func TestFirePanelDiscreteInputsAgainstMbpollIntegration(t *testing.T) {
	testenv.Integration(t)
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := New(Config{Tick: 1e9}, []collectors.Asset{{ID: "fire", Kind: KindFireAlarmPanel, Building: "B3"}}, []Endpoint{{Asset: "fire", Address: addr, Unit: 4}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	read := func() string {
		out, err := exec.Command("mbpoll", "-m", "tcp", "-a", "4", "-t", "1", "-0", "-r", "0", "-c", "3", "-1", "-p", fmt.Sprint(port), "127.0.0.1").CombinedOutput()
		if err != nil {
			t.Fatalf("mbpoll: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := read(); !strings.Contains(out, "[0]: \t0") || !strings.Contains(out, "[2]: \t1") {
		t.Fatalf("before the fire:\n%s", out)
	}
	if err := s.Inject(Fire, ""); err != nil {
		t.Fatal(err)
	}
	if out := read(); !strings.Contains(out, "[0]: \t1") || !strings.Contains(out, "[1]: \t0") {
		t.Fatalf("during the fire:\n%s", out)
	}
}

// A power outage with a target cuts only that building: its first car is
// caught between floors, its pumps stop; the other building keeps mains,
// pumps and cars.
func TestPowerOutageWithATargetCutsOneBuilding(t *testing.T) {
	s := newSite()
	s.step()
	s.scenarios[PowerOutage] = "b5-pump"
	for i := 0; i < 5; i++ {
		s.step()
	}
	b5 := s.lifts[3]
	if !b5.BetweenFloors || b5.Trapped == 0 {
		t.Fatalf("B5's car should be caught between floors: %+v", *b5)
	}
	for _, e := range s.lifts[:3] {
		if e.BetweenFloors || e.Trapped != 0 {
			t.Fatalf("B3 car %s caught in a B5 outage: %+v", e.ID, *e)
		}
	}
	if !s.panels[0].mains {
		t.Fatal("the B3 panel lost mains in a B5 outage")
	}
	var b3, b5pump *pumpRoom
	for _, p := range s.pumps {
		switch p.building {
		case "B3":
			b3 = p
		case "B5":
			b5pump = p
		}
	}
	if b3 == nil || b5pump == nil || !b3.run1 || b5pump.run1 {
		t.Fatalf("pumps: B3 %+v B5 %+v", b3, b5pump)
	}
}

func TestScenarioTargetMustBeAnAsset(t *testing.T) {
	sim := &Simulator{site: newSite()}
	if err := sim.Inject(PowerOutage, "b9-panel"); err == nil || !strings.Contains(err.Error(), `target "b9-panel" is not a simulated asset`) {
		t.Fatalf("unknown target: %v", err)
	}
}

// An internal fault: the main breaker opens with the supply present; the
// building behind it loses power (pumps, cars, lights), the meter still
// reads the incoming voltage, and the other building is untouched.
func TestBreakerTripCutsTheBuildingWithMainsPresent(t *testing.T) {
	s := newSite()
	s.panels = append(s.panels, &panel{id: "b5-panel", building: "B5", breaker: true})
	s.buildings["b3-panel"], s.buildings["b5-panel"] = "B3", "B5"
	s.step()
	s.scenarios[BreakerTrip] = "b3-panel"
	for i := 0; i < 4; i++ {
		s.step()
	}
	b3, b5 := s.panels[0], s.panels[1]
	if st := b3.holding[PanelStatus]; st&1 == 0 || st&2 != 0 || b3.holding[PanelVoltageA] == 0 || b3.generator {
		t.Fatalf("B3 panel status %04b volts %d: want mains present, breaker open, no generator", st, b3.holding[PanelVoltageA])
	}
	if st := b5.holding[PanelStatus]; st&3 != 3 {
		t.Fatalf("B5 panel status %04b: want mains and breaker", st)
	}
	if s.pumps[0].run1 || !s.pumps[1].run1 {
		t.Fatalf("pumps: B3 %v B5 %v", s.pumps[0].run1, s.pumps[1].run1)
	}
	if s.lifts[0].Powered || !s.lifts[3].Powered || s.lifts[0].Trapped == 0 {
		t.Fatalf("cars: B3 powered %v trapped %d, B5 powered %v", s.lifts[0].Powered, s.lifts[0].Trapped, s.lifts[3].Powered)
	}
	delete(s.scenarios, BreakerTrip)
	s.step()
	if b3.holding[PanelStatus]&2 == 0 || !s.lifts[0].Powered {
		t.Fatal("breaker closed again: power back")
	}
}

// Before a planned cut the cars are parked: the cut traps nobody.
func TestParkedCarsTrapNobodyWhenThePowerGoes(t *testing.T) {
	s := newSite()
	s.step()
	s.scenarios[LiftsParked] = "b3-pump" // any asset of the building
	s.step()
	s.scenarios[PowerOutage] = "b3-pump"
	for i := 0; i < 3; i++ {
		s.step()
	}
	for _, e := range s.lifts[:3] {
		if e.Trapped != 0 || e.BetweenFloors || e.Floor != 1 || e.Door != "open" || e.Powered || e.FaultCode != 0 {
			t.Fatalf("%s: %+v", e.ID, *e)
		}
	}
	if s.lifts[3].Floor == 1 && s.lifts[3].Door == "open" && !s.lifts[3].Running && s.lifts[3].target == 1 {
		t.Fatal("Building 5's car was parked too")
	}
}

// The sump pump runs on its float switch: water reaching the pit (a wet
// sensor in its building) starts it, it drains the pit and stops; a fault
// stops it and the pit rises to its high-level alarm.
func TestSumpPumpFollowsItsFloatSwitch(t *testing.T) {
	s := newSite()
	p := &sumpPump{id: "b3-sump", building: "B3", level: 0.3, auto: true}
	s.sumps = []*sumpPump{p}
	s.buildings["b3-sump"], s.buildings["leak-b1"] = "B3", "B3"
	s.step()
	if p.running || p.holding[SumpStatus] != 0b0100 {
		t.Fatalf("dry pit: running %v status %04b", p.running, p.holding[SumpStatus])
	}
	s.scenarios[Flooding] = "leak-b1"
	ran := false
	for i := 0; i < 20; i++ {
		s.step()
		ran = ran || p.running
		if p.level >= sumpHigh {
			t.Fatalf("the pump kept up with the inflow before: level %.2f", p.level)
		}
	}
	if !ran || p.runHours == 0 {
		t.Fatal("the pump never started on its float switch")
	}
	s.scenarios[PumpFault] = "b3-sump"
	for i := 0; i < 20; i++ {
		s.step()
	}
	if st := p.holding[SumpStatus]; p.running || st&0b1010 != 0b1010 || st&0b0100 != 0 || p.holding[SumpFaultCode] != 7 {
		t.Fatalf("faulted pump: running %v status %04b level %.2f", p.running, st, p.level)
	}
	if s.pumps[0].run1 == false {
		t.Fatal("a sump-pump fault stopped the domestic water pumps")
	}
}
