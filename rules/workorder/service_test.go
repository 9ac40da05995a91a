package workorder_test

// These tests drive the engine and the work-order service together on a
// real SQLite file, with an injected clock.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/delivery"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	. "github.com/propgate/gateway/rules/workorder"
)

var testAssets = []collectors.Asset{
	{ID: "b3-pump", Kind: "pump_room", Name: "B3 pump room", Building: "B3", Floor: "B1", Location: "north end"},
	{ID: "b3-panel", Kind: "distribution_panel", Name: "B3 panel", Building: "B3", Floor: "B1"},
	{ID: "b5-pump", Kind: "pump_room", Name: "B5 pump room", Building: "B5", Floor: "B1"},
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)} }
func quietLog() *slog.Logger             { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func pt(asset, field string, v collectors.Value) collectors.Point {
	return collectors.Point{Asset: asset, Field: field, Value: v, Quality: collectors.QualityGood}
}

func testConfig() rules.Config {
	return rules.Config{Rules: []rules.Rule{
		{ID: "mains-lost", Target: rules.Target{Kind: "distribution_panel"}, Field: "mains_present", State: &rules.StateMatch{Equals: false}, Priority: rules.Critical,
			WorkOrder: &rules.WorkOrderSpec{Category: "electrical"}},
		{ID: "low-pressure", Name: "Outlet pressure low", Target: rules.Target{Kind: "pump_room"}, Field: "outlet_pressure",
			Threshold: &rules.Threshold{Below: f64(0.15), Deadband: 0.02}, OnDelay: 10 * time.Second, Priority: rules.High,
			SuppressedBy: []rules.Suppression{{Rule: "mains-lost"}}, WorkOrder: &rules.WorkOrderSpec{Category: "plumbing"}},
		{ID: "comm-lost", Target: rules.Target{Kind: "distribution_panel"}, Field: "comm_lost", State: &rules.StateMatch{Equals: true}, Priority: rules.High, Fault: true},
	}}
}

type harness struct {
	t       *testing.T
	path    string
	clock   *clock
	store   *sqlite.Rules
	bus     *event.Bus
	e       *rules.Engine
	wo      *Service
	reports *Reports
}

var bg = context.Background()

func newHarness(t *testing.T, path string, c *clock, outbox bool) *harness {
	t.Helper()
	s, err := sqlite.OpenRules(path, outbox)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.SetDefaults()
	if err := cfg.Validate(testAssets); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, path: path, clock: c, store: s, bus: event.NewBus(nil)}
	h.wo = NewService(Config{ReopenWindow: time.Hour}, testAssets, s, quietLog(), c.now, h.bus)
	h.e = rules.NewEngine(cfg, testAssets, rules.Deps{Store: s, Observers: []rules.Observer{h.bus}, OnFire: h.wo, Log: quietLog(), Now: c.now})
	h.reports = NewReports(s, rules.NewEquipment(h.e, s), Config{Calendar: Calendar{TimeZone: "UTC"}}, c.now)

	if err := h.e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return h
}

func (h *harness) pressure(asset string, v float64) {
	h.e.Process([]collectors.Point{pt(asset, "outlet_pressure", collectors.Float(v))})
}

func (h *harness) state(id string) rules.AlarmState {
	a, ok := h.e.Alarm(id)
	if !ok {
		h.t.Fatalf("no alarm %s", id)
	}
	return a.State
}

func (h *harness) openOrders() []*WorkOrder {
	ws, err := h.store.WorkOrders(context.Background(), Filter{})
	if err != nil {
		h.t.Fatal(err)
	}
	return ws
}

// A fault that fires again appends to its open work order; once resolved,
// it reopens within the reopen window and opens a new order after it.
func TestWorkOrderDeduplicationAndReopen(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), newClock(), false)
	fire := func() {
		h.pressure("b3-pump", 0.10)
		h.clock.advance(10 * time.Second)
		h.e.Tick()
		if s := h.state("low-pressure:b3-pump"); s != rules.StateUnacked {
			t.Fatalf("state %s", s)
		}
		h.clock.advance(time.Second)
		h.pressure("b3-pump", 0.40)
		h.clock.advance(time.Second)
	}
	fire()
	fire()
	ws := h.openOrders()
	if len(ws) != 1 || ws[0].Occurrences != 2 || ws[0].Status != Opened || ws[0].Category != "plumbing" || ws[0].Priority != rules.High {
		t.Fatalf("after firing twice: %+v", ws)
	}
	if ws[0].Location != "B3, B1, north end" || ws[0].Description != "Outlet pressure low: B3 pump room (value 0.1)" {
		t.Fatalf("location/description: %q / %q", ws[0].Location, ws[0].Description)
	}
	id := ws[0].ID
	for _, to := range []Status{Accepted, InProgress, Resolved} {
		if _, err := h.wo.Transition(bg, id, to, "li.ming", ""); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.advance(30 * time.Minute)
	fire() // within the hour: reopened
	ws = h.openOrders()
	if len(ws) != 1 || ws[0].Status != InProgress || ws[0].Occurrences != 3 {
		t.Fatalf("after the fault came back: %+v", ws[0])
	}
	h.wo.Transition(bg, id, Resolved, "li.ming", "")
	h.wo.Transition(bg, id, Closed, "li.ming", "")
	h.clock.advance(2 * time.Hour)
	fire() // beyond the window: a new order
	ws = h.openOrders()
	if len(ws) != 2 || ws[0].ID == id || ws[0].Status != Opened {
		t.Fatalf("after the window: %d orders, newest %+v", len(ws), ws[0])
	}
	_, hist, _ := h.store.WorkOrder(context.Background(), id)
	var notes []string
	for _, e := range hist {
		notes = append(notes, string(e.To)+"|"+e.By)
	}
	want := "[opened|engine |engine accepted|li.ming in_progress|li.ming resolved|li.ming in_progress|engine resolved|li.ming closed|li.ming]"
	if got := fmt.Sprint(notes); got != want {
		t.Fatalf("history %s\nwant    %s", got, want)
	}
}

// rules.Low pressure in a building whose mains are lost is suppressed by design,
// opens no work order, and annunciates if it outlasts the outage.
func TestSuppressionByDesign(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), newClock(), false)
	h.e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(false))})
	h.pressure("b3-pump", 0.05)
	h.pressure("b5-pump", 0.05)
	h.clock.advance(10 * time.Second)
	h.e.Tick()
	if s := h.state("low-pressure:b3-pump"); s != rules.StateSuppressed {
		t.Fatalf("B3 pressure during B3 outage: %s", s)
	}
	if s := h.state("low-pressure:b5-pump"); s != rules.StateUnacked {
		t.Fatalf("B5 pressure (its mains are fine): %s", s)
	}
	orders := map[string]int{}
	for _, w := range h.openOrders() {
		orders[w.Rule+":"+w.Asset]++
	}
	if orders["low-pressure:b3-pump"] != 0 || orders["mains-lost:b3-panel"] != 1 || orders["low-pressure:b5-pump"] != 1 {
		t.Fatalf("work orders %v", orders)
	}
	h.e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(true))})
	h.e.Tick()
	if s := h.state("low-pressure:b3-pump"); s != rules.StateUnacked {
		t.Fatalf("pressure still low after the mains returned: %s", s)
	}
}

// The engine and the store survive a restart: alarm states, shelving with
// its remaining time, a running on-delay, and work orders under SLA.
func TestRestartKeepsStateAndTimers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.db")
	c := newClock()
	h := newHarness(t, path, c, false)
	h.e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(false))}) // critical, unacked, WO
	h.pressure("b5-pump", 0.05)
	c.advance(10 * time.Second)
	h.e.Tick() // B5 low pressure active
	if _, err := h.e.Shelve("low-pressure:b5-pump", 30*time.Minute, "wang.li", "pump being serviced"); err != nil {
		t.Fatal(err)
	}
	h.pressure("b3-pump", 0.05) // the B3 outage suppresses it
	h.e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(true))})
	h.e.Tick()
	c.advance(4 * time.Second) // B3 pressure on-delay: 4 of 10 s run
	h.pressure("b3-pump", 0.05)
	before := h.e.Alarms(nil)
	woBefore := h.openOrders()
	h.store.Close()

	// "Crash": a new engine on the same file, 1 minute later.
	c.advance(time.Minute)
	h2 := newHarness(t, path, c, false)
	after := h2.e.Alarms(nil)
	if len(after) != len(before) {
		t.Fatalf("%d alarms after restart, %d before", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.ID != b.ID || a.State != b.State || !a.ShelvedUntil.Equal(b.ShelvedUntil) || !a.Since.Equal(b.Since) {
			t.Errorf("alarm %s: before %s until %s since %s, after %s until %s since %s", b.ID, b.State, b.ShelvedUntil, b.Since, a.State, a.ShelvedUntil, a.Since)
		}
	}
	// The B3 pressure on-delay had run 4 s before the restart; the condition
	// held for 64 s since: the next tick activates it.
	h2.e.Tick()
	if s := h2.state("low-pressure:b3-pump"); s != rules.StateUnacked {
		t.Fatalf("on-delay did not resume: %s", s)
	}
	// Shelving: 30 minutes from the shelve; 1m4s have passed.
	c.advance(28*time.Minute + 55*time.Second)
	h2.e.Tick()
	if s := h2.state("low-pressure:b5-pump"); s != rules.StateShelved {
		t.Fatalf("shelving ended early: %s", s)
	}
	c.advance(2 * time.Second)
	h2.e.Tick()
	if s := h2.state("low-pressure:b5-pump"); s != rules.StateUnacked {
		t.Fatalf("shelving did not expire on time: %s", s)
	}
	woAfter := h2.openOrders()
	if len(woAfter) < len(woBefore) || !woAfter[len(woAfter)-1].ResponseDue.Equal(woBefore[len(woBefore)-1].ResponseDue) {
		t.Fatalf("work orders before %d, after %d", len(woBefore), len(woAfter))
	}
}

// SLA breaches are recorded exactly when the deadlines pass.
func TestSLABreaches(t *testing.T) {
	c := newClock()
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), c, false)
	w, err := h.wo.Create(bg, WorkOrder{Category: "plumbing", Asset: "b3-pump", Priority: rules.Critical, Description: "resident reports no water on 12F", Reporter: "service desk"}, "service desk")
	if err != nil {
		t.Fatal(err)
	}
	if w.Location != "B3, B1, north end" || !w.ResponseDue.Equal(c.t.Add(3*time.Minute)) || !w.ResolutionDue.Equal(c.t.Add(2*time.Hour+3*time.Minute)) ||
		!w.ArrivalDue.Equal(c.t.Add(3*time.Minute)) {
		t.Fatalf("deadlines %s / %s, location %q", w.ResponseDue, w.ResolutionDue, w.Location)
	}
	c.advance(3 * time.Minute)
	h.wo.CheckSLA(bg)
	got, _, _ := h.store.WorkOrder(context.Background(), w.ID)
	if got.ResponseBreached {
		t.Fatal("breached at the deadline itself")
	}
	c.advance(10 * time.Second)
	h.wo.CheckSLA(bg)
	got, hist, _ := h.store.WorkOrder(context.Background(), w.ID)
	if !got.ResponseBreached || !got.ArrivalBreached || got.ResolutionBreached {
		t.Fatalf("after the response deadline: %+v", got)
	}
	if last := hist[len(hist)-1]; last.Note != "SLA breached: response and arrival deadline passed" || last.By != rules.ByEngine {
		t.Fatalf("history %+v", last)
	}
	acc, _ := h.wo.Transition(bg, w.ID, Accepted, "li.ming", "")
	if !acc.ResolutionDue.Equal(c.t.Add(2 * time.Hour)) { // counted from acceptance (接单)
		t.Fatalf("resolution due %s, want 2 h after acceptance at %s", acc.ResolutionDue, c.t)
	}
	c.advance(2 * time.Hour)
	h.wo.CheckSLA(bg)
	if got, _, _ = h.store.WorkOrder(context.Background(), w.ID); got.ResolutionBreached {
		t.Fatal("breached at the deadline itself")
	}
	c.advance(time.Second)
	h.wo.CheckSLA(bg)
	got, _, _ = h.store.WorkOrder(context.Background(), w.ID)
	if !got.ResolutionBreached {
		t.Fatal("resolution breach not recorded")
	}
}

// Invalid transitions are rejected and change nothing.
func TestInvalidTransitionChangesNothing(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), newClock(), false)
	w, _ := h.wo.Create(bg, WorkOrder{Category: "electrical", Location: "B3 lobby", Priority: rules.Low, Description: "lamp out", Reporter: "resident"}, "resident")
	_, err := h.wo.Transition(bg, w.ID, Closed, "li.ming", "")
	var te *TransitionError
	if !errors.As(err, &te) || err.Error() != "a opened work order cannot become closed; from opened it can go to [dispatched accepted cancelled]" {
		t.Fatalf("err = %v", err)
	}
	_, err = h.wo.Transition(bg, w.ID, "done", "li.ming", "")
	if err == nil || err.Error() != `"done" is not a status; from opened it can go to [dispatched accepted cancelled]` {
		t.Fatalf("err = %v", err)
	}
	got, hist, _ := h.store.WorkOrder(context.Background(), w.ID)
	if got.Status != Opened || got.Version != 1 || len(hist) != 1 {
		t.Fatalf("changed: %+v, %d history entries", got, len(hist))
	}
}

// KPIs from work orders driven through their lifecycle on a known clock.
func TestKPIs(t *testing.T) {
	c := newClock()
	start := c.t
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), c, false)
	mk := func() int64 {
		w, err := h.wo.Create(bg, WorkOrder{Category: "plumbing", Location: "B3", Priority: rules.High, Description: "x", Reporter: "desk"}, "desk")
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	a, b, cc, d := mk(), mk(), mk(), mk() // high: respond 15 min, resolve 4 h from acceptance
	// A drill's order, left open and late: it must not count anywhere.
	if _, err := h.wo.Create(bg, WorkOrder{Category: "plumbing", Location: "B3", Priority: rules.High, Description: "drill", Drill: true}, "playbook flooding"); err != nil {
		t.Fatal(err)
	}
	c.advance(10 * time.Minute)
	h.wo.Transition(bg, a, Accepted, "x", "")
	h.wo.Transition(bg, b, Accepted, "x", "")
	c.advance(10 * time.Minute) // 20 min: late for c
	h.wo.Transition(bg, cc, Accepted, "x", "")
	c.advance(time.Hour)
	h.wo.Transition(bg, a, Resolved, "x", "")
	if _, err := h.wo.Callback(bg, a, Satisfied, "", "kefu"); err != nil {
		t.Fatal(err)
	}
	h.wo.Transition(bg, a, Closed, "x", "")
	c.advance(4 * time.Hour) // 5h20: late for b (due 4h10)
	h.wo.Transition(bg, b, Resolved, "x", "")
	h.wo.Transition(bg, d, Cancelled, "x", "duplicate report")
	// The B3 panel lost mains for 30 minutes (a process alarm: the panel
	// works) and its controller stopped answering for 20 (a device fault).
	h.e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(false))})
	h.e.Process([]collectors.Point{pt("b3-panel", "comm_lost", collectors.Bool(true))})
	c.advance(20 * time.Minute)
	h.e.Process([]collectors.Point{pt("b3-panel", "comm_lost", collectors.Bool(false))})
	c.advance(10 * time.Minute)
	h.e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(true))})
	end := c.t.Add(30 * time.Minute) // a 6h20 period
	c.t = end
	k, err := h.reports.KPIs(context.Background(), start, end)
	if err != nil {
		t.Fatal(err)
	}
	// Orders: a, b, c (d was cancelled) and the one mains-lost opened; a and b were handled.
	if k.Cancelled != 1 || k.Drills != 1 {
		t.Fatalf("cancelled %d, drills %d; want 1 and 1", k.Cancelled, k.Drills)
	}
	// Response: a, b, c accepted (c late); mains-lost's order (critical,
	// 3 min) never accepted, so late too: 2 of 4. Resolution: a on time,
	// b late, c open past 4h20; mains-lost's (due 7h23) not yet judged: 1 of 3.
	// Call-backs: a done; b still within its working day: 1 of 1.
	if k.WorkOrders != 4 || k.Handled != 2 || *k.HandlingRate.Value != 0.5 || *k.HandlingRate.Met || k.HandlingRate.Target != 1 ||
		*k.ResponseOnTimeRate.Value != 0.5 || *k.ResolutionOnTimeRate.Value != 1.0/3 || *k.CallbackRate.Value != 1 || !*k.CallbackRate.Met ||
		k.Callbacks.Awaiting != 1 || k.ByType[Repair] != 3 || k.ByType[Fault] != 1 {
		t.Fatalf("rates: %+v", k)
	}
	if *k.MeanTimeToRespond != Seconds((10*time.Minute+10*time.Minute+20*time.Minute).Seconds()/3) ||
		*k.MeanTimeToResolve != Seconds((80*time.Minute+320*time.Minute).Seconds()/2) {
		t.Fatalf("means: %v %v", *k.MeanTimeToRespond, *k.MeanTimeToResolve)
	}
	// The emergency (mains lost) had nobody on site within 3 minutes.
	if k.ArrivalOnTimeRate.Of != 1 || *k.ArrivalOnTimeRate.Value != 0 || k.MeanTimeToArrive.Value != nil {
		t.Fatalf("arrival: %+v %+v", k.ArrivalOnTimeRate, k.MeanTimeToArrive)
	}
	period := end.Sub(start)
	if want := 1 - float64(20*time.Minute)/float64(period); k.Availability["distribution_panel"] != want || k.Availability["pump_room"] != 1 {
		t.Fatalf("good order %v, want panel %v", k.Availability, want)
	}
	if want := 1 - float64(20*time.Minute)/float64(3*period); *k.GoodOrder.Value != want || !*k.GoodOrder.Met {
		t.Fatalf("good order %+v, want %v (98.2 %%: met)", k.GoodOrder, want)
	}
}

// The webhook posts every work-order change, retries a failing receiver
// with the same idempotency key, keeps order, and signs the body.
func TestWebhookDeliversInOrderWithRetries(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	var events []string
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(body)
		if r.Header.Get("X-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("bad signature or content type: %v", r.Header)
		}
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Error(err)
		}
		events = append(events, p.Event+":"+string(p.WorkOrder.Status))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), newClock(), true)
	w, _ := h.wo.Create(bg, WorkOrder{Category: "lift", Location: "B3 car 2", Priority: rules.High, Description: "door sticks", Reporter: "desk"}, "desk")
	h.wo.Transition(bg, w.ID, Accepted, "li.ming", "")
	h.wo.Update(bg, w.ID, Update{Note: "parts ordered"}, "li.ming")

	hook := NewWebhook(WebhookConfig{URL: srv.URL, Secret: "s3cret", MaxBackoff: 20 * time.Millisecond}, h.store, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hook.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of 3", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(events); got != "[workorder.created:opened workorder.transitioned:accepted workorder.updated:accepted]" {
		t.Fatalf("events %s", got)
	}
	if got := fmt.Sprint(keys); got != "[wo-1-v1 wo-1-v1 wo-1-v1 wo-1-v2 wo-1-v3]" {
		t.Fatalf("idempotency keys %s", got)
	}
	pending, _ := h.store.PendingOutbox(context.Background(), 10)
	if len(pending) != 0 {
		t.Fatalf("%d deliveries still pending", len(pending))
	}
}

// Every alarm transition and work-order change is published on the bus.
func TestChangesArePublishedOnTheBus(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), newClock(), false)
	sub := h.bus.Subscribe(16)
	defer sub.Close()
	h.e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(false))})
	h.e.Ack("mains-lost:b3-panel", "wang.li", "utility called")
	var got []string
	for len(sub.C) > 0 {
		ev := <-sub.C
		switch ev.Type {
		case event.EventAlarm:
			got = append(got, fmt.Sprintf("alarm %s %s>%s by %s", ev.Alarm.ID, ev.Transition.From, ev.Transition.To, ev.Transition.By))
		case event.EventWorkOrder:
			got = append(got, fmt.Sprintf("workorder %d %s %s", ev.WorkOrder.ID, ev.WorkOrder.Status, ev.WorkOrder.Category))
		}
	}
	want := "[alarm mains-lost:b3-panel normal>unacknowledged by engine workorder 1 opened electrical alarm mains-lost:b3-panel unacknowledged>acknowledged by wang.li]"
	if fmt.Sprint(got) != want {
		t.Fatalf("events:\n got %v\nwant %s", got, want)
	}
	if sub.Dropped() != 0 {
		t.Fatal("events dropped")
	}
}

func f64(v float64) *float64 { return &v }

// A receiver that refuses one delivery for good (400) does not block every
// later change behind it; the refused one is kept with its error. Every
// delivery carries a signed timestamp, so a receiver can refuse replays.
func TestWebhookRefusalDoesNotBlockTheOutbox(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !delivery.Verify("s3cret", body, r.Header, time.Now(), time.Minute) {
			t.Errorf("no valid timestamped signature: %v", r.Header)
		}
		mu.Lock()
		defer mu.Unlock()
		key := r.Header.Get("Idempotency-Key")
		if key == "wo-1-v1" {
			w.WriteHeader(http.StatusBadRequest) // this receiver will never take it
			return
		}
		got = append(got, key)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), newClock(), true)
	w, _ := h.wo.Create(bg, WorkOrder{Category: "lift", Location: "B3 car 2", Priority: rules.High, Description: "door sticks"}, "desk")
	h.wo.Transition(bg, w.ID, Accepted, "li.ming", "")
	hook := NewWebhook(WebhookConfig{URL: srv.URL, Secret: "s3cret", MaxBackoff: 20 * time.Millisecond}, h.store, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hook.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change after the refused one was never delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if pending, _ := h.store.PendingOutbox(bg, 10); len(pending) != 0 {
		t.Fatalf("%d still pending", len(pending))
	}
	if fmt.Sprint(got) != "[wo-1-v2]" {
		t.Fatalf("delivered %v", got)
	}
}

// The figures keep the orders they decoded and re-read only those created
// or changed since: a change made between two requests shows in the
// second, and the list equals the store's (newest first).
func TestKPIsReReadOnlyChangedOrders(t *testing.T) {
	c := newClock()
	start := c.t
	h := newHarness(t, filepath.Join(t.TempDir(), "gw.db"), c, false)
	mk := func() int64 {
		w, err := h.wo.Create(bg, WorkOrder{Category: "plumbing", Location: "B3", Priority: rules.High, Description: "x"}, "desk")
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	a, _ := mk(), mk()
	c.advance(10 * time.Minute)
	handled := func() int {
		t.Helper()
		k, err := h.reports.KPIs(bg, start, start.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return k.Handled
	}
	if n := handled(); n != 0 {
		t.Fatalf("handled %d before any resolution", n)
	}
	h.wo.Transition(bg, a, Accepted, "wang.li", "")
	h.wo.Transition(bg, a, Resolved, "wang.li", "")
	c.advance(time.Minute)
	third := mk()
	if n := handled(); n != 1 {
		t.Fatalf("handled %d after resolving #%d between two requests, want 1", n, a)
	}
	got, err := h.reports.WorkOrders(bg, Filter{CreatedAfter: start, CreatedBefore: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := h.store.WorkOrders(bg, Filter{CreatedAfter: start, CreatedBefore: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got) != len(want) || got[0].ID != third {
		t.Fatalf("%d orders (first #%d), want the store's %d newest first (#%d)", len(got), got[0].ID, len(want), third)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("order %d: kept %+v, store %+v", i, got[i], want[i])
		}
	}
}
