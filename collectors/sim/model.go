// Package sim is a simulated compound for demos, drills and tests: pump rooms
// and distribution panels served as Modbus TCP slaves (github.com/simonvetter/modbus),
// fire-alarm panels' dry contacts (Modbus discrete inputs), and water-leak
// sensors, elevators and lighting circuits publishing over MQTT. Scenarios
// (power outage, flooding, elevator entrapment, pump fault, fire, water
// outage) are injected at run time.
//
// The register layouts below are what configs/demo.yaml's templates describe.
package sim

import (
	"math"
	"math/rand"
	"strings"
	"sync"

	"github.com/propgate/gateway/collectors"
)

// Pump room holding registers (unit as configured, Modbus TCP).
const (
	PumpOutletPressure = 0  // uint16, 0.001 MPa
	PumpInletPressure  = 1  // uint16, 0.001 MPa
	PumpFlow           = 2  // float32 CDAB, m3/h (2 registers)
	PumpStatus         = 4  // bits: 0 pump 1 running, 1 pump 2 running, 2 fault, 3 sump high, 4 inlet valve open, 5 tank low (dry-run protection: pumps stopped)
	PumpSumpLevel      = 5  // uint16, 0.01 m; 0xFFFF when the probe is out of range
	PumpFaultCode      = 6  // uint16
	PumpTankLevel      = 7  // uint16, 0.01 m: the break tank's water level
	PumpRunHours       = 10 // uint32 ABCD (2 registers)
	PumpCoilRun1       = 0  // coil: pump 1 run command (writable)
	PumpCoilRun2       = 1  // coil: pump 2 run command (writable)
	PumpCoilValve      = 2  // coil: inlet valve open (writable)
)

// Distribution panel holding registers.
const (
	PanelVoltageA  = 0  // uint16, 0.1 V (A, B, C at 0..2)
	PanelCurrentA  = 3  // uint16, 0.1 A (A, B, C at 3..5)
	PanelPower     = 6  // float32 ABCD, kW (2 registers)
	PanelFrequency = 8  // uint16, 0.01 Hz
	PanelStatus    = 9  // bits: 0 mains present, 1 main breaker closed, 2 generator running, 3 branch tripped
	PanelEnergy    = 20 // uint32 CDAB, kWh (2 registers)
)

// Fire-alarm panel dry contacts: the panel's relay outputs wired to a Modbus
// I/O module, read as discrete inputs (function 02).
const (
	FireContactAlarm   = 0 // 火警: fire alarm in any zone
	FireContactFault   = 1 // 故障: panel fault
	FireContactRunning = 2 // 运行: panel powered (mains or battery) and running
)

// Sump (drainage) pump controller holding registers: the 排水泵/潜污泵 of a
// sump pit (garage, pump room), started and stopped by its float switch.
const (
	SumpStatus    = 0 // bits: 0 pump running, 1 fault, 2 automatic mode, 3 pit high-level alarm
	SumpPitLevel  = 1 // uint16, 0.01 m
	SumpRunHours  = 2 // uint32 ABCD (2 registers)
	SumpFaultCode = 4 // uint16
)

// KindSumpPump is the asset kind of a sump (drainage) pump (排水泵).
const KindSumpPump collectors.AssetKind = "sump_pump"

// Sump pit levels, in metres: the float switch starts the pump at
// sumpStart and stops it at sumpStop; at sumpHigh the pit alarms.
const (
	sumpStop  = 0.3
	sumpStart = 0.8
	sumpHigh  = 1.2
)

// KindFireAlarmPanel is the asset kind of a fire-alarm panel (消防报警主机).
const KindFireAlarmPanel collectors.AssetKind = "fire_alarm_panel"

// Break-tank levels of the secondary water supply, in metres.
const (
	tankFull    = 2.0 // the float valve closes here
	tankLowSet  = 0.5 // dry-run protection stops the pumps at or below this
	tankLowTrip = 1.0 // ... and lets them run again once the tank is back above this
)

// Scenario names, as used in the API path.
const (
	PowerOutage = "power-outage"
	Flooding    = "flooding"
	Entrapment  = "entrapment"
	PumpFault   = "pump-fault"
	Fire        = "fire"         // the fire-alarm panel of the first building (or the target's building) alarms
	WaterOutage = "water-outage" // the municipal supply to the first pump room (or the target's building) is lost
	// BreakerTrip: an internal fault — the main breaker of the first
	// panel (or the target's building) opens with the incoming supply
	// present; the building behind it loses power.
	BreakerTrip = "breaker-trip"
	// LiftsParked: the cars of the first building (or the target's) are
	// parked at the ground floor, doors open, out of service — what the
	// property does before a planned power cut (the notice's 电梯停运).
	LiftsParked = "lifts-parked"
)

// Scenarios lists every scenario the simulator knows.
var Scenarios = []string{PowerOutage, Flooding, Entrapment, PumpFault, Fire, WaterOutage, BreakerTrip, LiftsParked}

type pumpRoom struct {
	id                 string
	unit               uint8
	outlet, inlet      float64
	flow               float64
	run1, run2, valve  bool
	fault              bool
	faultCode          uint16
	sump               float64
	tank               float64 // break-tank level, m
	tankLow            bool    // dry-run protection tripped: the pumps are held off
	runHours           uint32
	holding            [32]uint16
	coils              [8]bool
	flooded            bool
	building, location string
}

type panel struct {
	id        string
	unit      uint8
	volts     [3]float64
	amps      [3]float64
	power     float64
	freq      float64
	mains     bool
	breaker   bool
	generator bool
	energy    float64
	holding   [32]uint16
	building  string
}

// sumpPump is a sump pit with its drainage pump.
type sumpPump struct {
	id        string
	unit      uint8
	building  string
	level     float64 // pit level, m
	running   bool
	fault     bool
	auto      bool
	runHours  uint32
	faultCode uint16
	holding   [32]uint16
}

// firePanel is a fire-alarm panel seen through its dry contacts.
type firePanel struct {
	id       string
	unit     uint8
	building string
	alarm    bool
	fault    bool
	running  bool
	inputs   [8]bool
}

// Elevator is a car's simulated state, published as JSON.
type Elevator struct {
	ID            string  `json:"-"`
	Building      string  `json:"-"`
	Floors        int     `json:"top_floor"` // the car's configured top floor
	Powered       bool    `json:"powered"`   // main power to the car
	Floor         int     `json:"floor"`
	Door          string  `json:"door"` // open, closed
	Running       bool    `json:"running"`
	Direction     string  `json:"direction"` // up, down, idle
	BetweenFloors bool    `json:"between_floors"`
	FaultCode     int     `json:"fault_code"`
	Alarm         bool    `json:"alarm"`   // alarm button pressed
	Trapped       int     `json:"trapped"` // passengers trapped
	Load          float64 `json:"load_kg"`
	// FireRecall (消防迫降): after a fire alarm in its building the car has
	// returned to the ground floor, opened its doors and left service.
	FireRecall bool `json:"fire_recall"`
	target     int
	recall     int // ticks since the fire recall began (0: not recalled)
}

// WaterSensor is a leak sensor's state.
type WaterSensor struct {
	ID       string  `json:"-"`
	Building string  `json:"-"`
	Floor    string  `json:"-"`
	State    string  `json:"state"` // dry, wet
	Battery  float64 `json:"battery"`
}

// Lighting is one circuit's state.
type Lighting struct {
	ID      string  `json:"-"`
	On      bool    `json:"on"`
	Current float64 `json:"current"`
	rated   float64
}

// site is the whole simulated compound; every field is guarded by mu.
type site struct {
	mu        sync.Mutex
	rnd       *rand.Rand
	pumps     []*pumpRoom
	panels    []*panel
	lifts     []*Elevator
	sensors   []*WaterSensor
	lights    []*Lighting
	fires     []*firePanel
	sumps     []*sumpPump
	buildings map[string]string // asset id → building, for scenario targets
	scenarios map[string]string // name → target asset ("" for the default)
	wasOutage map[string]bool   // building → it was without mains at the last tick
}

// recallTicks is the least time a fire recall takes: the car stops, its
// doors close, it returns to the ground floor and opens there.
const recallTicks = 8

func round(v, step float64) float64 { return math.Round(v/step) * step }

// step advances the physics by one tick.
func (s *site) step() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.panels {
		outage := s.outageIn(p.building)
		p.mains = !outage
		p.generator = outage
		p.breaker = !s.hits(BreakerTrip, p.id, p.building, i == 0)
		for i := range p.volts {
			if p.mains {
				p.volts[i] = 230 + s.rnd.NormFloat64()*1.5
				p.amps[i] = 80 + s.rnd.NormFloat64()*5
				if !p.breaker {
					p.amps[i] = 0 // the meter reads the incoming side: voltage, no load
				}
			} else {
				p.volts[i], p.amps[i] = 0, 0
			}
		}
		p.power = (p.volts[0]*p.amps[0] + p.volts[1]*p.amps[1] + p.volts[2]*p.amps[2]) / 1000
		p.freq = 50 + s.rnd.NormFloat64()*0.02
		if !p.mains {
			p.freq = 0
		}
		p.energy += p.power / 3600
		p.encode()
	}
	for i, p := range s.pumps {
		flooding := s.has(Flooding) && (s.scenarios[Flooding] == p.id || s.scenarios[Flooding] == "" && p == s.pumps[0])
		if p.flooded = flooding; flooding {
			p.sump = math.Min(p.sump+0.08, 3.5) // rising water in the sump pit
		} else {
			p.sump = math.Max(p.sump-0.3, 0.3+s.rnd.Float64()*0.002) // the sump pumps drain it
		}
		powered := !s.unpowered(p.building)
		tripped := s.has(PumpFault) && (s.scenarios[PumpFault] == "" || s.scenarios[PumpFault] == p.id)
		// Dry-run protection (缺水保护): the pumps are held off while the
		// break tank is low, and run again once it has refilled.
		switch {
		case p.tank <= tankLowSet:
			p.tankLow = true
		case p.tank >= tankLowTrip:
			p.tankLow = false
		}
		run1 := p.coils[PumpCoilRun1] && powered && !tripped && !p.tankLow
		run2 := p.coils[PumpCoilRun2] && powered && !tripped && !p.tankLow
		p.run1, p.run2, p.valve = run1, run2, p.coils[PumpCoilValve]
		switch {
		case run1 || run2:
			p.outlet = 0.40 + s.rnd.NormFloat64()*0.01
			p.flow = 36 + s.rnd.NormFloat64()*2
			p.runHours++
		default:
			p.outlet = math.Max(p.outlet-0.08, 0.05) // pressure decays to the static head
			p.flow = 0
		}
		p.inlet = 0.12 + s.rnd.NormFloat64()*0.005
		if s.hits(WaterOutage, p.id, p.building, i == 0) {
			p.inlet = 0 // the municipal supply to the pump room is lost
		}
		// The float valve refills the break tank from the mains faster than
		// the pumps draw it; without inflow the running pumps empty it.
		switch inflow := p.valve && p.inlet > 0.05; {
		case inflow:
			p.tank = math.Min(p.tank+0.3, tankFull)
		case run1 || run2:
			p.tank = math.Max(p.tank-0.3, 0.05)
		}
		p.fault = flooding && p.sump > 1.5 || tripped
		p.faultCode = 0
		switch {
		case tripped:
			p.faultCode = 7 // motor overload trip
		case p.fault:
			p.faultCode = 31 // motor insulation / water ingress
		}
		p.encode()
	}
	for i, f := range s.fires {
		f.alarm = s.hits(Fire, f.id, f.building, i == 0)
		f.running = true // battery-backed: it stays up through a power outage
		f.encode()
	}
	for _, p := range s.sumps {
		p.step(s)
	}
	entrap := s.has(Entrapment)
	onset := map[string]bool{} // building → its mains went this tick
	if s.wasOutage == nil {
		s.wasOutage = map[string]bool{}
	}
	for _, e := range s.lifts {
		if o := s.unpowered(e.Building); o != s.wasOutage[e.Building] {
			onset[e.Building] = o
			s.wasOutage[e.Building] = o
		}
	}
	firstHit := true // the first car of the buildings that lost mains
	for i, e := range s.lifts {
		outage := s.unpowered(e.Building)
		e.Powered = !outage
		parked := s.hits(LiftsParked, e.ID, e.Building, s.lifts[0].Building == e.Building)
		if parked {
			// Out of service before a planned cut: at the ground floor,
			// doors open, nobody inside, whether or not it has power.
			e.Floor, e.BetweenFloors, e.Door, e.Running, e.Direction = 1, false, "open", false, "idle"
			e.Alarm, e.Trapped, e.FaultCode, e.target = false, 0, 0, 1
			continue
		}
		if onset[e.Building] {
			// Supply lost: the first car stops between floors with passengers
			// inside; the others had reached a landing and open their doors.
			if firstHit {
				firstHit = false
				e.BetweenFloors, e.Trapped, e.Alarm, e.Door, e.FaultCode = true, 2, true, "closed", 12
			} else {
				e.BetweenFloors, e.Trapped, e.Alarm, e.Door = false, 0, false, "open"
			}
		}
		target := s.scenarios[Entrapment]
		trappedHere := entrap && (target == e.ID || (target == "" && i == 0))
		fire := s.fireIn(e.Building)
		if !fire {
			e.FireRecall, e.recall = false, 0
		}
		switch {
		case outage || trappedHere || s.floodedBuilding(e.Building):
			e.Running, e.Direction = false, "idle"
			if outage {
				break
			}
			if trappedHere && !e.Alarm {
				e.BetweenFloors, e.Trapped, e.Alarm, e.Door, e.FaultCode = true, 3, true, "closed", 41
			}
			if s.floodedBuilding(e.Building) && !trappedHere {
				// Flooding plan: cars sent to the top floor and parked.
				e.Floor, e.BetweenFloors, e.Door = e.Floors, false, "closed"
			}
		case fire:
			// Fire recall (消防迫降): down to the ground floor, doors open,
			// out of normal service until the alarm is reset.
			e.recall++
			e.BetweenFloors = false
			switch {
			case e.Floor > 1:
				e.Floor, e.Running, e.Direction, e.Door = e.Floor-1, true, "down", "closed"
			case e.recall < recallTicks:
				e.Running, e.Direction, e.Door = false, "idle", "closed"
			default:
				e.Running, e.Direction, e.Door, e.FireRecall = false, "idle", "open", true
			}
			e.target = 1
		default:
			e.Alarm, e.Trapped, e.FaultCode = false, 0, 0
			if e.Floor == e.target || e.BetweenFloors && !e.Running {
				e.BetweenFloors = false
				e.Running, e.Direction, e.Door = false, "idle", "open"
				if s.rnd.Float64() < 0.3 {
					e.target = 1 + s.rnd.Intn(e.Floors)
				}
			} else {
				e.Running, e.Door = true, "closed"
				if e.BetweenFloors {
					e.BetweenFloors = false
				} else {
					e.BetweenFloors = true
					if e.target > e.Floor {
						e.Floor, e.Direction = e.Floor+1, "up"
					} else {
						e.Floor, e.Direction = e.Floor-1, "down"
					}
				}
			}
			e.Load = round(float64(s.rnd.Intn(8))*70, 1)
		}
	}
	for _, w := range s.sensors {
		w.State = "dry"
		if s.sensorFlooded(w) {
			w.State = "wet"
		}
		w.Battery = math.Max(w.Battery-0.001, 5)
	}
	for _, l := range s.lights {
		l.On = !s.unpowered(s.buildings[l.ID])
		l.Current = 0
		if l.On {
			l.Current = round(l.rated+s.rnd.NormFloat64()*0.1, 0.01)
		}
	}
}

func (s *site) has(name string) bool { _, ok := s.scenarios[name]; return ok }

// outageIn: the power-outage scenario covers the building (no target: the
// whole site; a target: its building — a panel, or any asset there).
func (s *site) outageIn(building string) bool {
	t, ok := s.scenarios[PowerOutage]
	switch {
	case !ok:
		return false
	case t == "":
		return true
	}
	return s.buildings[t] != "" && s.buildings[t] == building || t == building
}

// unpowered: the building has no power behind its panel — the supply is
// lost, or its main breaker is open (an internal fault).
func (s *site) unpowered(building string) bool {
	if s.outageIn(building) {
		return true
	}
	for _, p := range s.panels {
		if p.building == building && !p.breaker {
			return true
		}
	}
	return false
}

// step drains or fills the pit: inflow while a leak sensor of its building
// is wet (water reaching the drains) or a flooding scenario targets the
// pump itself; the float switch runs the pump in automatic mode.
func (p *sumpPump) step(s *site) {
	inflow := 0.02 // seepage
	if t, ok := s.scenarios[Flooding]; ok && t == p.id {
		inflow = 0.25
	}
	for _, w := range s.sensors {
		if w.Building == p.building && s.sensorFlooded(w) {
			inflow = 0.15
		}
	}
	p.fault = s.has(PumpFault) && s.scenarios[PumpFault] == p.id
	p.faultCode = 0
	if p.fault {
		p.faultCode = 7
	}
	p.auto = !p.fault
	switch {
	case p.fault || s.unpowered(p.building):
		p.running = false
	case p.level >= sumpStart:
		p.running = true
	case p.level <= sumpStop:
		p.running = false
	}
	out := 0.0
	if p.running {
		out = 0.2
		p.runHours++
	}
	p.level = math.Max(math.Min(p.level+inflow-out, 3.0), 0.1+s.rnd.Float64()*0.01)
	p.encode()
}

func (p *sumpPump) encode() {
	h := &p.holding
	var st uint16
	for i, on := range []bool{p.running, p.fault, p.auto, p.level >= sumpHigh} {
		if on {
			st |= 1 << i
		}
	}
	h[SumpStatus] = st
	h[SumpPitLevel] = uint16(p.level * 100)
	h[SumpRunHours], h[SumpRunHours+1] = uint16(p.runHours>>16), uint16(p.runHours)
	h[SumpFaultCode] = p.faultCode
}

// hits says whether a running scenario covers an asset: the target itself,
// any asset in the target's building, or, with no target, the first asset
// of its kind (first).
func (s *site) hits(name, id, building string, first bool) bool {
	t, ok := s.scenarios[name]
	switch {
	case !ok:
		return false
	case t == "":
		return first
	case t == id:
		return true
	}
	b, ok := s.buildings[t]
	return ok && b != "" && b == building
}

// fireIn: a fire-alarm panel of the building is in alarm.
func (s *site) fireIn(building string) bool {
	for _, f := range s.fires {
		if f.alarm && f.building == building {
			return true
		}
	}
	return false
}

// floodedBuilding: the building of the flooded pump room.
func (s *site) floodedBuilding(b string) bool {
	for _, p := range s.pumps {
		if p.flooded && p.building == b {
			return true
		}
	}
	return false
}

// sensorFlooded: a basement sensor in the flooded building, or the sensor
// named as the flooding target.
func (s *site) sensorFlooded(w *WaterSensor) bool {
	t, ok := s.scenarios[Flooding]
	if !ok {
		return false
	}
	return t == w.ID || s.floodedBuilding(w.Building) && strings.HasPrefix(strings.ToUpper(w.Floor), "B")
}

func (p *pumpRoom) encode() {
	h := &p.holding
	h[PumpOutletPressure] = uint16(math.Max(p.outlet, 0) * 1000)
	h[PumpInletPressure] = uint16(math.Max(p.inlet, 0) * 1000)
	b := math.Float32bits(float32(p.flow))
	h[PumpFlow], h[PumpFlow+1] = uint16(b), uint16(b>>16) // CDAB
	var st uint16
	for i, on := range []bool{p.run1, p.run2, p.fault, p.sump > 1.0, p.valve, p.tankLow} {
		if on {
			st |= 1 << i
		}
	}
	h[PumpStatus] = st
	h[PumpSumpLevel] = uint16(p.sump * 100)
	if p.sump >= 3.5 {
		h[PumpSumpLevel] = 0xFFFF // probe out of range: "no reading"
	}
	h[PumpFaultCode] = p.faultCode
	h[PumpTankLevel] = uint16(math.Max(p.tank, 0) * 100)
	h[PumpRunHours], h[PumpRunHours+1] = uint16(p.runHours>>16), uint16(p.runHours)
}

func (p *panel) encode() {
	h := &p.holding
	for i := 0; i < 3; i++ {
		h[PanelVoltageA+i] = uint16(p.volts[i] * 10)
		h[PanelCurrentA+i] = uint16(p.amps[i] * 10)
	}
	b := math.Float32bits(float32(p.power))
	h[PanelPower], h[PanelPower+1] = uint16(b>>16), uint16(b) // ABCD
	h[PanelFrequency] = uint16(p.freq * 100)
	var st uint16
	for i, on := range []bool{p.mains, p.breaker, p.generator, false} {
		if on {
			st |= 1 << i
		}
	}
	h[PanelStatus] = st
	e := uint32(p.energy)
	h[PanelEnergy], h[PanelEnergy+1] = uint16(e), uint16(e>>16) // CDAB
}

func (f *firePanel) encode() {
	f.inputs[FireContactAlarm] = f.alarm
	f.inputs[FireContactFault] = f.fault
	f.inputs[FireContactRunning] = f.running
}
