package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// The platforms' own frequency-limit answers, as they document and send them.
var throttleAnswers = map[string]string{
	"dingtalk": `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`,
	"wecom":    `{"errcode":45009,"errmsg":"api freq out of limit"}`,
	"feishu":   `{"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"}`,
}

var okAnswers = map[string]string{"dingtalk": `{"errcode":0,"errmsg":"ok"}`, "wecom": `{"errcode":0,"errmsg":"ok"}`, "feishu": `{"code":0,"msg":"success"}`}

// fakeRobot is a local group robot that enforces its platform's limit the
// way the platform does: more than limit messages in a sliding minute (by
// the test's clock) and it answers with its throttling reply, and keeps
// doing so for the penalty.
type fakeRobot struct {
	platform string
	limit    int
	penalty  time.Duration
	clock    func() time.Time

	mu        sync.Mutex
	at        []time.Time // accepted messages
	texts     []string
	mentions  [][]string
	until     time.Time // throttling until
	force     bool      // throttles every message (as when other senders used the budget up)
	throttled int       // throttling answers sent
	calls     []time.Time
}

func newFakeRobot(t *testing.T, platform string, limit int, penalty time.Duration, clock func() time.Time) (*fakeRobot, string) {
	f := &fakeRobot{platform: platform, limit: limit, penalty: penalty, clock: clock}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv.URL + "/robot/send?access_token=0a1b2c3d4e5f60718293a4b5c6d7e8f9"
}

func (f *fakeRobot) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body struct {
		Markdown struct{ Text, Content string }
		At       struct{ AtMobiles []string }
	}
	json.Unmarshal(b, &body)
	now := f.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, now)
	n := 0
	for _, t := range f.at {
		if now.Sub(t) < time.Minute {
			n++
		}
	}
	if f.force || now.Before(f.until) || n+1 > f.limit {
		if !now.Before(f.until) {
			f.until = now.Add(f.penalty)
		}
		f.throttled++
		io.WriteString(w, throttleAnswers[f.platform])
		return
	}
	f.at = append(f.at, now)
	f.texts = append(f.texts, body.Markdown.Text+body.Markdown.Content)
	f.mentions = append(f.mentions, body.At.AtMobiles)
	io.WriteString(w, okAnswers[f.platform])
}

// maxInMinute is the most messages it accepted in any sliding minute.
func (f *fakeRobot) maxInMinute() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	most := 0
	for i, t := range f.at {
		n := 0
		for _, u := range f.at[i:] {
			if u.Sub(t) < time.Minute {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

func (f *fakeRobot) set(force bool) { f.mu.Lock(); f.force = force; f.mu.Unlock() }

func (f *fakeRobot) count() (accepted, throttled, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.at), f.throttled, len(f.calls)
}

// fakeSMS is a local SMS gateway.
type fakeSMS struct {
	clock func() time.Time
	mu    sync.Mutex
	got   []smsSent
}

type smsSent struct {
	at          time.Time
	phone, text string
}

func newFakeSMS(t *testing.T, clock func() time.Time) (*fakeSMS, alerts.ChannelConfig) {
	f := &fakeSMS{clock: clock}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Phone, Text string }
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		f.mu.Lock()
		f.got = append(f.got, smsSent{f.clock(), m.Phone, m.Text})
		f.mu.Unlock()
		io.WriteString(w, `{"code":"OK"}`)
	}))
	t.Cleanup(srv.Close)
	return f, alerts.ChannelConfig{Type: alerts.SMS, URL: srv.URL + "/sms", Body: `{"phone":"{{.Address}}","text":"{{.TextJSON}}"}`}
}

func (f *fakeSMS) sent() []smsSent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// tenBuildings: per building a pump room, a panel, lighting and a lift.
func tenBuildings() []collectors.Asset {
	var out []collectors.Asset
	for b := range 10 {
		bl := fmt.Sprintf("%d号楼", b+1)
		for _, k := range []string{"pump", "panel", "light", "lift"} {
			out = append(out, collectors.Asset{ID: fmt.Sprintf("b%d-%s", b+1, k), Kind: collectors.AssetKind(k), Building: bl, Floor: "B1"})
		}
	}
	return out
}

// outageSite: twenty engineers in ten building teams and a manager, half
// on a DingTalk group robot, half on a WeCom group robot, SMS next.
func outageSite(dt, wx string, sms alerts.ChannelConfig) func(*alerts.Config) {
	return func(c *alerts.Config) {
		c.Channels = map[string]alerts.ChannelConfig{
			"dingtalk": {Type: alerts.DingTalk, URL: dt, Endpoint: "duty-dingtalk"},
			"wecom":    {Type: alerts.WeCom, URL: wx, Endpoint: "ops-wecom"},
			"sms":      sms,
		}
		c.People, c.Teams = nil, nil
		for i := range 20 {
			robot := "dingtalk"
			if i%2 == 1 {
				robot = "wecom"
			}
			phone := fmt.Sprintf("1380000%04d", i)
			c.People = append(c.People, alerts.Person{ID: fmt.Sprintf("e%02d", i), Name: fmt.Sprintf("工程师%02d", i),
				Contacts: []alerts.Contact{{Channel: robot, Address: phone}, {Channel: "sms", Address: phone}}})
		}
		c.People = append(c.People, alerts.Person{ID: "boss", Name: "工程部经理", Contacts: []alerts.Contact{{Channel: "dingtalk", Address: "13900000000"}, {Channel: "sms", Address: "13900000000"}}})
		for b := range 10 {
			c.Teams = append(c.Teams, alerts.Team{ID: fmt.Sprintf("b%d", b+1), Name: fmt.Sprintf("%d号楼工程", b+1),
				Rotation: alerts.Rotation{Members: []string{fmt.Sprintf("e%02d", 2*b+b%2), fmt.Sprintf("e%02d", 2*b+1-b%2)}, Start: t0.Add(-2 * time.Hour), Shift: 12 * time.Hour, TimeZone: "Asia/Shanghai"}})
		}
		// Each category goes to two building teams, then the manager.
		c.Policies, c.Routes = nil, []alerts.Route{{Rules: []string{"elevator-entrapment"}, Policy: "lift", Immediate: true}}
		for i, cat := range []string{"water_supply", "power", "lighting", "lift", "leak"} {
			c.Policies = append(c.Policies, alerts.Policy{ID: cat, Levels: []alerts.Level{
				{Notify: []string{fmt.Sprintf("team:b%d", 2*i+1), fmt.Sprintf("team:b%d", 2*i+2)}, Wait: 5 * time.Minute},
				{Notify: []string{"person:boss"}, Wait: 10 * time.Minute}}})
			c.Routes = append(c.Routes, alerts.Route{Categories: []string{cat}, Policy: cat})
		}
		c.Inhibit, c.Roles = nil, nil
	}
}

// Tests that must exist: an outage across ten buildings, 1,000 alarms in
// 60 s, twenty people and ten teams sharing two robots. No robot ever gets
// more than its 20 a minute, every critical alarm reaches a person within
// 60 s (by SMS when the robots' budget cannot carry it in time), and the
// entrapment goes out as its own message within 5 s.
func TestOutageAcrossTenBuildingsStaysInsideRobotLimits(t *testing.T) {
	var h *alertHarness
	clock := func() time.Time { return h.time() }
	dt, dtURL := newFakeRobot(t, "dingtalk", 20, 10*time.Minute, clock)
	wx, wxURL := newFakeRobot(t, "wecom", 20, time.Minute, clock)
	sms, smsCfg := newFakeSMS(t, clock)
	h = newSiteHarness(t, tenBuildings(), outageSite(dtURL, wxURL, smsCfg))

	cats := []string{"water_supply", "power", "lighting", "lift", "leak"}
	kinds := []string{"pump", "panel", "light", "lift", "pump"}
	critical := map[string]time.Time{} // alert id → activation
	var entrapment string
	var entrapmentAt time.Time
	fired := 0
	for step := 0; step < 120; step++ { // 60 s in half seconds
		for range 1000 / 120 {
			i := fired
			fired++
			b := i % 10
			c := (i / 10) % 5
			p := []rules.Priority{rules.Medium, rules.Low, rules.High, rules.Medium}[i%4]
			if i%50 == 7 {
				p = rules.Critical // 20 critical alarms
			}
			id := h.fire(fmt.Sprintf("r%04d", i), fmt.Sprintf("b%d-%s", b+1, kinds[c]), cats[c], p)
			if p == rules.Critical {
				critical[alertIDAt(id, h.time())] = h.time()
			}
		}
		if step == 60 { // 30 s in: people trapped in building 3's lift
			id := h.fire("elevator-entrapment", "b3-lift", "lift", rules.Critical)
			entrapment, entrapmentAt = alertIDAt(id, h.time()), h.time()
			critical[entrapment] = h.time()
		}
		h.settled()
		h.advance(500 * time.Millisecond)
	}
	for fired < 1000 {
		h.fire(fmt.Sprintf("r%04d", fired), "b1-pump", "water_supply", rules.Medium)
		fired++
	}
	for range 12 * 60 / 5 { // twelve more minutes: escalations to the manager, digests
		h.settled()
		h.advance(5 * time.Second)
	}
	h.settled()

	for _, f := range []*fakeRobot{dt, wx} {
		accepted, throttled, _ := f.count()
		if most := f.maxInMinute(); most > 20 || throttled > 0 {
			t.Errorf("%s robot: %d messages in one minute, %d throttled answers", f.platform, most, throttled)
		}
		if accepted < 20 {
			t.Errorf("%s robot used only %d messages", f.platform, accepted)
		}
	}
	atts, err := h.store.Attempts(context.Background(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	reached := map[string]time.Time{}
	var own bool
	for _, at := range atts {
		if at.Result != "sent" {
			continue
		}
		for _, a := range at.Alerts {
			if r, ok := reached[a]; !ok || at.At.Before(r) {
				reached[a] = at.At
			}
		}
		if len(at.Alerts) == 1 && at.Alerts[0] == entrapment && at.Kind == "alert" && at.At.Sub(entrapmentAt) <= 5*time.Second {
			own = true
		}
	}
	for id, since := range critical {
		if r, ok := reached[id]; !ok || r.Sub(since) > time.Minute {
			t.Errorf("critical %s reached nobody within 60 s (reached %v after)", id, r.Sub(since))
		}
	}
	if !own {
		t.Errorf("the entrapment did not go out as its own message within 5 s")
	}
	merged := h.metric("gateway_alert_endpoint_messages_total", "outcome", "merged")
	if merged == 0 || h.metric("gateway_alert_messages_dropped_total", "reason", "queue_full") != 0 {
		t.Errorf("merged %v; dropped %v", merged, h.metric("gateway_alert_messages_dropped_total", "reason", "queue_full"))
	}
	// Digests: Chinese first, counts by priority and building.
	var digest string
	for _, txt := range dt.texts {
		if strings.HasPrefix(txt, "【报警汇总】") && strings.Contains(txt, "报警泛滥") {
			digest = txt
			break
		}
	}
	if digest == "" || !strings.Contains(digest, "按优先级：") || !strings.Contains(digest, "按楼栋：") || !strings.Contains(digest, "[ALARM DIGEST]") {
		t.Errorf("no flood digest on the DingTalk robot; first texts: %q", dt.texts[:min(3, len(dt.texts))])
	}
	t.Logf("dingtalk %d, wecom %d accepted; %d SMS; merged %v; fallback %v", len(dt.at), len(wx.at), len(sms.sent()), merged,
		h.metric("gateway_alert_endpoint_messages_total", "outcome", "fallback"))
}

// Tests that must exist: a robot that starts throttling mid-incident
// (another system used its budget up) is paused for DingTalk's 10 minutes;
// meanwhile critical and high messages go by SMS, the rest wait and go to
// the robot when the pause ends. Every attempt is recorded.
func TestThrottledRobotIsPausedAndCriticalGoesBySMS(t *testing.T) {
	var h *alertHarness
	clock := func() time.Time { return h.time() }
	dt, dtURL := newFakeRobot(t, "dingtalk", 20, 10*time.Minute, clock)
	sms, smsCfg := newFakeSMS(t, clock)
	h = newAlertHarness(t, func(c *alerts.Config) {
		c.Channels = map[string]alerts.ChannelConfig{"dingtalk": {Type: alerts.DingTalk, URL: dtURL, Endpoint: "duty-dingtalk"}, "sms": smsCfg}
		for i := range c.People {
			c.People[i].Contacts = []alerts.Contact{{Channel: "dingtalk", Address: "1380000000" + fmt.Sprint(i)}, {Channel: "sms", Address: "1380000000" + fmt.Sprint(i)}}
		}
		c.Policies[0].Levels[0].Wait = time.Hour // no escalation within the test
	})
	h.fire("pump-fault", "b3-pump", "water_supply", rules.Medium)
	h.advance(10 * time.Second)
	h.settled()
	if n, _, _ := dt.count(); n != 1 {
		t.Fatalf("robot got %d messages before throttling", n)
	}
	dt.set(true) // mid-incident the robot answers 130101
	h.advance(time.Minute)
	crit := h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	h.settled() // throttled: the critical goes by SMS at once
	got := sms.sent()
	if len(got) != 1 || got[0].phone != "13800000000" || !strings.HasPrefix(got[0].text, "【紧急·报警】elevator-entrapment") || !got[0].at.Equal(t0.Add(70*time.Second)) {
		t.Fatalf("SMS during the pause: %+v", got)
	}
	dt.set(false)
	_, throttled, calls := dt.count()
	// During the pause: a medium alarm waits, a high one goes by SMS; the
	// robot is not called at all.
	h.fire("lights-out", "b5-light", "lighting", rules.Medium)
	h.advance(10 * time.Second)
	h.fire("pump-dry", "b3-pump#2", "water_supply", rules.High)
	for range 8 * 60 / 10 {
		h.advance(10 * time.Second)
		h.settled()
	}
	if _, th, c := dt.count(); c != calls || th != throttled {
		t.Fatalf("the robot was called during its penalty: %d calls (was %d)", c, calls)
	}
	if got := sms.sent(); len(got) != 2 || !strings.HasPrefix(got[1].text, "【高·报警】pump-dry") {
		t.Fatalf("SMS: %+v", got)
	}
	eps := h.r.Endpoints()
	var dte alerts.EndpointStatus
	for _, e := range eps {
		if e.Name == "duty-dingtalk" {
			dte = e
		}
	}
	if dte.State != "throttled" || !dte.Since.Equal(t0.Add(70*time.Second)) || !dte.PausedUntil.Equal(t0.Add(70*time.Second+10*time.Minute)) ||
		len(dte.Diverted) != 2 || dte.Diverted[0].To != "sms" || dte.Counts["throttled"] != 1 || dte.Queued != 1 ||
		!strings.Contains(dte.Reason, "130101") {
		t.Fatalf("endpoint status %+v", dte)
	}
	if v := dte.ForViewer(); v.Diverted[0].Person != "" || v.LastError != "" || v.Reason != "throttled" {
		t.Fatalf("viewer sees %+v", v)
	}
	h.advance(2 * time.Minute) // the penalty is over: the medium alarm goes to the robot
	h.settled()
	if n, _, _ := dt.count(); n != 2 || !strings.Contains(dt.texts[1], "lights-out") {
		t.Fatalf("after the pause the robot got %d: %q", n, dt.texts)
	}
	atts, _ := h.store.Attempts(context.Background(), 100)
	var results []string
	for _, a := range atts {
		if a.Endpoint == "duty-dingtalk" && (a.Result == "throttled" || a.Result == "diverted") {
			results = append(results, a.Result+":"+strings.Join(a.Alerts, ","))
		}
	}
	slices.Sort(results)
	if want := fmt.Sprint([]string{"diverted:" + alertIDAt("elevator-entrapment:b3-lift-1", t0.Add(70*time.Second)), "diverted:" + alertIDAt("pump-dry:b3-pump#2", t0.Add(80*time.Second)),
		"throttled:" + alertIDAt("elevator-entrapment:b3-lift-1", t0.Add(70*time.Second))}); fmt.Sprint(results) != want {
		t.Fatalf("attempts %v\nwant %v", results, want)
	}
	_ = crit
	if h.metric("gateway_alert_endpoint_messages_total", "outcome", "throttled") != 1 || h.metric("gateway_alert_endpoint_messages_total", "outcome", "fallback") != 2 {
		t.Fatal("not counted per endpoint")
	}
}

// Tests that must exist: an acknowledged alarm nobody followed up returns
// to unacknowledged — in the engine too — after the policy's ack_expiry and
// is paged again on every contact; progress (the work order accepted)
// restarts the clock.
func TestForgottenAcknowledgementRepages(t *testing.T) {
	var h *alertHarness
	sms, smsCfg := newFakeSMS(t, func() time.Time { return h.time() })
	h = newAlertHarness(t, func(c *alerts.Config) {
		c.Channels["sms"] = smsCfg
		c.People[0].Contacts = []alerts.Contact{{Channel: "hook"}, {Channel: "sms", Address: "13800000001"}}
	})
	id := h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	if got := h.settled(); fmt.Sprint(got) != "[wang: 【紧急·报警】elevator-entrapment]" {
		t.Fatalf("first: %v", got)
	}
	h.transition(id, rules.StateAcked, "Wang Li")
	h.advance(20 * time.Minute)
	wo := workorder.WorkOrder{ID: 7, AlarmID: id}
	h.r.OnEvent(event.Event{Type: event.EventWorkOrder, WorkOrder: &wo, Change: &workorder.HistoryEntry{WorkOrder: 7, To: workorder.Accepted}})
	h.advance(15 * time.Minute) // 35 min after the acknowledgement, 15 after the progress
	if got := h.settled(); len(got) != 1 || len(sms.sent()) != 0 {
		t.Fatalf("paged again despite progress: %v", got)
	}
	h.advance(15 * time.Minute) // 30 min without progress
	got := h.settled()
	if fmt.Sprint(got[1:]) != "[wang: 【紧急·确认后无进展·重新报警】elevator-entrapment]" {
		t.Fatalf("re-page: %v", got)
	}
	if s := sms.sent(); len(s) != 1 || !strings.HasPrefix(s[0].text, "【紧急·确认后无进展·重新报警】") {
		t.Fatalf("re-page is on every contact: SMS %+v", s)
	}
	if fmt.Sprint(h.src.unacks) != "["+id+" by alerts]" {
		t.Fatalf("engine: %v", h.src.unacks)
	}
	a := h.stored(alertIDAt(id, t0))
	if a.State != alerts.Firing || a.Level != 0 || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "no progress") {
		t.Fatalf("alert %+v", a)
	}
}

// Tests that must exist: acknowledging cancels a scheduled SMS step (one
// waiting for the SMS account's budget), and nothing more goes out.
func TestAcknowledgingCancelsAScheduledSMS(t *testing.T) {
	var h *alertHarness
	sms, smsCfg := newFakeSMS(t, func() time.Time { return h.time() })
	smsCfg.Limit = alerts.Limit{PerMinute: 1}
	h = newAlertHarness(t, func(c *alerts.Config) {
		c.Channels["sms"] = smsCfg
		c.People[0].Contacts = []alerts.Contact{{Channel: "sms", Address: "13800000001"}}
	})
	h.fire("elevator-entrapment", "b3-lift-1", "elevator", rules.Critical)
	second := h.fire("elevator-entrapment", "b3-lift-2", "elevator", rules.Critical)
	h.settled()
	if s := sms.sent(); len(s) != 1 {
		t.Fatalf("SMS %+v", s)
	}
	h.transition(second, rules.StateAcked, "Wang Li")
	for range 6 {
		h.advance(time.Minute)
		h.settled()
	}
	if s := sms.sent(); len(s) != 1 {
		t.Fatalf("the acknowledged alarm's SMS still went: %+v", s)
	}
	if h.metric("gateway_alert_endpoint_messages_total", "outcome", "cancelled") != 1 {
		t.Fatal("cancellation not counted")
	}
}

// In a flood the waiting messages for one person merge into one digest
// (Chinese first, counts by priority and building), while a notice of an
// urgent playbook (an entrapment) goes out on its own, first.
func TestFloodDigestButUrgentPlaybookAlone(t *testing.T) {
	h := newAlertHarness(t, func(c *alerts.Config) {
		ch := c.Channels["hook"]
		ch.Limit = alerts.Limit{PerMinute: 2}
		c.Channels["hook"] = ch
		c.UrgentPlaybooks = []string{"entrapment"}
		c.Inhibit = nil
	})
	h.r.OnEvent(event.Event{Type: event.EventIncident, Incident: &playbook.Incident{ID: 1, Playbook: "entrapment", Status: "open"}})
	h.r.OnEvent(event.Event{Type: event.EventIncident, Incident: &playbook.Incident{ID: 2, Playbook: "storm", Status: "open"}})
	for i := range 12 {
		h.fire(fmt.Sprintf("leak-%02d", i), []string{"b3-pump", "b5-light"}[i%2], "water_supply", []rules.Priority{rules.Medium, rules.High}[i%2])
	}
	storm := func(text string) {
		h.r.OnEvent(event.Event{Type: event.EventNotify, Notify: &playbook.Notification{Roles: []string{"duty_engineer"}, Text: text, Incident: 2}})
	}
	storm("暴雨预案：关闭地库挡水板 storm: close the flood barriers") // spends the budget
	storm("暴雨预案：检查地下室 storm: check basements")            // waits
	h.r.OnEvent(event.Event{Type: event.EventNotify, Notify: &playbook.Notification{Roles: []string{"duty_engineer"}, Text: "电梯困人：立即前往 3号楼 trapped: go to building 3", Incident: 1}})
	h.settled()
	h.advance(10 * time.Second) // the grouping window closes: the alarms wait too
	h.settled()
	h.advance(50 * time.Second) // the next message of the budget: the entrapment, alone, ahead of the rest
	h.settled()
	h.advance(time.Minute) // the next: everything else, merged
	got := h.settled()
	if fmt.Sprint(got) != "[wang: 【突发事件 Incident】暴雨预案：关闭地库挡水板 storm: close the flood barriers wang: 【突发事件 Incident】电梯困人：立即前往 3号楼 trapped: go to building 3 wang: 【报警汇总】12 条报警，1 条预案通知]" {
		t.Fatalf("messages: %v", got)
	}
	if n := h.metric("gateway_alert_endpoint_messages_total", "outcome", "merged"); n != 2 {
		t.Fatalf("merged %v", n)
	}
	eps := h.r.Endpoints()
	if len(eps) != 1 || !eps[0].FloodActive || eps[0].FloodAlarms != 12 || eps[0].Counts["sent"] != 3 {
		t.Fatalf("endpoints %+v", eps)
	}
}

// The digest's text: Chinese first, why it was merged, counts by priority
// and by building, most urgent first, the rest summarised with a link.
func TestDigestText(t *testing.T) {
	var as []*alerts.Alert
	for i := range 14 {
		p := []rules.Priority{rules.Low, rules.Medium, rules.High}[i%3]
		if i == 13 {
			p = rules.Critical
		}
		as = append(as, &alerts.Alert{ID: fmt.Sprintf("a%02d", i), Name: fmt.Sprintf("alarm %02d", i), NameZH: fmt.Sprintf("报警%02d", i), Priority: p,
			Building: []string{"3号楼", "5号楼"}[i%2], Location: []string{"3号楼", "5号楼"}[i%2], Since: t0, State: alerts.Firing})
	}
	h := newAlertHarness(t, nil)
	_, text := h.r.RenderDigest("wang", as, t0)
	lines := strings.Split(text, "\n")
	want := []string{"【报警汇总】14 条报警", "hook 发送额度不足，消息已合并", "按优先级：紧急 1｜高 4｜中 4｜低 5", "按楼栋：3号楼 7｜5号楼 7"}
	if fmt.Sprint(lines[:4]) != fmt.Sprint(want) || !strings.HasPrefix(lines[4], "1. 【紧急】报警13 — 5号楼（14:00:00起） 确认：https://gw.yushan.example/m/a/a13?") ||
		!strings.HasPrefix(lines[5], "2. 【高】报警02") || !strings.Contains(text, "……另有 4 条，全部报警：https://gw.yushan.example/console") ||
		!strings.Contains(text, "[ALARM DIGEST] 14 alarms") || strings.Index(text, "[ALARM DIGEST]") < strings.Index(text, "【报警汇总】") {
		t.Fatalf("digest:\n%s", text)
	}
}

// Other features' messages (a daily review) go through the same budget.
func TestAnnounceSharesTheBudget(t *testing.T) {
	h := newAlertHarness(t, func(c *alerts.Config) {
		ch := c.Channels["hook"]
		ch.Limit = alerts.Limit{PerMinute: 1}
		c.Channels["hook"] = ch
	})
	if err := h.r.Announce([]string{"team:nobody"}, "x", "x", false); err == nil {
		t.Fatal("an unknown team was accepted")
	}
	for range 2 {
		if err := h.r.Announce([]string{"team:engineering"}, "每日报警回顾 daily review", "【每日回顾】昨日报警 12 条", false); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.settled(); fmt.Sprint(got) != "[wang: 【每日回顾】昨日报警 12 条]" {
		t.Fatalf("within the budget: %v", got)
	}
	h.advance(time.Minute)
	if got := h.settled(); len(got) != 2 {
		t.Fatalf("after a minute: %v", got)
	}
}

// Between ticks the router wakes when a budget allows the next message:
// with an hour between ticks, three messages through a 5-a-second budget
// (one at once, then four a second) all go out within the deadline.
func TestBudgetWakesBetweenTicks(t *testing.T) {
	h := newAlertHarness(t, nil)
	h.stop()
	cfg := h.cfg
	ch := cfg.Channels["hook"]
	ch.Limit = alerts.Limit{PerSecond: 5}
	cfg.Channels = map[string]alerts.ChannelConfig{"hook": ch}
	r, err := alerts.NewRouter(cfg, alerts.Deps{Assets: testAssetsA, Alarms: h.src, Store: h.store, Links: h.store, Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	r.WaitStarted(t)
	h.r = r
	for i := range 3 {
		if err := r.Announce([]string{"person:wang"}, "x", fmt.Sprintf("消息 %d", i), true); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.messages(3); fmt.Sprint(got) != "[wang: 消息 0 wang: 消息 1 wang: 消息 2]" {
		t.Fatalf("%v", got)
	}
}

// A group chat is read by everyone in it (and forwarded): a person's signed
// phone link there would let anyone act in that person's name (accept a work
// order, say they are on site, complete steps). Group robots get the
// console's address instead; a personal channel (SMS) keeps the link.
func TestGroupChatsCarryNoPersonalLinks(t *testing.T) {
	var h *alertHarness
	clock := func() time.Time { return h.time() }
	dt, dtURL := newFakeRobot(t, "dingtalk", 20, 10*time.Minute, clock)
	sms, smsCfg := newFakeSMS(t, clock)
	h = newAlertHarness(t, func(c *alerts.Config) {
		c.Channels = map[string]alerts.ChannelConfig{"dingtalk": {Type: alerts.DingTalk, URL: dtURL, Endpoint: "duty-dingtalk"}, "sms": smsCfg}
		for i := range c.People {
			c.People[i].Contacts = []alerts.Contact{{Channel: "dingtalk", Address: "1380000000" + fmt.Sprint(i)}}
		}
		c.Policies[0].Levels[0].Wait = time.Hour
	})
	h.r.OnEvent(event.Event{Type: event.EventIncident, Incident: &playbook.Incident{ID: 3, Playbook: "entrapment", Status: "open"}})
	h.fire("pump-fault", "b3-pump", "water_supply", rules.Medium)
	h.r.OnEvent(event.Event{Type: event.EventNotify, Notify: &playbook.Notification{Roles: []string{"duty_engineer"}, Text: "电梯困人：立即前往 trapped: go", Incident: 3}})
	for range 6 {
		h.advance(10 * time.Second)
		h.settled()
	}
	dt.mu.Lock()
	texts := slices.Clone(dt.texts)
	dt.mu.Unlock()
	if len(sms.sent()) != 0 {
		t.Fatalf("SMS: %+v", sms.sent())
	}
	if len(texts) != 2 || !strings.Contains(texts[0]+texts[1], "pump-fault") || !strings.Contains(texts[0]+texts[1], "电梯困人") {
		t.Fatalf("group chat: want the alarm and the plan's notice, got %q", texts)
	}
	for _, text := range texts {
		if strings.Contains(text, "/m/") || strings.Contains(text, "sig=") {
			t.Errorf("group chat carries a personal link: %q", text)
		}
		if !strings.Contains(text, "/console") {
			t.Errorf("group chat does not point to the console: %q", text)
		}
	}
}
