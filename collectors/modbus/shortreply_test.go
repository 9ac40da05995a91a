package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
)

// shortPeer is a tiny Modbus TCP device that acknowledges writes (FC5, FC6
// and FC16 echoed as the protocol says) but answers every read (FC1-FC4) with
// a byte count of 0: goburrow returns such a reply as an empty slice without
// an error.
func shortPeer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				for {
					head := make([]byte, 7)
					if _, err := io.ReadFull(c, head); err != nil {
						return
					}
					pdu := make([]byte, int(binary.BigEndian.Uint16(head[4:6]))-1)
					if _, err := io.ReadFull(c, pdu); err != nil {
						return
					}
					var reply []byte
					switch fc := pdu[0]; fc {
					case 1, 2, 3, 4:
						reply = []byte{fc, 0}
					case 5, 6:
						reply = pdu
					case 16:
						reply = pdu[:5]
					default:
						reply = []byte{fc | 0x80, 1}
					}
					out := append(append([]byte{}, head[:4]...), 0, 0, head[6])
					binary.BigEndian.PutUint16(out[4:6], uint16(len(reply)+1))
					if _, err := c.Write(append(out, reply...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// A playbook write whose read-back reply is empty used to index past the end
// of the reply and panic the link goroutine, ending the process. Now each
// write fails with ErrShortReply, naming the read-back, and the link keeps
// working.
func TestShortReadBackFailsTheWriteWithoutPanic(t *testing.T) {
	addr := shortPeer(t)
	c, _, m := start(t, Config{Devices: []Device{{Asset: "pump", Address: addr, PollInterval: time.Hour, Timeout: time.Second, CommLostAfter: 1000,
		Registers: pumpRegs()}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		field string
		v     collectors.Value
	}{
		{"run_cmd", collectors.Bool(true)},      // FC5, read back with FC1
		{"setpoint", collectors.Float(42.5)},    // FC16, read back with FC3
		{"valve_open", collectors.Bool(true)},   // read-modify-write: the FC3 read comes back empty
		{"remote_mode", collectors.Bool(false)}, // again, on the reopened link
	} {
		err := c.Write(ctx, "pump", tc.field, tc.v)
		if !errors.Is(err, ErrShortReply) {
			t.Fatalf("write %s: %v, want ErrShortReply", tc.field, err)
		}
	}
	if n := testutil.CollectAndCount(m.Panics); n != 0 {
		t.Fatalf("%d panics recovered; the write path must not panic at all", n)
	}
}

func TestSliceIsBoundsSafe(t *testing.T) {
	coil := &Register{Name: "c", Table: Coil, Address: 9}
	rd := &read{table: Coil, start: 0, qty: 10, fields: []*Register{coil}}
	if b := rd.slice([]byte{0xff}, coil); b != nil {
		t.Fatalf("slice of a short coil reply = %v", b)
	}
	reg := &Register{Name: "r", Address: 4, Type: TypeUint32}
	rr := &read{table: HoldingRegister, start: 0, qty: 6, fields: []*Register{reg}}
	if b := rr.slice(make([]byte, 9), reg); b != nil {
		t.Fatalf("slice of a short register reply = %v", b)
	}
	if v, q := Decode(reg, nil); q != collectors.QualityBad || v.Type != collectors.ValueNone {
		t.Fatalf("Decode(nil) = %v %v", v, q)
	}
}

// panicky is an in-memory device whose client panics on demand.
type panicky struct {
	pollPanics  atomic.Int32 // this many reads panic
	writePanics atomic.Int32
	closes      atomic.Int32
}

func (p *panicky) Client(byte) Client { return p }
func (p *panicky) Close() error       { p.closes.Add(1); return nil }
func (p *panicky) read(q uint16) ([]byte, error) {
	if p.pollPanics.Load() > 0 {
		p.pollPanics.Add(-1)
		panic("device driver bug")
	}
	out := make([]byte, 2*q)
	out[1] = 7
	return out, nil
}
func (p *panicky) ReadCoils(_, q uint16) ([]byte, error)            { return make([]byte, (q+7)/8), nil }
func (p *panicky) ReadDiscreteInputs(_, q uint16) ([]byte, error)   { return make([]byte, (q+7)/8), nil }
func (p *panicky) ReadHoldingRegisters(_, q uint16) ([]byte, error) { return p.read(q) }
func (p *panicky) ReadInputRegisters(_, q uint16) ([]byte, error)   { return p.read(q) }
func (p *panicky) WriteSingleCoil(uint16, uint16) ([]byte, error) {
	if p.writePanics.Load() > 0 {
		p.writePanics.Add(-1)
		panic("device driver bug")
	}
	return nil, nil
}
func (p *panicky) WriteSingleRegister(uint16, uint16) ([]byte, error)            { return nil, nil }
func (p *panicky) WriteMultipleRegisters(uint16, uint16, []byte) ([]byte, error) { return nil, nil }

var _ Link = (*panicky)(nil)

// A panic in a link goroutine is recovered: logged, counted by link, the link
// closed and reopened; the write that panicked fails instead of hanging, and
// polling carries on.
func TestLinkRecoversFromPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &panicky{}
		dev.pollPanics.Store(2)
		dev.writePanics.Store(1)
		m := NewMetrics(prometheus.NewRegistry())
		c := New(Config{Devices: []Device{{Asset: "pump", Address: "fake:502", PollInterval: time.Second,
			Registers: []Register{{Name: "v", Address: 0}, {Name: "run_cmd", Table: Coil, Address: 1, Writable: true}}}}},
			func(*Device) (Link, error) { return dev, nil }, m, quiet())
		rec := newRecorder()
		if err := c.Start(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		time.Sleep(2500 * time.Millisecond) // polls at 0 s and 1 s panic, the one at 2 s succeeds
		synctest.Wait()
		key := "fake:502"
		for _, l := range c.links {
			key = l.key
		}
		if n := testutil.ToFloat64(m.Panics.WithLabelValues(key, "poll")); n != 2 {
			t.Fatalf("poll panics counted %v, want 2", n)
		}
		if p, n := rec.get("pump.v"); n != 1 || p.Value.I != 7 || p.Quality != collectors.QualityGood {
			t.Fatalf("after two panics: %d points, last %v; want the one good poll", n, p)
		}
		err := c.Write(context.Background(), "pump", "run_cmd", collectors.Bool(true))
		if !errors.Is(err, errRecovered) {
			t.Fatalf("write that panicked returned %v", err)
		}
		if n := testutil.ToFloat64(m.Panics.WithLabelValues(key, "write")); n != 1 {
			t.Fatalf("write panics counted %v, want 1", n)
		}
		if n := dev.closes.Load(); n < 3 {
			t.Fatalf("link closed %d times, want once per panic (3)", n)
		}
		if err := c.Write(context.Background(), "pump", "run_cmd", collectors.Bool(false)); err != nil {
			t.Fatalf("write after recovery: %v", err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if _, n := rec.get("pump.v"); n < 2 {
			t.Fatal("polling stopped after the panics")
		}
	})
}
