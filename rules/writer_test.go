package rules_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
	. "github.com/propgate/gateway/rules"
)

// gatedStore is an AlarmStore whose saves wait for the test to open the
// gate, recording every transition in the order saved.
type gatedStore struct {
	gate chan struct{}
	mu   sync.Mutex
	tr   []Transition
}

func (s *gatedStore) LoadAlarms(context.Context) ([]*Alarm, error) { return nil, nil }
func (s *gatedStore) SaveAlarm(_ context.Context, _ *Alarm, tr []Transition) error {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tr = append(s.tr, tr...)
	return nil
}
func (s *gatedStore) TransitionsBetween(context.Context, time.Time, time.Time) ([]Transition, error) {
	return nil, nil
}
func (s *gatedStore) StatesAt(context.Context, time.Time) (map[string]AlarmState, error) {
	return nil, nil
}
func (s *gatedStore) saved() []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Transition(nil), s.tr...)
}

type told struct {
	mu sync.Mutex
	tr []Transition
}

func (o *told) AlarmChanged(_ Alarm, t Transition) {
	o.mu.Lock()
	o.tr = append(o.tr, t)
	o.mu.Unlock()
}

// While Run runs, alarm writes leave the ingest path through an ordered
// queue: more changes than the queue holds, with a store that is slow to
// take them, are all saved and told in the order they happened (the queue
// waits when full, it never drops), and Flush returns only once every
// change made before it is saved — what the pipeline relies on before an
// MQTT PUBACK.
func TestAlarmWritesQueuedInOrderAndFlushedBeforeAck(t *testing.T) {
	const assets = 40
	var as []collectors.Asset
	for i := 0; i < assets; i++ {
		as = append(as, collectors.Asset{ID: fmt.Sprintf("s%02d", i), Kind: "sensor"})
	}
	cfg := Config{Rules: []Rule{{ID: "hot", Target: Target{Kind: "sensor"}, Field: "t", Threshold: &Threshold{Above: f64(50)}, Priority: High}}}
	cfg.SetDefaults()
	if err := cfg.Validate(as); err != nil {
		t.Fatal(err)
	}
	store := &gatedStore{gate: make(chan struct{})}
	obs := &told{}
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	m := NewMetrics(nil)
	e := NewEngine(cfg, as, Deps{Store: store, Observers: []Observer{obs}, Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }})
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); e.Run(ctx) }()
	// Run queues writes from its start; its first tick (after a second)
	// shows it started.
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(m.Ticks) < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the engine did not tick")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rounds := (JobQueue + assets) / assets * 2 // more changes than the queue holds
	want := 0
	ingested := make(chan struct{})
	go func() {
		defer close(ingested)
		for r := 0; r < rounds; r++ {
			v := 100.0 // fire
			if r%2 == 1 {
				v = 0 // return to normal (unacknowledged)
			}
			for i := 0; i < assets; i++ {
				e.Process([]collectors.Point{{Asset: as[i].ID, Field: "t", Value: collectors.Float(v), Quality: collectors.QualityGood, Time: now}})
			}
		}
	}()
	want = rounds * assets
	// The queue fills (the store holds the first write at its gate) and
	// ingest waits: nothing is dropped.
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(m.Queued) < JobQueue; {
		if time.Now().After(deadline) {
			t.Fatalf("the write queue never filled: %v queued", testutil.ToFloat64(m.Queued))
		}
		time.Sleep(time.Millisecond)
	}
	flushed := make(chan int)
	go func() {
		<-ingested
		e.Flush()
		flushed <- len(store.saved())
	}()
	close(store.gate) // the store takes writes again
	if n := <-flushed; n != want {
		t.Fatalf("Flush returned with %d of %d transitions saved", n, want)
	}
	saved := store.saved()
	for i, tr := range saved {
		// Per asset: unacknowledged, returned-unacknowledged, unacknowledged, ...
		wantTo := StateUnacked
		if (i/assets)%2 == 1 {
			wantTo = StateRTNUnacked
		}
		if tr.To != wantTo || tr.AlarmID != "hot:"+as[i%assets].ID {
			t.Fatalf("transition %d is %s → %s of %s, want → %s of hot:%s (order lost)", i, tr.From, tr.To, tr.AlarmID, wantTo, as[i%assets].ID)
		}
	}
	obs.mu.Lock()
	n := len(obs.tr)
	obs.mu.Unlock()
	if n != want {
		t.Fatalf("observers told %d of %d transitions", n, want)
	}
	cancel()
	<-ran
	// After Run, changes are written by the goroutine that makes them.
	e.Process([]collectors.Point{{Asset: as[0].ID, Field: "t", Value: collectors.Float(100), Quality: collectors.QualityGood, Time: now}})
	if got := len(store.saved()); got != want+1 {
		t.Fatalf("after Run: %d transitions saved, want %d", got, want+1)
	}
}

// An operator's action returns only once it is saved, also while the
// writer runs.
func TestOperatorActionSavedBeforeItReturns(t *testing.T) {
	as := []collectors.Asset{{ID: "p1", Kind: "pump_room"}}
	cfg := Config{Rules: []Rule{{ID: "low", Target: Target{Kind: "pump_room"}, Field: "p", Threshold: &Threshold{Below: f64(1)}, Priority: High}}}
	cfg.SetDefaults()
	if err := cfg.Validate(as); err != nil {
		t.Fatal(err)
	}
	store := &gatedStore{gate: make(chan struct{})}
	close(store.gate)
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	e := NewEngine(cfg, as, Deps{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }})
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	e.Process([]collectors.Point{{Asset: "p1", Field: "p", Value: collectors.Float(0), Quality: collectors.QualityGood, Time: now}})
	if _, err := e.Ack("low:p1", "wang.li", "on my way"); err != nil {
		t.Fatal(err)
	}
	saved := store.saved()
	if len(saved) != 2 || saved[1].To != StateAcked || saved[1].By != "wang.li" {
		t.Fatalf("saved when Ack returned: %+v", saved)
	}
}
