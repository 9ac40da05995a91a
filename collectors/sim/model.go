// Package sim is a simulated compound for demos, drills and tests: pump rooms
// and distribution panels served as Modbus TCP slaves (github.com/simonvetter/modbus),
// and water-leak sensors, elevators and lighting circuits publishing over MQTT.
// Scenarios (power outage, flooding, elevator entrapment) are injected at run time.
//
// The register layouts below are what configs/demo.yaml's templates describe.
package sim

import (
	"math"
	"math/rand"
	"strings"
	"sync"
)

// Pump room holding registers (unit as configured, Modbus TCP).
const (
	PumpOutletPressure = 0  // uint16, 0.001 MPa
	PumpInletPressure  = 1  // uint16, 0.001 MPa
	PumpFlow           = 2  // float32 CDAB, m3/h (2 registers)
	PumpStatus         = 4  // bits: 0 pump 1 running, 1 pump 2 running, 2 fault, 3 sump high, 4 inlet valve open
	PumpSumpLevel      = 5  // uint16, 0.01 m; 0xFFFF when the probe is out of range
	PumpFaultCode      = 6  // uint16
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

// Scenario names, as used in the API path.
const (
	PowerOutage = "power-outage"
	Flooding    = "flooding"
	Entrapment  = "entrapment"
	PumpFault   = "pump-fault"
)

// Scenarios lists every scenario the simulator knows.
var Scenarios = []string{PowerOutage, Flooding, Entrapment, PumpFault}

type pumpRoom struct {
	id                 string
	unit               uint8
	outlet, inlet      float64
	flow               float64
	run1, run2, valve  bool
	fault              bool
	faultCode          uint16
	sump               float64
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

// Elevator is a car's simulated state, published as JSON.
type Elevator struct {
	ID            string  `json:"-"`
	Building      string  `json:"-"`
	Floors        int     `json:"-"`
	Floor         int     `json:"floor"`
	Door          string  `json:"door"` // open, closed
	Running       bool    `json:"running"`
	Direction     string  `json:"direction"` // up, down, idle
	BetweenFloors bool    `json:"between_floors"`
	FaultCode     int     `json:"fault_code"`
	Alarm         bool    `json:"alarm"`   // alarm button pressed
	Trapped       int     `json:"trapped"` // passengers trapped
	Load          float64 `json:"load_kg"`
	target        int
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
	scenarios map[string]string // name → target asset ("" for the default)
	wasOutage bool
}

func round(v, step float64) float64 { return math.Round(v/step) * step }

// step advances the physics by one tick.
func (s *site) step() {
	s.mu.Lock()
	defer s.mu.Unlock()
	outage := s.has(PowerOutage)
	for _, p := range s.panels {
		p.mains = !outage
		p.generator = outage
		for i := range p.volts {
			if p.mains {
				p.volts[i] = 230 + s.rnd.NormFloat64()*1.5
				p.amps[i] = 80 + s.rnd.NormFloat64()*5
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
	for _, p := range s.pumps {
		flooding := s.has(Flooding) && (s.scenarios[Flooding] == p.id || s.scenarios[Flooding] == "" && p == s.pumps[0])
		if p.flooded = flooding; flooding {
			p.sump = math.Min(p.sump+0.08, 3.5) // rising water in the sump pit
		} else {
			p.sump = math.Max(p.sump-0.3, 0.3+s.rnd.Float64()*0.002) // the sump pumps drain it
		}
		powered := !outage
		tripped := s.has(PumpFault) && (s.scenarios[PumpFault] == "" || s.scenarios[PumpFault] == p.id)
		run1, run2 := p.coils[PumpCoilRun1] && powered && !tripped, p.coils[PumpCoilRun2] && powered && !tripped
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
	entrap := s.has(Entrapment)
	outageOnset := outage && !s.wasOutage
	s.wasOutage = outage
	for i, e := range s.lifts {
		if outageOnset {
			// Supply lost: the first car stops between floors with passengers
			// inside; the others had reached a landing and open their doors.
			if i == 0 {
				e.BetweenFloors, e.Trapped, e.Alarm, e.Door, e.FaultCode = true, 2, true, "closed", 12
			} else {
				e.BetweenFloors, e.Trapped, e.Alarm, e.Door = false, 0, false, "open"
			}
		}
		target := s.scenarios[Entrapment]
		trappedHere := entrap && (target == e.ID || (target == "" && i == 0))
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
		l.On = !outage
		l.Current = 0
		if l.On {
			l.Current = round(l.rated+s.rnd.NormFloat64()*0.1, 0.01)
		}
	}
}

func (s *site) has(name string) bool { _, ok := s.scenarios[name]; return ok }

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
	for i, on := range []bool{p.run1, p.run2, p.fault, p.sump > 1.0, p.valve} {
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
