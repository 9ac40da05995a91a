package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/demoreceiver"
	"github.com/propgate/gateway/internal/delivery"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
)

// engineAlarms stands in for the rules engine (its own tests cover it).
type engineAlarms struct {
	mu     sync.Mutex
	alarms map[string]*rules.Alarm
	acks   []string
}

func (f *engineAlarms) Alarm(id string) (rules.Alarm, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.alarms[id]; a != nil {
		return *a, true
	}
	return rules.Alarm{}, false
}
func (f *engineAlarms) Alarms(filter func(*rules.Alarm) bool) []rules.Alarm {
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
func (f *engineAlarms) Ack(id, by, _ string) (rules.Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, id+" by "+by)
	a := f.alarms[id]
	a.Acked, a.State = true, rules.StateAcked
	return *a, nil
}

// withRole stands in for the auth middleware: X-Test-Role sets the principal.
func withRole(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		roles := map[string]access.Role{"viewer": access.Viewer, "operator": access.Operator}
		if role, ok := roles[r.Header.Get("X-Test-Role")]; ok {
			r = r.WithContext(access.WithPrincipal(r.Context(), access.Principal{Username: "u", Role: role}))
		}
		next.ServeHTTP(w, r)
	})
}

type alertsSite struct {
	api    *API
	srv    *httptest.Server
	router *alerts.Router
	store  *sqlite.Alerts
	src    *engineAlarms
	now    time.Time
}

var at0 = time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC)

// newAlertsSite runs a real router over a real SQLite store; channel is
// where the one person is reached.
func newAlertsSite(t *testing.T, channel alerts.ChannelConfig, o AlertsOptions, auth ...*access.Auth) *alertsSite {
	s := &alertsSite{src: &engineAlarms{alarms: map[string]*rules.Alarm{}}, now: at0}
	store, err := sqlite.OpenAlerts(filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.store = store
	cfg := alerts.Config{BaseURL: "https://gw.example", LinkSecret: "0123456789abcdef0123",
		Channels: map[string]alerts.ChannelConfig{"robot": channel},
		People:   []alerts.Person{{ID: "wang", Name: "王立 Wang Li", Contacts: []alerts.Contact{{Channel: "robot", Address: "13800000001"}}}},
		Teams:    []alerts.Team{{ID: "eng", Rotation: alerts.Rotation{Members: []string{"wang"}, Start: at0.Add(-time.Hour), Shift: 24 * time.Hour, TimeZone: "UTC"}}},
		Policies: []alerts.Policy{{ID: "p", Levels: []alerts.Level{{Notify: []string{"team:eng"}, Wait: 10 * time.Minute}}}},
		Routes:   []alerts.Route{{Policy: "p", Immediate: true}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s.router, err = alerts.NewRouter(cfg, alerts.Deps{Assets: []collectors.Asset{{ID: "lift", Building: "3号楼", Location: "大堂左梯"}},
		Alarms: s.src, Store: store, Links: store, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return s.now },
		Tick: time.Hour, Backoff: delivery.Backoff{Initial: time.Millisecond, Attempts: 2},
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.router.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; store.Close() })
	api := NewAPI(Deps{State: collectors.NewState(nil), Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	api.MountAlerts(s.router, store, o)
	api.MountAlertEndpoints(s.router)
	for _, a := range auth {
		api.UseAuth(a)
	}
	s.api = api
	s.srv = httptest.NewServer(withRole(api.Handler()))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *alertsSite) fire(t *testing.T) *alerts.Alert {
	t.Helper()
	a := &rules.Alarm{ID: "elevator-entrapment:lift", Rule: "elevator-entrapment", Asset: "lift", Name: "Passengers trapped", NameZH: "电梯困人",
		Priority: rules.Critical, Active: true, ActiveSince: at0, State: rules.StateUnacked}
	s.src.mu.Lock()
	s.src.alarms[a.ID] = a
	c := *a
	s.src.mu.Unlock()
	s.router.OnEvent(event.Event{Type: event.EventAlarm, Alarm: &c, Transition: &rules.Transition{AlarmID: a.ID, From: rules.StateNormal, To: rules.StateUnacked}})
	al, err := s.store.Alert(context.Background(), a.ID+"@"+fmt.Sprint(at0.UnixMilli()))
	if err != nil {
		t.Fatal(err)
	}
	return al
}

// attempts waits (with a deadline) until n attempts are recorded.
func (s *alertsSite) attempts(t *testing.T, n int) []*alerts.Attempt {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		atts, err := s.store.Attempts(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(atts) >= n {
			return atts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts recorded, want %d", len(atts), n)
		}
	}
}

func doAs(t *testing.T, method, u, role, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if role != "" {
		req.Header.Set("X-Test-Role", role)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func okReceiver(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"errcode":0}`) }))
	t.Cleanup(srv.Close)
	return srv
}

// Issue 10 item 3: GET and HEAD on the link show a confirmation page
// (Chinese first: what, where, since when, for whom) and never acknowledge;
// the POST from the page acknowledges once; a second POST says the link was
// used; the link ack is recorded with the person and client IP.
func TestAckLinkPageThenPostOnce(t *testing.T) {
	s := newAlertsSite(t, alerts.ChannelConfig{Type: alerts.WeCom, URL: okReceiver(t).URL}, AlertsOptions{TimeZone: time.FixedZone("CST", 8*3600)})
	al := s.fire(t)
	raw := s.router.AckLink(al, "wang", at0)
	// Messages now link to the phone page (/m/a/…, mobile_api_test.go); the
	// confirmation page of links sent before keeps working with the same signature.
	u, _ := url.Parse(strings.Replace(raw, "/m/a/"+url.PathEscape(al.ID), "/api/v1/alerts/"+url.PathEscape(al.ID)+"/ack", 1))
	link := s.srv.URL + u.RequestURI() + "&from=singlemessage&isappinstalled=0" // WeChat appends its own parameters
	for _, method := range []string{"GET", "HEAD", "GET"} {
		code, h, body := doAs(t, method, link, "", "", "")
		if code != 200 || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: %d %v", method, code, h)
		}
		if method == "GET" {
			for _, want := range []string{"确认这条报警？", "电梯困人", "Passengers trapped", "紧急", "3号楼, 大堂左梯", "2026-11-02 22:00:00", "王立 Wang Li", `<form method="post"`, `name="sig" value="` + u.Query().Get("sig") + `"`} {
				if !strings.Contains(body, want) {
					t.Fatalf("page lacks %q:\n%s", want, body)
				}
			}
			if i, j := strings.Index(body, "电梯困人"), strings.Index(body, "Passengers trapped"); i > j {
				t.Fatal("the Chinese name is not first")
			}
		}
	}
	if len(s.src.acks) != 0 {
		t.Fatalf("opening the link acknowledged: %v", s.src.acks)
	}
	// Press the page's button: its form's action and hidden fields.
	_, _, page := doAs(t, "GET", link, "", "", "")
	action := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindStringSubmatch(page)
	if action == nil || html.UnescapeString(action[1]) != u.EscapedPath() {
		t.Fatalf("form action %q, want %s", action, u.EscapedPath())
	}
	fields := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`).FindAllStringSubmatch(page, -1) {
		fields.Set(m[1], html.UnescapeString(m[2]))
	}
	form := fields.Encode()
	code, _, body := doAs(t, "POST", s.srv.URL+html.UnescapeString(action[1]), "", "application/x-www-form-urlencoded", form)
	if code != 200 || !strings.Contains(body, "已确认 Acknowledged") || fmt.Sprint(s.src.acks) != "[elevator-entrapment:lift by 王立 Wang Li]" {
		t.Fatalf("post: %d %v\n%s", code, s.src.acks, body)
	}
	code, _, body = doAs(t, "POST", s.srv.URL+u.Path, "", "application/x-www-form-urlencoded", form)
	if code != 409 || !strings.Contains(body, "链接已使用") || len(s.src.acks) != 1 {
		t.Fatalf("second post: %d %v\n%s", code, s.src.acks, body)
	}
	if code, _, body := doAs(t, "GET", link, "", "", ""); code != 200 || !strings.Contains(body, "使用过") || strings.Contains(body, "<form") {
		t.Fatalf("page after use: %d\n%s", code, body)
	}
	// Tampered and bare links are refused without acknowledging anything.
	bad := url.Values{"by": {"wang"}, "exp": {u.Query().Get("exp")}, "sig": {"00" + u.Query().Get("sig")[2:]}}.Encode()
	if code, _, _ := doAs(t, "POST", s.srv.URL+u.Path, "", "application/x-www-form-urlencoded", bad); code != 403 {
		t.Fatalf("tampered: %d", code)
	}
	if code, _, _ := doAs(t, "GET", s.srv.URL+u.Path+"?"+bad, "", "", ""); code != 403 {
		t.Fatalf("tampered GET: %d", code)
	}
	var rows []string
	for _, at := range s.attempts(t, 1) {
		if at.Kind == "link_ack" {
			rows = append(rows, at.Person+" "+at.ClientIP+" "+at.Result)
		}
	}
	if fmt.Sprint(rows) != "[wang 127.0.0.1 link_used wang 127.0.0.1 acked]" {
		t.Fatalf("link rows %v", rows)
	}
}

// Issue 10 item 6: a robot whose URL holds its key fails; the recorded
// error is readable by operators without the key, and the wall display's
// viewer token sees neither the error details nor phone numbers.
func TestViewerSeesNoContactsAndNobodySeesRobotKeys(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for _, ch := range []alerts.ChannelConfig{
		{Type: alerts.WeCom, URL: "http://" + dead + "/cgi-bin/webhook/send?key=SUPER-SECRET-ROBOT-KEY"},
		{Type: alerts.DingTalk, URL: "http://" + dead + "/robot/send?access_token=SUPER-SECRET-TOKEN", Secret: "SEC-SIGNING-SECRET"},
	} {
		t.Run(string(ch.Type), func(t *testing.T) {
			s := newAlertsSite(t, ch, AlertsOptions{})
			s.fire(t)
			s.attempts(t, 2)
			_, _, viewer := doAs(t, "GET", s.srv.URL+"/api/v1/notifications", "viewer", "", "")
			_, _, operator := doAs(t, "GET", s.srv.URL+"/api/v1/notifications", "operator", "", "")
			_, _, alertsViewer := doAs(t, "GET", s.srv.URL+"/api/v1/alerts", "viewer", "", "")
			for name, body := range map[string]string{"viewer": viewer, "operator": operator, "alerts": alertsViewer} {
				for _, secret := range []string{"SUPER-SECRET", "SEC-SIGNING"} {
					if strings.Contains(body, secret) {
						t.Errorf("%s response leaks %s:\n%s", name, secret, body)
					}
				}
			}
			if strings.Contains(viewer, "13800000001") || strings.Contains(alertsViewer, "13800000001") || !strings.Contains(viewer, "details for operators") {
				t.Errorf("viewer response:\n%s", viewer)
			}
			var atts []alerts.Attempt
			json.Unmarshal([]byte(operator), &atts)
			if len(atts) != 2 || atts[0].Address != "13800000001" || !strings.Contains(atts[0].Error, "no answer: POST http://"+dead) {
				t.Errorf("operator response:\n%s", operator)
			}
		})
	}
}

// Issue 10 item 4: the demo receiver exists only when asked for; reading
// it needs a viewer; it keeps a bounded number of bytes; big bodies are
// refused.
func TestDemoReceiverIsOptInAuthenticatedAndBounded(t *testing.T) {
	off := newAlertsSite(t, alerts.ChannelConfig{Type: alerts.Slack, URL: okReceiver(t).URL}, AlertsOptions{})
	if code, _, _ := doAs(t, "GET", off.srv.URL+"/demo/receiver", "operator", "", ""); code != 404 {
		t.Fatalf("mounted without being asked: %d", code)
	}
	if code, _, _ := doAs(t, "POST", off.srv.URL+"/demo/receiver", "", "application/json", `{}`); code < 400 {
		t.Fatalf("a POST was taken without a receiver: %d", code)
	}
	s := newAlertsSite(t, alerts.ChannelConfig{Type: alerts.Slack, URL: okReceiver(t).URL},
		AlertsOptions{DemoReceiver: &demoreceiver.Options{MaxMessages: 100, MaxBytes: 1000, MaxBody: 300}}, testAuth(t))
	recv := s.srv.URL + "/demo/receiver"
	for i := range 20 {
		body := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 90)) // ~100 bytes each
		if code, _, _ := doAs(t, "POST", recv, "", "application/json", body); code != 204 {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	if code, _, _ := doAs(t, "POST", recv, "", "application/json", `{"pad":"`+strings.Repeat("x", 400)+`"}`); code != 413 {
		t.Fatalf("oversized body: %d", code)
	}
	if code, _, _ := doAs(t, "POST", recv, "", "application/json", `not json`); code != 400 {
		t.Fatalf("not JSON: %d", code)
	}
	// Reading needs an operator: the messages hold other people's ack links.
	bearer := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", recv, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := bearer(""); code != 401 {
		t.Fatalf("anonymous read: %d", code)
	}
	if code, _ := bearer("wall-token-123456"); code != 403 {
		t.Fatalf("wall-token read: %d", code)
	}
	code, body := bearer("operator-token-1234")
	var got []struct {
		Body struct{ N int } `json:"body"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("read: %d %v %s", code, err, body)
	}
	// 1000 bytes hold 9 messages of ~108 bytes: the newest, newest first.
	if len(got) != 9 || got[0].Body.N != 19 || got[8].Body.N != 11 {
		t.Fatalf("kept %d messages: %+v", len(got), got)
	}
}

// A throttled robot shows in GET /api/v1/alerts/endpoints under its
// configured name, since when and until when; the error text is for
// operators, and nobody sees the robot's URL or key.
func TestThrottledEndpointIsVisible(t *testing.T) {
	robot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`)
	}))
	defer robot.Close()
	s := newAlertsSite(t, alerts.ChannelConfig{Type: alerts.DingTalk, URL: robot.URL + "/robot/send?access_token=f00dfeedf00dfeedf00d", Endpoint: "duty-group"}, AlertsOptions{})
	s.fire(t)
	s.attempts(t, 1)
	for _, role := range []string{"viewer", "operator"} {
		var eps []alerts.EndpointStatus
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			code, _, body := doAs(t, "GET", s.srv.URL+"/api/v1/alerts/endpoints", role, "", "")
			if code != 200 || strings.Contains(body, "f00dfeed") || strings.Contains(body, robot.URL) {
				t.Fatalf("%s: %d %s", role, code, body)
			}
			eps = nil
			json.Unmarshal([]byte(body), &eps)
			if len(eps) == 1 && eps[0].State == "throttled" || time.Now().After(deadline) {
				break
			}
		}
		if len(eps) != 1 || eps[0].Name != "duty-group" || eps[0].State != "throttled" || !eps[0].Since.Equal(at0) ||
			!eps[0].PausedUntil.Equal(at0.Add(10*time.Minute)) || eps[0].Counts["throttled"] != 1 || eps[0].PerMinute != 20 {
			t.Fatalf("%s: %+v", role, eps)
		}
		if (eps[0].LastError != "") != (role == "operator") {
			t.Fatalf("%s sees the error %q", role, eps[0].LastError)
		}
	}
}
