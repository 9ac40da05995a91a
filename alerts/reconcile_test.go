package alerts_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/rules"
)

// Issue 10 item 11: open alerts persisted under an older config are
// reconciled at start. Each case crashed the 1-second tick on every restart
// before (nil policy, nil person, level out of range).

func TestRestartAfterPolicyRenamedReroutes(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.messages(1)
	cfg := testConfig(h.hook)
	cfg.Policies[0].ID = "standard-v2"
	for i := range cfg.Routes {
		cfg.Routes[i].Policy = "standard-v2"
	}
	h.restart(cfg)
	h.advance(5 * time.Minute) // level 2 is due: escalates under the renamed policy
	if got := h.messages(2); got[1] != "boss: 【高·升级报警】pump-fault" {
		t.Fatalf("after the rename: %v", got)
	}
	a := h.stored(alertIDAt(id, t0))
	if a.Policy != "standard-v2" || a.State != alerts.Firing || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], `escalation policy "standard" no longer exists; re-routed to "standard-v2"`) {
		t.Fatalf("alert %+v", a)
	}
	if n := h.metric("gateway_alert_reconciled_total", "what", "policy"); n != 1 {
		t.Fatalf("reconciliation counted: %v", n)
	}
}

func TestRestartAfterPolicyRemovedWithoutRouteCloses(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.messages(1)
	cfg := testConfig(h.hook)
	cfg.Policies[0].ID = "lifts-only"
	cfg.Routes = []alerts.Route{{Rules: []string{"elevator-entrapment"}, Policy: "lifts-only"}}
	h.restart(cfg)
	h.advance(time.Hour)
	h.transition(id, rules.StateNormal, "engine") // nothing open to resolve: no panic, no message
	if n := len(h.settled()); n != 1 {
		t.Fatalf("%d messages", n)
	}
	a := h.stored(alertIDAt(id, t0))
	if a.State != alerts.Closed || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "no route matches: closed") {
		t.Fatalf("alert %+v", a)
	}
}

func TestRestartAfterPersonRemoved(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.advance(5 * time.Minute) // boss told
	h.messages(2)
	cfg := testConfig(h.hook)
	cfg.People = cfg.People[:2] // boss left the company
	cfg.Policies[0].Levels[1].Notify = []string{"person:li"}
	h.restart(cfg)
	h.advance(10 * time.Minute)                   // next round: the on-call engineer again
	h.transition(id, rules.StateNormal, "engine") // resolved notices: only to people still configured
	got := h.settled()
	slices.Sort(got) // two workers: arrival order may differ
	if fmt.Sprint(got) != "[boss: 【高·升级报警】pump-fault wang: 【高·升级报警】pump-fault wang: 【高·已恢复】pump-fault wang: 【高·报警】pump-fault]" {
		t.Fatalf("messages %v", got)
	}
	a := h.stored(alertIDAt(id, t0))
	if len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "people [boss] are no longer configured") || strings.Contains(fmt.Sprint(a.Notified), "boss") {
		t.Fatalf("alert %+v", a)
	}
}

func TestRestartAfterLevelRemoved(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.advance(5 * time.Minute) // at level 2 (boss)
	h.transition(id, rules.StateAcked, "Zhou Jun")
	h.messages(2)
	cfg := testConfig(h.hook)
	cfg.Policies[0].Levels = cfg.Policies[0].Levels[:1]
	h.restart(cfg)
	h.advance(31 * time.Minute) // the acknowledgement lapses without progress: everyone told is paged again
	if got := sorted(h.settled()[2:]); got != "[boss: 【高·确认后无进展·重新报警】pump-fault wang: 【高·确认后无进展·重新报警】pump-fault]" {
		t.Fatalf("re-page %v", got)
	}
	a := h.stored(alertIDAt(id, t0))
	if a.Level != 0 || len(a.Notes) != 2 || !strings.Contains(a.Notes[0], "escalation level 2 no longer exists; now at level 1") {
		t.Fatalf("alert %+v", a)
	}
}

// Issue 10 item 12: an activation whose bus event was dropped is still
// alerted, by the tick's reconciliation with the engine's active alarms.
func TestDroppedActivationIsAlertedByReconciliation(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.put("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical) // active in the engine; no event
	h.advance(time.Second)
	if got := fmt.Sprint(h.messages(1)); got != "[wang: 【紧急·报警】elevator-entrapment]" {
		t.Fatalf("reconciled: %s", got)
	}
	if n := h.metric("gateway_alert_reconciled_total", "what", "missed_activation"); n != 1 {
		t.Fatalf("missed activations counted: %v", n)
	}
	h.advance(time.Second)
	h.advance(time.Minute) // and only once, also after pruning
	if n := len(h.settled()); n != 1 {
		t.Fatalf("%d messages", n)
	}
	// An activation already acknowledged in the console is not paged.
	a := h.put("pump-fault", "b3-pump", "water_supply", rules.High)
	h.src.Ack(a.ID, "Wang Li", "")
	h.advance(time.Minute)
	if n := len(h.settled()); n != 1 {
		t.Fatalf("%d messages after an acknowledged activation", n)
	}
}

// A restart does not page again for an activation routed before it.
func TestReconciliationAfterRestartDoesNotRepeat(t *testing.T) {
	h := newAlertHarness(t, func(c *alerts.Config) {
		c.Maintenance = []alerts.Maintenance{{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Buildings: []string{"Building 5"}, Reason: "relamping"}}
	})
	h.fire("lighting-off", "b5-light", "other", rules.High) // inhibited: not open, but recorded
	h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.messages(1)
	h.restart(h.cfg)
	h.advance(time.Second)
	if got := h.settled(); len(got) != 1 {
		t.Fatalf("messages after restart %v", got)
	}
}

// blocking is a channel that holds a delivery until released.
type blocking struct {
	started  chan struct{}
	release  chan struct{}
	once     sync.Once
	mu       sync.Mutex
	finished bool
}

func (b *blocking) Notify(ctx context.Context, _ *alerts.Message) (bool, error) {
	b.once.Do(func() { close(b.started) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return true, ctx.Err()
	}
	b.mu.Lock()
	b.finished = true
	b.mu.Unlock()
	return false, nil
}

// Run returns only after the delivery in flight finished (and was
// recorded), so the store can be closed after it.
func TestRunWaitsForDeliveriesInFlight(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.stop()
	b := &blocking{started: make(chan struct{}), release: make(chan struct{})}
	h.start(h.cfg, func(r *alerts.Router) { r.SetNotifier("hook", b) })
	stop := h.stop
	h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	select {
	case <-b.started:
	case <-time.After(5 * time.Second):
		t.Fatal("delivery did not start")
	}
	returned := make(chan struct{})
	go func() { stop(); close(returned) }()
	select {
	case <-returned:
		t.Fatal("Run returned with a delivery in flight")
	default:
	}
	close(b.release)
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	atts, err := h.store.Attempts(context.Background(), 10)
	if err != nil || len(atts) != 1 || atts[0].Result != "sent" {
		t.Fatalf("attempts %v %v", atts, err)
	}
}

type panickingAlarms struct{ fakeAlarms }

func (p *panickingAlarms) Alarms(func(*rules.Alarm) bool) []rules.Alarm { panic("engine bug") }

// A panic in the tick is logged and counted, and the next tick runs: a bug
// costs one tick, not the process (and not a crash loop).
func TestTickPanicIsRecovered(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.stop()
	reg := prometheus.NewRegistry()
	r, err := alerts.NewRouter(h.cfg, alerts.Deps{Alarms: &panickingAlarms{}, Store: h.store, Links: h.store, Metrics: alerts.NewMetrics(reg), Tick: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	h.reg = reg
	for deadline := time.Now().Add(10 * time.Second); h.metric("gateway_alert_routing_panics_total", "in", "tick") < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tick did not survive its panic")
		}
	}
}

// A full endpoint queue drops the message visibly: an attempt row and a
// metric. One worker busy, one message handed to it, one queued (Queue 1):
// the fourth is dropped.
func TestFullQueueDropIsRecordedAndCounted(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.stop()
	b := &blocking{started: make(chan struct{}), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	r, err := alerts.NewRouter(h.cfg, alerts.Deps{Assets: testAssetsA, Alarms: h.src, Store: h.store, Links: h.store, Metrics: alerts.NewMetrics(reg),
		Now: h.time, Workers: 1, Queue: 1, Tick: time.Hour, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	r.SetNotifier("hook", b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	r.WaitStarted(t)
	h.r, h.reg = r, reg
	h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical) // in flight
	select {
	case <-b.started:
	case <-time.After(5 * time.Second):
		t.Fatal("delivery did not start")
	}
	h.fire("elevator-entrapment", "b3-lift-2", "elevator", rules.Critical) // handed to the worker
	h.fire("elevator-entrapment", "b3-lift-3", "elevator", rules.Critical) // queued
	h.fire("elevator-entrapment", "b3-lift-4", "elevator", rules.Critical) // dropped
	if n := h.metric("gateway_alert_messages_dropped_total", "reason", "queue_full"); n != 1 {
		t.Fatalf("drops counted: %v", n)
	}
	atts, _ := h.store.Attempts(context.Background(), 10)
	if len(atts) != 1 || atts[0].Result != "failed" || atts[0].Error != "delivery queue full" {
		t.Fatalf("attempts %+v", atts)
	}
	close(b.release)
	cancel()
	<-done
}
