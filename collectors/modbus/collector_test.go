package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	gmb "github.com/goburrow/modbus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	smb "github.com/simonvetter/modbus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/testenv"
)

// bank is a Modbus server's memory, served by github.com/simonvetter/modbus.
type bank struct {
	mu       sync.Mutex
	holding  [200]uint16
	coils    [16]bool
	hole     [2]int        // holding addresses [hole[0], hole[1]) answer exception 2
	delay    time.Duration // every request stalls this long
	slowOnce atomic.Int32  // this many requests stall 3× the client timeout, then answer
	refuse   bool          // every request answers exception 2
	reads    atomic.Int64
}

func (b *bank) HandleCoils(r *smb.CoilsRequest) ([]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.IsWrite {
		copy(b.coils[r.Addr:], r.Args)
		return nil, nil
	}
	return append([]bool(nil), b.coils[r.Addr:r.Addr+r.Quantity]...), nil
}
func (b *bank) HandleDiscreteInputs(r *smb.DiscreteInputsRequest) ([]bool, error) {
	return make([]bool, r.Quantity), nil
}
func (b *bank) HandleInputRegisters(r *smb.InputRegistersRequest) ([]uint16, error) {
	return make([]uint16, r.Quantity), nil
}
func (b *bank) HandleHoldingRegisters(r *smb.HoldingRegistersRequest) ([]uint16, error) {
	if b.slowOnce.Load() > 0 {
		b.slowOnce.Add(-1)
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(b.delay)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse {
		return nil, smb.ErrIllegalDataAddress
	}
	end := int(r.Addr) + int(r.Quantity)
	if int(r.Addr) < b.hole[1] && end > b.hole[0] {
		return nil, smb.ErrIllegalDataAddress
	}
	if r.IsWrite {
		copy(b.holding[r.Addr:], r.Args)
		return nil, nil
	}
	b.reads.Add(1)
	return append([]uint16(nil), b.holding[r.Addr:end]...), nil
}

func (b *bank) set(addr int, v ...uint16) {
	b.mu.Lock()
	copy(b.holding[addr:], v)
	b.mu.Unlock()
}

func serve(t testing.TB, b smb.RequestHandler) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s, err := smb.NewServer(&smb.ServerConfiguration{URL: "tcp://" + addr, Timeout: 30 * time.Second, MaxClients: 10, Logger: log.New(io.Discard, "", 0)}, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return addr
}

// closer accepts connections and closes them at once.
func closer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// recorder is a Sink keeping the latest point per asset.field and all points.
type recorder struct {
	mu   sync.Mutex
	last map[string]collectors.Point
	n    map[string]int
}

func newRecorder() *recorder {
	return &recorder{last: map[string]collectors.Point{}, n: map[string]int{}}
}

func (r *recorder) Publish(_ string, pts []collectors.Point) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pts {
		r.last[p.Asset+"."+p.Field] = p
		r.n[p.Asset+"."+p.Field]++
	}
}

func (r *recorder) get(key string) (collectors.Point, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[key], r.n[key]
}

func (r *recorder) waitFor(t *testing.T, key string, within time.Duration, ok func(collectors.Point) bool) collectors.Point {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, n := r.get(key)
		if n > 0 && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: condition not met within %s; last %v (%d points)", key, within, p, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func pumpRegs() []Register {
	return []Register{
		{Name: "pressure", Address: 0, Type: TypeUint16, Scale: 0.001, Unit: "MPa", Sentinels: []Sentinel{{Raw: 0xFFFF}}},
		{Name: "flow", Address: 2, Type: TypeFloat32, Order: CDAB, Unit: "m3/h"},
		{Name: "running", Address: 4, Type: TypeBool, Bit: bit(0)},
		{Name: "setpoint", Address: 30, Type: TypeFloat32, Writable: true},
		{Name: "run_cmd", Table: Coil, Address: 1, Writable: true},
		{Name: "valve_open", Address: 4, Type: TypeBool, Bit: bit(5), Writable: true},
		{Name: "remote_mode", Address: 4, Type: TypeBool, Bit: bit(7), Writable: true},
	}
}

func start(t *testing.T, cfg Config) (*Collector, *recorder, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	c := New(cfg, nil, m, quiet())
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	if err := c.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c, rec, m
}

func TestPollDecodesAndWritesVerified(t *testing.T) {
	b := &bank{}
	b.set(0, 350)            // 0.350 MPa
	b.set(2, 0x0000, 0x4148) // 12.5 as float32 CDAB
	b.set(4, 1)              // running
	addr := serve(t, b)
	c, rec, _ := start(t, Config{Devices: []Device{{Asset: "pump", Address: addr, PollInterval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Registers: pumpRegs()}}})

	rec.waitFor(t, "pump.pressure", 2*time.Second, func(p collectors.Point) bool { return p.Quality == collectors.QualityGood })
	for key, want := range map[string]collectors.Value{"pump.pressure": collectors.Float(0.35), "pump.flow": collectors.Float(12.5), "pump.running": collectors.Bool(true), "pump.comm_lost": collectors.Bool(false)} {
		p, _ := rec.get(key)
		if f, _ := p.Value.AsFloat(); p.Value.Type != want.Type || (p.Value.Type == collectors.ValueFloat && f-want.F > 1e-9) || (p.Value.Type == collectors.ValueBool && p.Value.B != want.B) {
			t.Errorf("%s = %v, want %v", key, p.Value, want)
		}
	}
	b.set(0, 0xFFFF) // sentinel: "no reading"
	rec.waitFor(t, "pump.pressure", 2*time.Second, func(p collectors.Point) bool { return p.Quality == collectors.QualityBad })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Write(ctx, "pump", "setpoint", collectors.Float(42.5)); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	hi, lo := b.holding[30], b.holding[31]
	b.mu.Unlock()
	if hi != 0x422A || lo != 0 {
		t.Fatalf("setpoint registers = %04x %04x, want 422a 0000", hi, lo)
	}
	if err := c.Write(ctx, "pump", "run_cmd", collectors.Bool(true)); err != nil {
		t.Fatal(err)
	}
	if !b.coils[1] {
		t.Fatal("coil 1 not set")
	}
	// A bool in one bit of a holding register: read-modify-write keeps the
	// other bits (running, bit 0, stays set).
	b.set(4, 0b1000_0001)
	if err := c.Write(ctx, "pump", "valve_open", collectors.Bool(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, "pump", "remote_mode", collectors.Bool(false)); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	word := b.holding[4]
	b.mu.Unlock()
	if word != 0b0010_0001 {
		t.Fatalf("status register %08b, want 00100001", word)
	}
	err := c.Write(ctx, "pump", "pressure", collectors.Float(1))
	if err == nil || err.Error() != "modbus write pump.pressure: field is not declared writable" {
		t.Fatalf("write to read-only field: %v", err)
	}
}

// A device with a hole in its register map refuses the coalesced read with
// exception 2; the collector falls back to smaller reads and keeps the fields.
func TestExceptionFallsBackToSmallerReads(t *testing.T) {
	b := &bank{hole: [2]int{10, 20}}
	b.set(5, 7)
	b.set(25, 9)
	addr := serve(t, b)
	_, rec, m := start(t, Config{Devices: []Device{{Asset: "panel", Address: addr, PollInterval: 20 * time.Millisecond, MaxGap: 30,
		Registers: []Register{{Name: "a", Address: 5}, {Name: "b", Address: 25}}}}})
	rec.waitFor(t, "panel.b", 2*time.Second, func(p collectors.Point) bool { return p.Value.I == 9 && p.Quality == collectors.QualityGood })
	if p, _ := rec.get("panel.a"); p.Value.I != 7 {
		t.Fatalf("a = %v", p.Value)
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues("panel", "exception")); n != 1 {
		t.Fatalf("%v exceptions, want exactly 1 (the fallback is remembered)", n)
	}
}

// goburrow leaves a socket open after a timeout; the late reply would
// desynchronise the next request. The collector closes and reopens instead.
func TestTimeoutDoesNotDesynchronise(t *testing.T) {
	b := &bank{}
	b.set(0, 111)
	b.slowOnce.Store(1)
	addr := serve(t, b)
	_, rec, m := start(t, Config{Devices: []Device{{Asset: "pump", Address: addr, PollInterval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, CommLostAfter: 5,
		Registers: []Register{{Name: "v", Address: 0}}}}})
	rec.waitFor(t, "pump.v", 3*time.Second, func(p collectors.Point) bool { return p.Quality == collectors.QualityGood })
	for i := 2; i < 6; i++ {
		b.set(0, uint16(111*i))
		rec.waitFor(t, "pump.v", 3*time.Second, func(p collectors.Point) bool { return p.Value.I == int64(111*i) })
	}
	if e := testutil.ToFloat64(m.Requests.WithLabelValues("pump", "error")); e != 1 {
		t.Fatalf("%v request errors, want exactly the one timeout", e)
	}
}

// fakeDevice is an in-memory Link for scheduling tests under testing/synctest
// (virtual time): it answers at once, answers every read with exception 2,
// stalls for the client timeout and then fails, or fails like a peer that
// closes every connection.
type fakeDevice struct {
	mode    string // "healthy", "exception", "timeout", "closer"
	timeout time.Duration
}

func (f *fakeDevice) Client(byte) Client { return f }
func (f *fakeDevice) Close() error       { return nil }
func (f *fakeDevice) read(q uint16) ([]byte, error) {
	switch f.mode {
	case "exception":
		return nil, &gmb.ModbusError{FunctionCode: 3, ExceptionCode: 2}
	case "timeout":
		time.Sleep(f.timeout)
		return nil, errors.New("i/o timeout")
	case "closer":
		return nil, io.EOF
	}
	out := make([]byte, 2*q)
	out[1] = 5
	return out, nil
}
func (f *fakeDevice) ReadCoils(_, q uint16) ([]byte, error)                         { return f.read((q + 15) / 16) }
func (f *fakeDevice) ReadDiscreteInputs(_, q uint16) ([]byte, error)                { return f.read((q + 15) / 16) }
func (f *fakeDevice) ReadHoldingRegisters(_, q uint16) ([]byte, error)              { return f.read(q) }
func (f *fakeDevice) ReadInputRegisters(_, q uint16) ([]byte, error)                { return f.read(q) }
func (f *fakeDevice) WriteSingleCoil(uint16, uint16) ([]byte, error)                { return nil, nil }
func (f *fakeDevice) WriteSingleRegister(uint16, uint16) ([]byte, error)            { return nil, nil }
func (f *fakeDevice) WriteMultipleRegisters(uint16, uint16, []byte) ([]byte, error) { return nil, nil }

// One device times out, one answers only exceptions, one fails every
// request: each is marked bad / comm_lost, and a healthy device on its own
// link keeps its exact poll rate. Virtual time (synctest) makes the rate
// check exact instead of a wall-clock estimate.
func TestFailingDevicesDoNotDelayOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		interval, timeout := 25*time.Millisecond, 100*time.Millisecond
		dev := func(asset string) Device {
			return Device{Asset: asset, Address: asset + ":502", PollInterval: interval, Timeout: timeout, CommLostAfter: 2, MaxBackoff: 200 * time.Millisecond,
				Registers: []Register{{Name: "v", Address: 0}, {Name: "w", Address: 1}}}
		}
		m := NewMetrics(prometheus.NewRegistry())
		c := New(Config{Devices: []Device{dev("healthy"), dev("timeout"), dev("exception"), dev("closer")}},
			func(d *Device) (Link, error) { return &fakeDevice{mode: d.Asset, timeout: d.Timeout}, nil }, m, quiet())
		rec := newRecorder()
		if err := c.Start(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		window := 2 * time.Second
		time.Sleep(window - time.Millisecond) // polls at 0, 25 ms, …, 1975 ms
		synctest.Wait()
		if polls, want := testutil.ToFloat64(m.Polls.WithLabelValues("healthy", "ok")), float64(window/interval); polls != want {
			t.Fatalf("healthy device polled %v times in %s, want exactly %v", polls, window, want)
		}
		for _, a := range []string{"timeout", "closer"} {
			if p, _ := rec.get(a + ".comm_lost"); !p.Value.B {
				t.Errorf("%s: comm_lost = %v, want true", a, p.Value)
			}
			if p, _ := rec.get(a + ".v"); p.Quality != collectors.QualityBad {
				t.Errorf("%s.v quality %s, want bad", a, p.Quality)
			}
			// Backoff 25, 50, 100, 200, 200… ms: far fewer attempts than the 80 polls the interval allows.
			if f := testutil.ToFloat64(m.Polls.WithLabelValues(a, "failed")); f > 15 {
				t.Errorf("%s: %v failed polls in %s: no backoff", a, f, window)
			}
		}
		// The refusing device answers, so it is not lost, but its fields are bad.
		if p, _ := rec.get("exception.comm_lost"); p.Value.B {
			t.Errorf("exception device reported comm_lost")
		}
		if p, _ := rec.get("exception.v"); p.Quality != collectors.QualityBad {
			t.Errorf("exception.v quality %s, want bad", p.Quality)
		}
	})
}

// counting tracks how many requests its bank serves at once.
type counting struct {
	*bank
	in, max atomic.Int32
}

func (c *counting) HandleHoldingRegisters(r *smb.HoldingRegistersRequest) ([]uint16, error) {
	n := c.in.Add(1)
	defer c.in.Add(-1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	return c.bank.HandleHoldingRegisters(r)
}

// Devices on one link (an RS-485 gateway) are polled one request at a time.
func TestOneRequestInFlightPerLink(t *testing.T) {
	cb := &counting{bank: &bank{delay: 2 * time.Millisecond}}
	addr := serve(t, cb)
	var devs []Device
	for i := 1; i <= 5; i++ {
		devs = append(devs, Device{Asset: fmt.Sprintf("d%d", i), Address: addr, UnitID: i, PollInterval: 10 * time.Millisecond, Registers: []Register{{Name: "v", Address: 0}}})
	}
	_, rec, _ := start(t, Config{Devices: devs})
	for i := 1; i <= 5; i++ {
		rec.waitFor(t, fmt.Sprintf("d%d.v", i), 2*time.Second, func(p collectors.Point) bool { return p.Quality == collectors.QualityGood })
	}
	for deadline := time.Now().Add(5 * time.Second); cb.bank.reads.Load() < 50; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d reads served", cb.bank.reads.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if cb.max.Load() != 1 {
		t.Fatalf("%d requests in flight at once on one link", cb.max.Load())
	}
}
