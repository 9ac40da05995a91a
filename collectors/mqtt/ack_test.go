package mqtt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
)

// fakeConn stands in for paho: it keeps the routes so a test can deliver
// messages the way paho's router does, one at a time.
type fakeConn struct {
	opts ConnOptions
}

func (f *fakeConn) Connect()                                 { f.opts.OnConnect() }
func (f *fakeConn) Subscribe(map[string]byte) error          { return nil }
func (f *fakeConn) Publish(string, byte, bool, string) error { return nil }
func (f *fakeConn) Disconnect()                              {}

func (f *fakeConn) deliver(m Message) {
	for filter, h := range f.opts.Routes {
		if pat, err := compileTopic(filter); err == nil {
			if _, ok := pat.match(m.Topic(), nil); ok {
				h(m)
			}
		}
	}
}

// fakeMsg records its PUBACK and whether the points were durable then.
type fakeMsg struct {
	topic, payload string
	qos            byte
	sink           *flakySink
	mu             sync.Mutex
	acks           int
	ackedDurable   bool
}

func (m *fakeMsg) Topic() string   { return m.topic }
func (m *fakeMsg) Payload() []byte { return []byte(m.payload) }
func (m *fakeMsg) Qos() byte       { return m.qos }
func (m *fakeMsg) Ack() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acks++
	m.ackedDurable = m.sink == nil || m.sink.durable()
}

func (m *fakeMsg) acked() (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acks, m.ackedDurable
}

// flakySink is a Sink and Flusher whose Flush fails a given number of times.
type flakySink struct {
	mu        sync.Mutex
	published int
	flushed   int // points covered by the last successful flush
	failLeft  int
	calls     int
}

func (s *flakySink) Publish(_ string, pts []collectors.Point) {
	s.mu.Lock()
	s.published += len(pts)
	s.mu.Unlock()
}

func (s *flakySink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failLeft > 0 {
		s.failLeft--
		return errors.New("disk full")
	}
	s.flushed = s.published
	return nil
}

func (s *flakySink) durable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushed == s.published
}

// One failed flush used to drop its batch from pending without PUBACK: the
// broker's in-flight window filled and ingest stopped for good. Now the batch
// is held, the flush retried with backoff, and every message acknowledged
// exactly once, in order, only after a flush succeeded.
func TestFailedFlushIsRetriedAndAcksAfterRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var conn *fakeConn
		factory := func(o ConnOptions) Conn { conn = &fakeConn{opts: o}; return conn }
		m := NewMetrics(prometheus.NewRegistry())
		cfg := Config{Broker: "tcp://127.0.0.1:1", ClientID: "t", AckBatch: 4, Subs: []Subscription{
			{Topic: "site/lift/{car}/floor", Asset: "{car}", Format: FormatValue, Fields: []Field{{Name: "floor", Type: TypeInt}}},
		}}
		c := New(cfg, factory, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
		const failures = 6
		sink := &flakySink{failLeft: failures}
		if err := c.Start(context.Background(), sink); err != nil {
			t.Fatal(err)
		}
		defer c.Stop()

		msgs := make([]*fakeMsg, 25)
		for i := range msgs {
			msgs[i] = &fakeMsg{topic: "site/lift/car-1/floor", payload: fmt.Sprint(i), qos: 1, sink: sink}
			conn.deliver(msgs[i])
		}
		// The first flush fails: everything is held, nothing acknowledged.
		time.Sleep(25 * time.Millisecond)
		synctest.Wait()
		if n := testutil.ToFloat64(m.FlushFailures); n < 1 {
			t.Fatalf("flush failures %v after the first attempt", n)
		}
		if n := testutil.ToFloat64(m.Unacked); n != 25 {
			t.Fatalf("unacked gauge %v, want 25", n)
		}
		if n := testutil.ToFloat64(m.HeldBack); n != 25 {
			t.Fatalf("held-back gauge %v, want 25", n)
		}
		for i, msg := range msgs {
			if n, _ := msg.acked(); n != 0 {
				t.Fatalf("message %d acknowledged although no flush succeeded", i)
			}
		}
		// Backoff 20, 40, 80, 160, 320, 640 ms: well within 5 s of fake time.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := testutil.ToFloat64(m.FlushFailures); n != failures {
			t.Fatalf("flush failures %v, want %d", n, failures)
		}
		sink.mu.Lock()
		calls := sink.calls
		sink.mu.Unlock()
		if calls != failures+1 {
			t.Fatalf("%d flush calls, want %d failed + 1 successful (backoff, no hammering)", calls, failures)
		}
		for i, msg := range msgs {
			if n, durable := msg.acked(); n != 1 || !durable {
				t.Fatalf("message %d acked %d times (durable=%v), want once after a successful flush", i, n, durable)
			}
		}
		if u, h := testutil.ToFloat64(m.Unacked), testutil.ToFloat64(m.HeldBack); u != 0 || h != 0 {
			t.Fatalf("after recovery unacked=%v held_back=%v", u, h)
		}
		// Ingest continues normally afterwards.
		late := &fakeMsg{topic: "site/lift/car-1/floor", payload: "99", qos: 1, sink: sink}
		conn.deliver(late)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if n, durable := late.acked(); n != 1 || !durable {
			t.Fatalf("message after recovery acked %d times (durable=%v)", n, durable)
		}
	})
}

// QoS 0 messages have no PUBACK: holding them would only grow memory while
// the disk fails.
func TestQoS0MessagesAreNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var conn *fakeConn
		factory := func(o ConnOptions) Conn { conn = &fakeConn{opts: o}; return conn }
		m := NewMetrics(prometheus.NewRegistry())
		cfg := Config{Broker: "tcp://127.0.0.1:1", ClientID: "t", Subs: []Subscription{
			{Topic: "site/lift/{car}/floor", Asset: "{car}", Format: FormatValue, Fields: []Field{{Name: "floor", Type: TypeInt}}},
		}}
		c := New(cfg, factory, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
		sink := &flakySink{failLeft: 1 << 30}
		if err := c.Start(context.Background(), sink); err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		for i := 0; i < 100; i++ {
			conn.deliver(&fakeMsg{topic: "site/lift/car-1/floor", payload: "1", qos: 0, sink: sink})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n != 0 || testutil.ToFloat64(m.Unacked) != 0 {
			t.Fatalf("%d QoS 0 messages held", n)
		}
	})
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{1, 20 * time.Millisecond}, {2, 40 * time.Millisecond}, {4, 160 * time.Millisecond}, {9, 5 * time.Second}, {1000, 5 * time.Second}} {
		if got := backoff(20*time.Millisecond, 5*time.Second, tc.failures); got != tc.want {
			t.Errorf("backoff(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
}
