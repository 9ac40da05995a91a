package mqtt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/testenv"
)

// durableSink records points and counts flushes, like the pipeline.
type durableSink struct {
	mu      sync.Mutex
	pts     []collectors.Point
	flushes int
}

func (s *durableSink) Publish(_ string, pts []collectors.Point) {
	s.mu.Lock()
	s.pts = append(s.pts, pts...)
	s.mu.Unlock()
}
func (s *durableSink) Flush() error { s.mu.Lock(); s.flushes++; s.mu.Unlock(); return nil }

func (s *durableSink) snapshot() []collectors.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]collectors.Point(nil), s.pts...)
}

func (s *durableSink) waitCount(t *testing.T, field string, n int, within time.Duration) []collectors.Point {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var got []collectors.Point
		for _, p := range s.snapshot() {
			if p.Field == field {
				got = append(got, p)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s points after %s, want %d", len(got), field, within, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publisher(t *testing.T, broker string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func pub(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func testConfig(broker string) Config {
	return Config{Broker: broker, ClientID: "gw-test", Subs: []Subscription{
		{Topic: "site/{building}/leak/{id}", Asset: "leak-{id}", Fields: []Field{{Name: "wet", Path: "state", Type: TypeBool}, {Name: "battery", Path: "bat"}}},
		{Topic: "site/lift/{car}/floor", Asset: "{car}", Format: FormatValue, Fields: []Field{{Name: "floor", Type: TypeInt}}},
	}, Availability: []Availability{{Topic: "site/status/{id}", Asset: "leak-{id}"}}}
}

func startCollector(t *testing.T, cfg Config, sink collectors.Sink) (*Collector, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	c := New(cfg, nil, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.Connected) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("collector did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, m
}

func TestIngestMalformedAndAvailabilityIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	sink := &durableSink{}
	c, m := startCollector(t, testConfig(broker.URL), sink)
	defer c.Stop()

	p := publisher(t, broker.URL)
	pub(t, p, "site/B3/leak/7", `{"state":"wet","bat":88}`)
	pub(t, p, "site/B3/leak/7", `{"state":`)     // malformed
	pub(t, p, "site/lift/car-1/floor", "twelve") // malformed
	pub(t, p, "site/lift/car-1/floor", "12")
	pub(t, p, "site/status/7", "offline")

	sink.waitCount(t, "online", 1, 5*time.Second)
	byKey := map[string]collectors.Point{}
	for _, pt := range sink.snapshot() {
		byKey[pt.Asset+"."+pt.Field] = pt
	}
	if pt := byKey["leak-7.wet"]; pt.Quality != collectors.QualityStale {
		t.Errorf("leak-7.wet after offline: %v", pt)
	}
	if pt := byKey["car-1.floor"]; pt.Value.I != 12 {
		t.Errorf("car-1.floor = %v", pt.Value)
	}
	if pt := byKey["leak-7.online"]; pt.Value.B {
		t.Errorf("leak-7.online = %v", pt.Value)
	}
	if n := testutil.ToFloat64(m.Messages.WithLabelValues("site/{building}/leak/{id}", "bad_payload")) +
		testutil.ToFloat64(m.Messages.WithLabelValues("site/lift/{car}/floor", "bad_payload")); n != 2 {
		t.Errorf("bad payloads counted %v, want 2", n)
	}
}

// Messages published while the gateway is away are delivered when it comes
// back with the same client id (QoS 1, persistent session), and messages
// are acknowledged only after a Flush made them durable.
func TestPersistentSessionLosesNothingAcrossRestartIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	cfg := testConfig(broker.URL)
	sink := &durableSink{}
	c, _ := startCollector(t, cfg, sink)
	p := publisher(t, broker.URL)
	pub(t, p, "site/lift/car-1/floor", "0")
	sink.waitCount(t, "floor", 1, 5*time.Second)
	c.Stop()

	for i := 1; i <= 500; i++ {
		pub(t, p, "site/lift/car-1/floor", fmt.Sprint(i))
	}
	sink2 := &durableSink{}
	c2, _ := startCollector(t, cfg, sink2)
	defer c2.Stop()
	got := sink2.waitCount(t, "floor", 500, 20*time.Second)
	for i, pt := range got[:500] {
		if pt.Value.I != int64(i+1) {
			t.Fatalf("message %d carried %d: lost or reordered", i+1, pt.Value.I)
		}
	}
	sink2.mu.Lock()
	defer sink2.mu.Unlock()
	if sink2.flushes == 0 {
		t.Fatal("messages acknowledged without a flush")
	}
}

// The broker restarts and forgets everything (no persistence): the collector
// reconnects with backoff and subscribes again by itself.
func TestReconnectsAndResubscribesAfterBrokerRestartIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	sink := &durableSink{}
	c, m := startCollector(t, testConfig(broker.URL), sink)
	defer c.Stop()
	p := publisher(t, broker.URL)
	pub(t, p, "site/lift/car-1/floor", "1")
	sink.waitCount(t, "floor", 1, 5*time.Second)

	broker.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.Connected) != 0 || testutil.ToFloat64(m.Lost) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("connection loss not noticed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	broker.Start()
	deadline = time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(m.Connected) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("did not reconnect and resubscribe")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p2 := publisher(t, broker.URL)
	pub(t, p2, "site/lift/car-1/floor", "2")
	got := sink.waitCount(t, "floor", 2, 5*time.Second)
	if got[len(got)-1].Value.I != 2 {
		t.Fatalf("after the restart got %v", got[len(got)-1].Value)
	}
}

// switchSink records points like durableSink; Flush fails while failing is set.
type switchSink struct {
	durableSink
	failing atomic.Bool
}

func (s *switchSink) Flush() error {
	if s.failing.Load() {
		return errors.New("disk full")
	}
	return s.durableSink.Flush()
}

func waitGauge(t *testing.T, name string, g prometheus.Collector, ok func(float64) bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok(testutil.ToFloat64(g)) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after %s", name, testutil.ToFloat64(g), within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Against a real broker: while flushing fails, the broker fills the
// collector's in-flight window (max_inflight_messages 1000 in testenv) and
// stops sending. Once the disk recovers the held messages are acknowledged
// and everything queued at the broker, and published later, arrives in order.
// The old code abandoned the failed batches unacknowledged, so after recovery
// nothing arrived at all.
func TestIngestResumesAfterFlushFailuresIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	sink := &switchSink{}
	sink.failing.Store(true)
	cfg := testConfig(broker.URL)
	cfg.FlushRetryMax = 200 * time.Millisecond
	c, m := startCollector(t, cfg, sink)
	defer c.Stop()

	p := publisher(t, broker.URL)
	const during, after, window = 1100, 30, 1000
	for i := 1; i <= during; i++ {
		pub(t, p, "site/lift/car-1/floor", fmt.Sprint(i))
	}
	sink.waitCount(t, "floor", window, 20*time.Second)
	waitGauge(t, "gateway_mqtt_flush_failures_total", m.FlushFailures, func(v float64) bool { return v >= 3 }, 10*time.Second)
	waitGauge(t, "gateway_mqtt_held_back_messages", m.HeldBack, func(v float64) bool { return v == window }, 10*time.Second)
	if n := len(sink.snapshot()); n != window {
		t.Fatalf("%d points while the window is full, want %d", n, window)
	}

	sink.failing.Store(false)
	for i := during + 1; i <= during+after; i++ {
		pub(t, p, "site/lift/car-1/floor", fmt.Sprint(i))
	}
	got := sink.waitCount(t, "floor", during+after, 20*time.Second)
	for i, pt := range got {
		if pt.Value.I != int64(i+1) {
			t.Fatalf("point %d carried %d: lost, duplicated or reordered", i+1, pt.Value.I)
		}
	}
	// Every message acknowledged (the last one's points reach the sink just
	// before it is queued for its PUBACK, so the unacked gauge alone can read
	// 0 a moment too early).
	waitGauge(t, "gateway_mqtt_acked_messages_total", m.Acked, func(v float64) bool { return v == during+after }, 5*time.Second)
	waitGauge(t, "gateway_mqtt_unacked_messages", m.Unacked, func(v float64) bool { return v == 0 }, 5*time.Second)
	if n := testutil.ToFloat64(m.HeldBack); n != 0 {
		t.Fatalf("held-back gauge %v after recovery", n)
	}

	// The broker really got every PUBACK: with flushing failing again (so
	// nothing new is acknowledged) it sends at most `window` messages minus
	// those still unacknowledged, so `window` more arrive only if every one
	// of the first during+after was acknowledged.
	sink.failing.Store(true)
	for i := 1; i <= window; i++ {
		pub(t, p, "site/lift/car-1/floor", fmt.Sprint(during+after+i))
	}
	sink.waitCount(t, "floor", during+after+window, 20*time.Second)
	sink.failing.Store(false)
}
