package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/delivery"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
)

type fakeAlarms struct {
	mu     sync.Mutex
	alarms map[string]*rules.Alarm
	acks   []string
	notes  []string // the acknowledgements' notes
	unacks []string
}

func (f *fakeAlarms) Alarm(id string) (rules.Alarm, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.alarms[id]
	if !ok {
		return rules.Alarm{}, false
	}
	return *a, true
}
func (f *fakeAlarms) Alarms(filter func(*rules.Alarm) bool) []rules.Alarm {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rules.Alarm
	for _, a := range f.alarms {
		if filter(a) {
			out = append(out, *a)
		}
	}
	return out
}
func (f *fakeAlarms) Ack(id, by, note string) (rules.Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, id+" by "+by)
	f.notes = append(f.notes, note)
	a := f.alarms[id]
	if a == nil {
		return rules.Alarm{}, rules.ErrNothingToAck
	}
	a.Acked, a.State = true, rules.StateAcked
	return *a, nil
}

// Unack is the engine's: an acknowledged alarm back to unacknowledged.
func (f *fakeAlarms) Unack(id, by, note string) (rules.Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.alarms[id]
	if a == nil || a.State != rules.StateAcked {
		return rules.Alarm{}, rules.ErrNothingToUnack
	}
	f.unacks = append(f.unacks, id+" by "+by)
	a.Acked, a.State = false, rules.StateUnacked
	return *a, nil
}

type sent struct{ to, first string }

type alertHarness struct {
	t      testing.TB
	clock  sync.Mutex // guards now: delivery workers read the clock
	now    time.Time
	src    *fakeAlarms
	cfg    alerts.Config
	store  *sqlite.Alerts
	r      *alerts.Router
	stop   func()
	audits *auditLog
	reg    *prometheus.Registry
	mu     sync.Mutex
	got    []sent
	status int
	hook   string
	assets []collectors.Asset // default testAssetsA
	told   sentLog            // what the router told its Sent observer
}

// sentLog is a Sent observer (the bus, in the gateway).
type sentLog struct {
	mu sync.Mutex
	as []alerts.Attempt
}

func (l *sentLog) NotificationSent(a alerts.Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.as = append(l.as, a)
}

func (l *sentLog) list() []alerts.Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]alerts.Attempt(nil), l.as...)
}

type auditLog struct {
	mu sync.Mutex
	e  []alerts.LinkAudit
}

func (a *auditLog) AuditLinkAck(_ context.Context, e alerts.LinkAudit) {
	a.mu.Lock()
	a.e = append(a.e, e)
	a.mu.Unlock()
}

var t0 = time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC) // 22:00 in Shanghai

var testAssetsA = []collectors.Asset{
	{ID: "b3-panel", Kind: "distribution_panel", Building: "Building 3", Floor: "B1"},
	{ID: "b3-pump", Kind: "pump_room", Building: "Building 3", Floor: "B1", Location: "north end"},
	{ID: "b3-lift-1", Kind: "elevator", Building: "Building 3", Location: "Lobby, left car"},
	{ID: "b5-light", Kind: "lighting", Building: "Building 5"},
}

func testConfig(hook string) alerts.Config {
	return alerts.Config{
		BaseURL: "https://gw.yushan.example", LinkSecret: "0123456789abcdef0123", GroupWindow: 10 * time.Second,
		Channels: map[string]alerts.ChannelConfig{"hook": {Type: alerts.Webhook, URL: hook}},
		People: []alerts.Person{
			{ID: "wang", Name: "Wang Li", Contacts: []alerts.Contact{{Channel: "hook"}}},
			{ID: "li", Name: "Li Ming", Language: "en", Contacts: []alerts.Contact{{Channel: "hook"}}},
			{ID: "boss", Name: "Zhou Jun", Contacts: []alerts.Contact{{Channel: "hook"}}},
		},
		Teams: []alerts.Team{{ID: "engineering", Name: "Engineering", Rotation: alerts.Rotation{Members: []string{"wang", "li"}, Start: t0.Add(-2 * time.Hour), Shift: 24 * time.Hour, TimeZone: "Asia/Shanghai"}}},
		Policies: []alerts.Policy{{ID: "standard", Repeat: 1, AckExpiry: 30 * time.Minute, Levels: []alerts.Level{
			{Notify: []string{"team:engineering"}, Wait: 5 * time.Minute},
			{Notify: []string{"person:boss"}, Wait: 10 * time.Minute},
		}}},
		Routes: []alerts.Route{
			{Rules: []string{"elevator-entrapment"}, Policy: "standard", Immediate: true},
			{Policy: "standard"},
		},
		Inhibit: []alerts.Inhibit{{SourceRule: "mains-lost", Categories: []string{"water_supply", "lighting"}, Except: []string{"elevator-entrapment"}, Scope: "site"}},
		Roles:   map[string]string{"duty_engineer": "engineering"},
	}
}

func newAlertHarness(t testing.TB, mod func(*alerts.Config)) *alertHarness {
	return newSiteHarness(t, nil, mod)
}

// newSiteHarness is newAlertHarness over other assets (nil: testAssetsA).
func newSiteHarness(t testing.TB, assets []collectors.Asset, mod func(*alerts.Config)) *alertHarness {
	h := &alertHarness{t: t, now: t0, src: &fakeAlarms{alarms: map[string]*rules.Alarm{}}, status: 200, audits: &auditLog{}, assets: assets}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ To, Text string }
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		h.mu.Lock()
		defer h.mu.Unlock()
		w.WriteHeader(h.status)
		first, _, _ := strings.Cut(m.Text, "\n")
		h.got = append(h.got, sent{m.To, first})
	}))
	t.Cleanup(srv.Close)
	h.hook = srv.URL
	cfg := testConfig(srv.URL)
	if mod != nil {
		mod(&cfg)
	}
	store, err := sqlite.OpenAlerts(filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h.store = store
	h.start(cfg, nil)
	return h
}

// noSleep: retries follow at once (no wall-clock waits in tests).
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// start runs a router over the harness's store; setup may replace notifiers.
func (h *alertHarness) start(cfg alerts.Config, setup func(*alerts.Router)) {
	h.t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	h.cfg = cfg
	h.reg = prometheus.NewRegistry()
	assets := testAssetsA
	if h.assets != nil {
		assets = h.assets
	}
	r, err := alerts.NewRouter(cfg, alerts.Deps{Assets: assets, Alarms: h.src, Unack: h.src, Store: h.store, Links: h.store, Auditor: h.audits, Metrics: alerts.NewMetrics(h.reg),
		Log: slog.New(slog.DiscardHandler), Now: h.time, Workers: 2, Tick: time.Hour,
		Backoff: delivery.Backoff{Initial: time.Millisecond, Attempts: 3}, Sleep: noSleep, Sent: &h.told})
	if err != nil {
		h.t.Fatal(err)
	}
	if setup != nil {
		setup(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	r.WaitStarted(h.t)
	h.r = r
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			h.t.Fatal("Run did not return")
		}
	}
	h.t.Cleanup(h.stop)
}

// restart stops the router and starts one with cfg over the same store, as
// after a config edit and a restart.
func (h *alertHarness) restart(cfg alerts.Config) {
	h.t.Helper()
	h.r.Settle(h.t)
	h.stop()
	h.start(cfg, nil)
}

func (h *alertHarness) put(rule, asset, category string, p rules.Priority) rules.Alarm {
	id := rule + ":" + asset
	a := rules.Alarm{ID: id, Rule: rule, Asset: asset, Name: rule, Priority: p, Category: category, Active: true, ActiveSince: h.time(), State: rules.StateUnacked}
	h.src.mu.Lock()
	c := a
	h.src.alarms[id] = &c
	h.src.mu.Unlock()
	return a
}

func (h *alertHarness) fire(rule, asset, category string, p rules.Priority) string {
	a := h.put(rule, asset, category, p)
	h.r.OnEvent(event.Event{Type: event.EventAlarm, Alarm: &a, Transition: &rules.Transition{AlarmID: a.ID, From: rules.StateNormal, To: rules.StateUnacked}})
	return a.ID
}

func (h *alertHarness) transition(id string, to rules.AlarmState, by string) {
	h.src.mu.Lock()
	p := h.src.alarms[id]
	p.Active = to == rules.StateUnacked || to == rules.StateAcked
	p.State = to
	a := *p
	h.src.mu.Unlock()
	h.r.OnEvent(event.Event{Type: event.EventAlarm, Alarm: &a, Transition: &rules.Transition{AlarmID: id, To: to, By: by}})
}

func (h *alertHarness) time() time.Time {
	h.clock.Lock()
	defer h.clock.Unlock()
	return h.now
}

func (h *alertHarness) set(t time.Time) {
	h.clock.Lock()
	h.now = t
	h.clock.Unlock()
}

func (h *alertHarness) advance(d time.Duration) {
	h.set(h.time().Add(d))
	h.r.Tick()
}

// messages waits for n deliveries in all and returns them all.
func (h *alertHarness) messages(n int) []string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		if len(h.got) >= n {
			var out []string
			for _, s := range h.got {
				out = append(out, s.to+": "+s.first)
			}
			h.mu.Unlock()
			return out
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.t.Fatalf("%d messages delivered, want %d: %v", len(h.got), n, h.got)
		}
		time.Sleep(time.Millisecond)
	}
}

// settled waits until nothing is queued or in flight and returns every
// message delivered: what a test asserts as "and nothing more".
func (h *alertHarness) settled() []string {
	h.t.Helper()
	h.r.Settle(h.t)
	return h.messages(0)
}

func (h *alertHarness) stored(id string) *alerts.Alert {
	h.t.Helper()
	a, err := h.store.Alert(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// metric reads one counter of the running router's registry.
func (h *alertHarness) metric(name, label, value string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// sorted prints messages whose order the concurrent workers decide.
func sorted(msgs []string) string {
	msgs = slices.Clone(msgs)
	slices.Sort(msgs)
	return fmt.Sprint(msgs)
}

func alertIDAt(alarm string, at time.Time) string { return alarm + "@" + fmt.Sprint(at.UnixMilli()) }

func TestEscalationUntilAcknowledged(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10*time.Second - time.Millisecond)
	h.advance(time.Millisecond) // the grouping window closes: the on-call engineer hears first
	if got := fmt.Sprint(h.messages(1)); got != "[wang: 【高·报警】pump-fault]" {
		t.Fatalf("first: %s", got)
	}
	h.advance(5*time.Minute - 10*time.Second - time.Millisecond)
	h.advance(time.Millisecond) // exactly when level 1's wait expires
	if got := fmt.Sprint(h.messages(2)[1:]); got != "[boss: 【高·升级报警】pump-fault]" {
		t.Fatalf("escalation: %s", got)
	}
	h.transition(id, rules.StateAcked, "Zhou Jun")
	h.advance(time.Hour - time.Minute) // nobody more while acknowledged, until the acknowledgement lapses at 30 min without progress
	msgs := h.settled()
	if got := sorted(msgs[2:]); got != "[boss: 【高·确认后无进展·重新报警】pump-fault wang: 【高·确认后无进展·重新报警】pump-fault]" {
		t.Fatalf("after the acknowledgement lapsed: %s", got)
	}
	h.transition(id, rules.StateNormal, "engine")
	if got := sorted(h.messages(6)[4:]); got != "[boss: 【高·已恢复】pump-fault wang: 【高·已恢复】pump-fault]" {
		t.Fatalf("resolved: %s", got)
	}
}

func TestRepeatThenStop(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.advance(5 * time.Minute)  // boss
	h.advance(10 * time.Minute) // repeat: on call again
	h.advance(5 * time.Minute)  // boss again
	h.advance(10 * time.Minute) // exhausted
	h.advance(time.Hour)
	got := h.settled()
	slices.Sort(got) // two delivery workers: arrival order may differ
	want := "[boss: 【高·升级报警】pump-fault boss: 【高·升级报警】pump-fault wang: 【高·升级报警】pump-fault wang: 【高·报警】pump-fault]"
	if fmt.Sprint(got) != want {
		t.Fatalf("messages %v\nwant %s", got, want)
	}
}

// A power outage: a flood of downstream alarms becomes one message per
// receiver; the entrapment during it goes out at once; explained alarms
// (inhibited) are not sent at all.
func TestOutageIsOneMessageAndEntrapmentGoesOutAtOnce(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.fire("mains-lost", "b3-panel", "electrical", rules.Critical)
	for i := 0; i < 20; i++ {
		h.fire(fmt.Sprintf("branch-%02d", i), "b3-panel", "electrical", rules.Medium)
	}
	h.fire("pump-low-pressure", "b3-pump", "water_supply", rules.High) // inhibited
	h.fire("lighting-off", "b5-light", "lighting", rules.Low)          // inhibited (site scope)
	h.advance(2 * time.Second)
	h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	if got := fmt.Sprint(h.messages(1)); got != "[wang: 【紧急·报警】elevator-entrapment]" {
		t.Fatalf("entrapment: %s", got)
	}
	h.advance(8 * time.Second)
	if got := fmt.Sprint(h.messages(2)[1:]); got != "[wang: 【报警汇总】21 条报警]" {
		t.Fatalf("grouped: %s", got)
	}
	if n := len(h.settled()); n != 2 {
		t.Fatalf("%d messages for the outage, want 2", n)
	}

	all, _ := h.store.Alerts(context.Background(), 100)
	inhibited := 0
	for _, a := range all {
		if a.State == alerts.Inhibited && strings.HasPrefix(a.Reason, "inhibited by mains-lost:b3-panel") {
			inhibited++
		}
	}
	if inhibited != 2 {
		t.Fatalf("%d inhibited alerts, want 2", inhibited)
	}
}

func link(t testing.TB, raw string) alerts.Link {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	id, _ := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/m/a/"))
	return alerts.Link{AlertID: id, Person: q.Get("by"), Exp: q.Get("exp"), Sig: q.Get("sig")}
}

func TestSignedLinks(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	alertID := alertIDAt(id, t0)
	al := h.stored(alertID)
	l := link(t, h.r.AckLink(al, "wang", h.time()))
	ctx := context.Background()
	tampered := l
	tampered.Sig = l.Sig[:10] + "0000" + l.Sig[14:]
	if _, err := h.r.AckByLink(ctx, tampered, "10.0.0.9"); !errors.Is(err, alerts.ErrBadSignature) {
		t.Fatalf("tampered signature: %v", err)
	}
	other := l
	other.Person = "li"
	if _, err := h.r.AckByLink(ctx, other, "10.0.0.9"); !errors.Is(err, alerts.ErrBadSignature) {
		t.Fatalf("someone else's link: %v", err)
	}
	extended := l
	extended.Exp = fmt.Sprint(t0.Add(48 * time.Hour).Unix())
	if _, err := h.r.AckByLink(ctx, extended, "10.0.0.9"); !errors.Is(err, alerts.ErrBadSignature) {
		t.Fatalf("extended expiry: %v", err)
	}
	h.set(h.time().Add(25 * time.Hour))
	if _, err := h.r.AckByLink(ctx, l, "10.0.0.9"); !errors.Is(err, alerts.ErrLinkExpired) {
		t.Fatalf("expired: %v", err)
	}
	h.set(t0)
	a, err := h.r.AckByLink(ctx, l, "10.0.0.9")
	if err != nil || a.State != alerts.Acked || a.AckedBy != "Wang Li" || fmt.Sprint(h.src.acks) != "[elevator-entrapment:b3-lift-1 by Wang Li]" {
		t.Fatalf("ack by link: %+v %v %v", a, err, h.src.acks)
	}
}

// Issue 10 item 3: opening a link (GET, HEAD, a chat preview, a mail
// scanner) changes nothing; the POST acknowledges once; the same link again
// says it was used; a link lives as long as the policy escalates (30 min
// here), not 24 h; every use is recorded with person and client IP and told
// to the auditor.
func TestAckLinkConfirmsThenAcksOnceAndIsAudited(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	al := h.stored(alertIDAt(id, t0))
	l := link(t, h.r.AckLink(al, "wang", t0))
	if l.Exp != fmt.Sprint(t0.Add(30*time.Minute).Unix()) {
		t.Fatalf("link expires at %s, want the escalation horizon t0+30m (2 levels 5m+10m, 2 rounds)", l.Exp)
	}
	ctx := context.Background()
	for range 3 { // a preview, a scanner, the person
		v, err := h.r.CheckLink(ctx, l)
		if err != nil || v.Alert.ID != al.ID || v.PersonName != "Wang Li" || !v.UsedAt.IsZero() || v.Alert.State != alerts.Firing {
			t.Fatalf("check: %+v %v", v, err)
		}
	}
	if len(h.src.acks) != 0 {
		t.Fatalf("looking at a link acknowledged: %v", h.src.acks)
	}
	h.set(t0.Add(time.Minute))
	a, err := h.r.AckByLink(ctx, l, "203.0.113.7")
	if err != nil || a.State != alerts.Acked {
		t.Fatalf("ack: %+v %v", a, err)
	}
	// Replay, e.g. after the acknowledgement lapsed: refused, nothing acknowledged again.
	h.set(t0.Add(29 * time.Minute))
	a, err = h.r.AckByLink(ctx, l, "198.51.100.1")
	if !errors.Is(err, alerts.ErrLinkUsed) || a == nil || a.AckedBy != "Wang Li" {
		t.Fatalf("second use: %+v %v", a, err)
	}
	if len(h.src.acks) != 1 {
		t.Fatalf("acks %v", h.src.acks)
	}
	// The alarm's note (on every screen, the wall's too) says how, not
	// from where: the IP is in the attempt and the audit log only.
	if n := fmt.Sprint(h.src.notes); strings.Contains(n, "203.0.113.7") || !strings.Contains(n, "message link") {
		t.Fatalf("the alarm's acknowledgement note: %s", n)
	}
	v, err := h.r.CheckLink(ctx, l)
	if err != nil || !v.UsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("check after use: %+v %v", v, err)
	}
	atts, _ := h.store.Attempts(ctx, 50)
	var rows []string
	for _, at := range atts {
		if at.Kind == "link_ack" {
			rows = append(rows, at.Person+" "+at.ClientIP+" "+at.Result)
		}
	}
	if fmt.Sprint(rows) != "[wang 198.51.100.1 link_used wang 203.0.113.7 acked]" {
		t.Fatalf("link_ack rows %v", rows)
	}
	h.audits.mu.Lock()
	defer h.audits.mu.Unlock()
	if len(h.audits.e) != 2 || h.audits.e[0].ClientIP != "203.0.113.7" || h.audits.e[0].Name != "Wang Li" || h.audits.e[0].Result != "acked" || h.audits.e[1].Result != "link_used" {
		t.Fatalf("audit %+v", h.audits.e)
	}
}

func TestQuietHoursAndMaintenance(t *testing.T) {
	h := newAlertHarness(t, func(c *alerts.Config) {
		c.QuietHours = []alerts.QuietHours{{From: "22:00", To: "07:30", Priorities: []rules.Priority{rules.Low}, TimeZone: "Asia/Shanghai"}}
		c.Maintenance = []alerts.Maintenance{{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Buildings: []string{"Building 5"}, Reason: "lighting contractor"}}
	})
	h.fire("lamp-out", "b3-panel", "lighting_b3", rules.Low)   // 22:00 in Shanghai: waits
	h.fire("lighting-off-b5", "b5-light", "other", rules.High) // Building 5 in maintenance: not sent
	h.advance(10 * time.Second)
	if n := len(h.settled()); n != 0 {
		t.Fatalf("%d messages during quiet hours / maintenance", n)
	}
	h.advance(9*time.Hour + 30*time.Minute - 10*time.Second) // 07:30 Shanghai
	if got := fmt.Sprint(h.messages(1)); !strings.Contains(got, "lamp-out") {
		t.Fatalf("after quiet hours: %s", got)
	}
}

func TestRotationAndOverride(t *testing.T) {
	team := alerts.Team{ID: "e", Rotation: alerts.Rotation{Members: []string{"a", "b", "c"}, Start: t0, Shift: 24 * time.Hour, TimeZone: "Asia/Shanghai"},
		Overrides: []alerts.Override{{Person: "z", From: t0.Add(50 * time.Hour), To: t0.Add(52 * time.Hour)}}}
	for _, c := range []struct {
		at    time.Duration
		who   string
		until time.Duration
	}{
		{0, "a", 24 * time.Hour}, {23 * time.Hour, "a", 24 * time.Hour}, {24 * time.Hour, "b", 48 * time.Hour},
		{49 * time.Hour, "c", 72 * time.Hour}, {51 * time.Hour, "z", 52 * time.Hour}, {72 * time.Hour, "a", 96 * time.Hour},
		{-time.Hour, "c", 0},
	} {
		who, until := team.OnCall(t0.Add(c.at))
		if who != c.who || !until.Equal(t0.Add(c.until)) {
			t.Errorf("at %s: %s until %s, want %s until %s", c.at, who, until.Sub(t0), c.who, c.until)
		}
	}
}

// A receiver that answers 500 is retried; one that answers 400 is not, and
// every attempt is recorded.
func TestDeliveryAttemptsRecorded(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.status = 500
	h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	h.settled()
	atts, _ := h.store.Attempts(context.Background(), 10)
	var results []string
	for i := len(atts) - 1; i >= 0; i-- {
		results = append(results, fmt.Sprintf("%d:%s", atts[i].Try, atts[i].Result))
	}
	if fmt.Sprint(results) != "[1:will_retry 2:will_retry 3:failed]" {
		t.Fatalf("attempts %v", results)
	}
	if h.metric("gateway_alert_delivery_attempts_total", "result", "will_retry") != 2 || h.metric("gateway_alert_delivery_attempts_total", "result", "failed") != 1 {
		t.Fatal("attempts not counted")
	}
	h.mu.Lock()
	h.status = 400
	h.got = nil
	h.mu.Unlock()
	h.fire("elevator-entrapment", "b3-lift-1#2", "elevator", rules.Critical)
	if n := len(h.settled()); n != 1 {
		t.Fatalf("a 400 was retried: %d requests", n)
	}
}

// Escalation state survives a restart: a new router on the same database
// escalates at the same time the old one would have.
func TestEscalationSurvivesRestart(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.messages(1)
	h.restart(h.cfg) // as after a crash
	h.advance(5*time.Minute - 10*time.Second - time.Millisecond)
	if n := len(h.settled()); n != 1 {
		t.Fatalf("escalated early after the restart: %d messages", n)
	}
	h.advance(time.Millisecond)
	if got := h.messages(2); got[1] != "boss: 【高·升级报警】pump-fault" {
		t.Fatalf("after restart: %v", got)
	}
}

// A contact that refuses the message falls back to the person's next one.
func TestFallbackToTheNextContact(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400); io.WriteString(w, "no such robot") }))
	defer bad.Close()
	h := newAlertHarness(t, func(c *alerts.Config) {
		c.Channels["broken"] = alerts.ChannelConfig{Type: alerts.WeCom, URL: bad.URL}
		c.People[0].Contacts = []alerts.Contact{{Channel: "broken"}, {Channel: "hook"}}
	})
	h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	if got := fmt.Sprint(h.messages(1)); got != "[wang: 【紧急·报警】elevator-entrapment]" {
		t.Fatalf("fallback: %s", got)
	}
	h.settled()
	atts, _ := h.store.Attempts(context.Background(), 10)
	if len(atts) != 2 || atts[1].Channel != "broken" || atts[1].Result != "failed" || atts[0].Channel != "hook" || atts[0].Result != "sent" {
		t.Fatalf("attempts %+v %+v", atts[0], atts[1])
	}
}

// Per-person rate limit: an alert soon after a message waits for the
// interval and goes out grouped with what else came.
func TestRateLimitGroupsInsteadOfFlooding(t *testing.T) {
	h := newAlertHarness(t, func(c *alerts.Config) { c.MinInterval = time.Minute })
	h.fire("a", "b3-pump", "x", rules.High)
	h.advance(10 * time.Second)
	h.messages(1)
	h.fire("b", "b3-pump", "x", rules.High)
	h.advance(10 * time.Second) // its window is over, but the last message was 10 s ago
	h.fire("c", "b3-pump", "x", rules.High)
	h.advance(49 * time.Second) // t0+69 s: the first message left at t0+10 s
	if n := len(h.settled()); n != 1 {
		t.Fatalf("%d messages within the minute", n)
	}
	h.advance(time.Second)
	if got := h.messages(2); got[1] != "wang: 【报警汇总】2 条报警" {
		t.Fatalf("after the interval: %v", got)
	}
}

func TestGroupedMessageListsTheMostUrgentTwenty(t *testing.T) {
	h := newAlertHarness(t, nil)
	var as []*alerts.Alert
	for i := 0; i < 30; i++ {
		p := rules.Medium
		if i == 29 {
			p = rules.Critical
		}
		as = append(as, &alerts.Alert{ID: fmt.Sprintf("a%02d", i), Name: fmt.Sprintf("alarm %02d", i), Priority: p, Location: "B3"})
	}
	_, text := h.r.Render("wang", "alert", as, t0)
	lines := strings.Split(text, "\n")
	if lines[0] != "【报警汇总】30 条报警" || !strings.HasPrefix(lines[1], "1. 【紧急】alarm 29") ||
		!strings.Contains(text, "……另有 10 条：https://gw.yushan.example/api/v1/alarms?state=active") ||
		!strings.Contains(text, "... and 10 more: https://gw.yushan.example/api/v1/alarms?state=active") {
		t.Fatalf("grouped text:\n%s", text)
	}
	if n := strings.Count(text, "/m/a/"); n != 40 {
		t.Fatalf("%d acknowledgement links, want 20 in each language", n)
	}
}

// A plain message (the daily review, the monthly report) reaches a person
// named by id, as work orders name people, or as person:<id>, and a team's
// person on duty; a name nobody has is an error.
func TestSendPlainToPersonOrTeam(t *testing.T) {
	h := newAlertHarness(t, nil)
	defer h.stop()
	for _, to := range []string{"boss", "person:boss", "team:engineering"} {
		if err := h.r.SendPlain(context.Background(), to, "每日工单盘点", "每日工单盘点 2026-11-02\n#1"); err != nil {
			t.Fatalf("to %s: %v", to, err)
		}
	}
	if err := h.r.SendPlainFile(context.Background(), "boss", "月报", "月报 2026-11", "monthly-report-2026-11.xlsx", []byte("PK")); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	got := fmt.Sprint(h.got)
	h.mu.Unlock()
	if want := fmt.Sprint([]sent{{"boss", "每日工单盘点 2026-11-02"}, {"boss", "每日工单盘点 2026-11-02"}, {"wang", "每日工单盘点 2026-11-02"}, {"boss", "月报 2026-11"}}); got != want {
		t.Fatalf("delivered %s, want %s", got, want)
	}
	if err := h.r.SendPlain(context.Background(), "nobody", "x", "x"); !errors.Is(err, alerts.ErrNoRecipient) {
		t.Fatalf("to nobody: %v", err)
	}
}

// Each message sent is told to the Sent observer (replication to the
// center) once recorded, with its id and without the address; a failed
// attempt is not.
func TestSentObserved(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.messages(1)
	deadline := time.Now().Add(5 * time.Second)
	for len(h.told.list()) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	told := h.told.list()
	if len(told) != 1 || told[0].ID == 0 || told[0].Person != "wang" || told[0].Kind != "alert" || told[0].Result != "sent" || told[0].Address != "" {
		t.Fatalf("told %+v", told)
	}
	stored, err := h.store.Attempts(context.Background(), 10)
	if err != nil || len(stored) != 1 || stored[0].ID != told[0].ID {
		t.Fatalf("stored %+v %v: the observer is told the attempt stored", stored, err)
	}
	h.mu.Lock()
	h.status = 500 // the receiver fails: attempts recorded, nothing told
	h.mu.Unlock()
	h.fire("leak", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if as, _ := h.store.Attempts(context.Background(), 10); len(as) > 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if as, _ := h.store.Attempts(context.Background(), 10); len(as) < 2 || as[0].Result == "sent" || len(h.told.list()) != 1 {
		t.Fatalf("after a failure: attempts %+v, told %d", as, len(h.told.list()))
	}
}
