package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	smb "github.com/simonvetter/modbus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Config is the simulator: section.
type Config struct {
	Enabled     bool          `yaml:"enabled"`
	Broker      string        `yaml:"broker"`       // MQTT broker to publish to; default: the gateway's mqtt.broker
	TopicPrefix string        `yaml:"topic_prefix"` // default "site"
	Tick        time.Duration `yaml:"tick"`         // default 1s
	Seed        int64         `yaml:"seed"`
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = "site"
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Endpoint is where a simulated Modbus device is served.
type Endpoint struct {
	Asset   string
	Address string // host:port
	Unit    uint8
}

// Topic is where the simulator publishes an MQTT asset's state.
func Topic(prefix string, a collectors.Asset) string {
	return prefix + "/" + string(a.Kind) + "/" + a.ID
}

// Simulator runs the simulated site.
type Simulator struct {
	cfg       Config
	assets    []collectors.Asset
	endpoints []Endpoint
	log       *slog.Logger

	site    *site
	servers []*smb.ModbusServer
	client  paho.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New builds a simulator for the assets: pump rooms, distribution panels,
// sump (drainage) pumps and fire-alarm panels (dry contacts) with an endpoint are served over
// Modbus; elevators, water sensors and lighting publish over MQTT. No I/O
// happens here.
func New(cfg Config, assets []collectors.Asset, endpoints []Endpoint, log *slog.Logger) *Simulator {
	cfg.SetDefaults()
	return &Simulator{cfg: cfg, assets: assets, endpoints: endpoints, log: log}
}

// Validate checks the section.
func (s *Simulator) Validate() error {
	if s.cfg.Broker == "" && s.hasMQTTAssets() {
		return cfgerr.Errorf("broker", "is required to publish the simulated MQTT devices; fix: set mqtt.broker or simulator.broker")
	}
	if s.cfg.Tick < 10*time.Millisecond {
		return cfgerr.Errorf("tick", "%s is too short; fix: at least 10ms", s.cfg.Tick)
	}
	return nil
}

func (s *Simulator) hasMQTTAssets() bool {
	for _, a := range s.assets {
		switch a.Kind {
		case collectors.KindElevator, collectors.KindWaterSensor, collectors.KindLighting:
			return true
		}
	}
	return false
}

// Start serves the Modbus devices, connects to the broker and starts ticking.
func (s *Simulator) Start(ctx context.Context) error {
	rnd := rand.New(rand.NewSource(s.cfg.Seed))
	st := &site{rnd: rnd, scenarios: map[string]string{}, buildings: map[string]string{}}
	byID := map[string]collectors.Asset{}
	for _, a := range s.assets {
		byID[a.ID] = a
		st.buildings[a.ID] = a.Building
	}
	handlers := map[string]*handler{}
	for _, ep := range s.endpoints {
		a, ok := byID[ep.Asset]
		if !ok {
			continue
		}
		h := handlers[ep.Address]
		if h == nil {
			h = &handler{site: st, pumps: map[uint8]*pumpRoom{}, panels: map[uint8]*panel{}, fires: map[uint8]*firePanel{}, sumps: map[uint8]*sumpPump{}}
			handlers[ep.Address] = h
		}
		switch a.Kind {
		case collectors.KindPumpRoom:
			p := &pumpRoom{id: a.ID, unit: ep.Unit, building: a.Building, location: a.Location, outlet: 0.4, sump: 0.3, tank: tankFull}
			p.coils[PumpCoilRun1], p.coils[PumpCoilValve] = true, true
			st.pumps = append(st.pumps, p)
			h.pumps[ep.Unit] = p
		case collectors.KindDistributionPanel:
			p := &panel{id: a.ID, unit: ep.Unit, building: a.Building, breaker: true, energy: 120000}
			st.panels = append(st.panels, p)
			h.panels[ep.Unit] = p
		case KindSumpPump:
			p := &sumpPump{id: a.ID, unit: ep.Unit, building: a.Building, level: 0.3, auto: true}
			st.sumps = append(st.sumps, p)
			h.sumps[ep.Unit] = p
		case KindFireAlarmPanel:
			f := &firePanel{id: a.ID, unit: ep.Unit, building: a.Building, running: true}
			st.fires = append(st.fires, f)
			h.fires[ep.Unit] = f
		}
	}
	for _, a := range s.assets {
		switch a.Kind {
		case collectors.KindElevator:
			st.lifts = append(st.lifts, &Elevator{ID: a.ID, Building: a.Building, Floors: 18, Floor: 1 + rnd.Intn(18), target: 1 + rnd.Intn(18), Door: "closed", Direction: "idle"})
		case collectors.KindWaterSensor:
			st.sensors = append(st.sensors, &WaterSensor{ID: a.ID, Building: a.Building, Floor: a.Floor, State: "dry", Battery: 96})
		case collectors.KindLighting:
			st.lights = append(st.lights, &Lighting{ID: a.ID, On: true, rated: 4 + rnd.Float64()*4})
		}
	}
	st.step()
	s.site = st
	addrs := make([]string, 0, len(handlers))
	for addr := range handlers {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	for _, addr := range addrs {
		srv, err := smb.NewServer(&smb.ServerConfiguration{URL: "tcp://" + addr, Timeout: 5 * time.Minute, MaxClients: 64,
			Logger: log.New(io.Discard, "", 0)}, handlers[addr])
		if err != nil {
			s.Stop()
			return fmt.Errorf("simulator: modbus server %s: %w", addr, err)
		}
		if err := srv.Start(); err != nil {
			s.Stop()
			return fmt.Errorf("simulator: modbus server %s: %w", addr, err)
		}
		s.servers = append(s.servers, srv)
	}
	if s.cfg.Broker != "" && s.hasMQTTAssets() {
		opts := paho.NewClientOptions().AddBroker(s.cfg.Broker).SetClientID(fmt.Sprintf("simulator-%d", time.Now().UnixNano())).
			SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(500*time.Millisecond).
			SetWill(s.cfg.TopicPrefix+"/simulator/status", "offline", 1, true)
		s.client = paho.NewClient(opts)
		s.client.Connect() // retries in the background
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go s.run(ctx)
	s.log.Info("simulated site running", "modbus_servers", len(s.servers), "elevators", len(st.lifts), "water_sensors", len(st.sensors), "lighting", len(st.lights))
	return nil
}

func (s *Simulator) run(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	s.announce()
	for {
		s.publish()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.site.step()
		}
	}
}

func (s *Simulator) announce() {
	if s.client == nil {
		return
	}
	for _, a := range s.assets {
		switch a.Kind {
		case collectors.KindElevator, collectors.KindWaterSensor, collectors.KindLighting:
			s.client.Publish(Topic(s.cfg.TopicPrefix, a)+"/status", 1, true, "online")
		}
	}
}

// publish sends every MQTT device's state once.
func (s *Simulator) publish() {
	if s.client == nil || !s.client.IsConnectionOpen() {
		return
	}
	type msg struct {
		topic string
		body  []byte
	}
	now := time.Now().UnixMilli()
	var out []msg
	s.site.mu.Lock()
	add := func(id string, kind collectors.AssetKind, v any) {
		b, _ := json.Marshal(v)
		// Stamp the reading time: the gateway stores the device's own timestamp.
		b = append(b[:len(b)-1], fmt.Sprintf(`,"ts":%d}`, now)...)
		out = append(out, msg{s.cfg.TopicPrefix + "/" + string(kind) + "/" + id, b})
	}
	for _, e := range s.site.lifts {
		add(e.ID, collectors.KindElevator, e)
	}
	for _, w := range s.site.sensors {
		add(w.ID, collectors.KindWaterSensor, w)
	}
	for _, l := range s.site.lights {
		add(l.ID, collectors.KindLighting, l)
	}
	s.site.mu.Unlock()
	for _, m := range out {
		s.client.Publish(m.topic, 1, false, m.body)
	}
}

// Inject starts a scenario; target optionally names the asset it hits (a
// pump room or water sensor for flooding, an elevator for entrapment), or
// for fire and water-outage any asset of the building it hits.
func (s *Simulator) Inject(name, target string) error {
	if !known(name) {
		return fmt.Errorf("unknown scenario %q; fix: one of %s", name, strings.Join(Scenarios, ", "))
	}
	if s.site == nil {
		return errors.New("simulator is not running")
	}
	s.site.mu.Lock()
	if _, ok := s.site.buildings[target]; target != "" && !ok {
		s.site.mu.Unlock()
		return fmt.Errorf("target %q is not a simulated asset; fix: an asset id such as a panel, pump room or car, or no target", target)
	}
	s.site.scenarios[name] = target
	s.site.mu.Unlock()
	s.site.step()
	s.publish()
	s.log.Warn("scenario injected", "scenario", name, "target", target)
	return nil
}

// Clear ends a scenario.
func (s *Simulator) Clear(name string) error {
	if !known(name) {
		return fmt.Errorf("unknown scenario %q; fix: one of %s", name, strings.Join(Scenarios, ", "))
	}
	if s.site == nil {
		return errors.New("simulator is not running")
	}
	s.site.mu.Lock()
	delete(s.site.scenarios, name)
	s.site.mu.Unlock()
	s.site.step()
	s.publish()
	s.log.Info("scenario cleared", "scenario", name)
	return nil
}

// Active lists the running scenarios with their targets.
func (s *Simulator) Active() map[string]string {
	out := map[string]string{}
	if s.site == nil {
		return out
	}
	s.site.mu.Lock()
	defer s.site.mu.Unlock()
	for k, v := range s.site.scenarios {
		out[k] = v
	}
	return out
}

func known(name string) bool {
	for _, n := range Scenarios {
		if n == name {
			return true
		}
	}
	return false
}

// Stop ends the simulation; safe after a partial Start.
func (s *Simulator) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, srv := range s.servers {
		_ = srv.Stop()
	}
	if s.client != nil {
		s.client.Disconnect(200)
	}
}

// handler serves the Modbus units at one address.
type handler struct {
	site   *site
	pumps  map[uint8]*pumpRoom
	panels map[uint8]*panel
	fires  map[uint8]*firePanel
	sumps  map[uint8]*sumpPump
}

func (h *handler) regs(unit uint8) (*[32]uint16, *[8]bool, error) {
	if p, ok := h.pumps[unit]; ok {
		return &p.holding, &p.coils, nil
	}
	if p, ok := h.panels[unit]; ok {
		return &p.holding, nil, nil
	}
	if p, ok := h.sumps[unit]; ok {
		return &p.holding, nil, nil
	}
	if _, ok := h.fires[unit]; ok {
		return nil, nil, smb.ErrIllegalFunction // dry contacts only: discrete inputs
	}
	return nil, nil, smb.ErrGWTargetFailedToRespond
}

func (h *handler) HandleCoils(r *smb.CoilsRequest) ([]bool, error) {
	h.site.mu.Lock()
	defer h.site.mu.Unlock()
	_, coils, err := h.regs(r.UnitId)
	if err != nil {
		return nil, err
	}
	if coils == nil || int(r.Addr)+int(r.Quantity) > len(coils) {
		return nil, smb.ErrIllegalDataAddress
	}
	if r.IsWrite {
		copy(coils[r.Addr:], r.Args)
		return nil, nil
	}
	return append([]bool(nil), coils[r.Addr:r.Addr+r.Quantity]...), nil
}

// HandleDiscreteInputs serves the fire-alarm panels' dry contacts.
func (h *handler) HandleDiscreteInputs(r *smb.DiscreteInputsRequest) ([]bool, error) {
	h.site.mu.Lock()
	defer h.site.mu.Unlock()
	f, ok := h.fires[r.UnitId]
	if !ok {
		if _, _, err := h.regs(r.UnitId); err != nil {
			return nil, err
		}
		return nil, smb.ErrIllegalFunction
	}
	if int(r.Addr)+int(r.Quantity) > len(f.inputs) {
		return nil, smb.ErrIllegalDataAddress
	}
	return append([]bool(nil), f.inputs[r.Addr:r.Addr+r.Quantity]...), nil
}

func (h *handler) HandleInputRegisters(*smb.InputRegistersRequest) ([]uint16, error) {
	return nil, smb.ErrIllegalFunction
}

func (h *handler) HandleHoldingRegisters(r *smb.HoldingRegistersRequest) ([]uint16, error) {
	h.site.mu.Lock()
	defer h.site.mu.Unlock()
	holding, _, err := h.regs(r.UnitId)
	if err != nil {
		return nil, err
	}
	if int(r.Addr)+int(r.Quantity) > len(holding) {
		return nil, smb.ErrIllegalDataAddress
	}
	if r.IsWrite {
		return nil, smb.ErrIllegalFunction // the simulated devices take commands on coils
	}
	return append([]uint16(nil), holding[r.Addr:r.Addr+r.Quantity]...), nil
}
