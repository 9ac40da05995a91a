package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/audit"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

func hubServer(t *testing.T, auth *access.Auth) (*httptest.Server, *collectors.State, *Hub, context.CancelFunc) {
	t.Helper()
	assets := []collectors.Asset{{ID: "pump", Kind: "pump_room", Building: "B3"}, {ID: "lift", Kind: "elevator", Building: "B3"}}
	state := collectors.NewState(assets)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := NewAPI(Deps{State: state, Gatherer: prometheus.NewRegistry(), Log: log, Site: "test"})
	bus := event.NewBus(nil)
	hub := NewHub(state, bus.Subscribe(100), api.Snapshot, log)
	hub.flushEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	go hub.Run(ctx)
	api.MountDashboard(hub, auth)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() { cancel(); srv.Close() })
	return srv, state, hub, cancel
}

func dial(t *testing.T, srv *httptest.Server, query string, header http.Header) (*websocket.Conn, *http.Response, error) {
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws"+query, header)
}

// Many clients, one of which never reads: the others keep receiving every
// update at full rate, the stuck one is dropped, and memory stays bounded.
func TestHubSlowClientIsDroppedOthersKeepUp(t *testing.T) {
	srv, state, hub, _ := hubServer(t, nil)
	// A queue small enough that the stuck client overflows (300 updates of
	// 64 KB are far more than it and the socket buffers hold), large enough
	// that a reader the scheduler starves for a while on a loaded machine
	// does not.
	hub.queue = 64
	const readers = 20
	var got [readers]atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, readers)
	for i := range conns {
		c, _, err := dial(t, srv, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		wg.Add(1)
		go func(i int, c *websocket.Conn) {
			defer wg.Done()
			for {
				_, b, err := c.ReadMessage()
				if err != nil {
					return
				}
				var m struct {
					Type   string
					Points []collectors.FieldChange
				}
				json.Unmarshal(b, &m)
				for _, p := range m.Points {
					if p.Field == "seq" {
						got[i].Store(int64(p.Value.F))
					}
				}
			}
		}(i, c)
	}
	stuck, _, err := dial(t, srv, "", nil) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	for deadline := time.Now().Add(10 * time.Second); hub.Metrics.Clients.Load() != readers+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients registered, want %d", hub.Metrics.Clients.Load(), readers+1)
		}
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Each update goes out in its own flush with a 64 KB field: more than
	// the stuck client's socket buffers and queue can hold.
	const updates = 300
	blob := strings.Repeat("x", 64<<10)
	for i := 1; i <= updates; i++ {
		state.Apply([]collectors.Point{{Asset: "pump", Field: "seq", Value: collectors.Float(float64(i)), Quality: collectors.QualityGood, Time: time.Now()},
			{Asset: "lift", Field: "blob", Value: collectors.String(blob), Quality: collectors.QualityGood, Time: time.Now()}})
		time.Sleep(12 * time.Millisecond) // one flush each
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range got {
		for got[i].Load() != updates {
			if time.Now().After(deadline) {
				t.Fatalf("reader %d is at %d of %d", i, got[i].Load(), updates)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if hub.Metrics.Dropped.Load() != 1 {
		t.Fatalf("dropped %d clients, want the stuck one", hub.Metrics.Dropped.Load())
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Fatalf("heap grew by %d MiB", grew>>20)
	}
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
}

func TestSnapshotThenDeltas(t *testing.T) {
	srv, state, _, _ := hubServer(t, nil)
	state.Apply([]collectors.Point{{Asset: "pump", Field: "pressure", Value: collectors.Float(0.4), Quality: collectors.QualityGood, Time: time.Now()}})
	c, _, err := dial(t, srv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, b, _ := c.ReadMessage()
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil || snap.Type != "snapshot" || len(snap.Assets) != 2 {
		t.Fatalf("first message: %s", b)
	}
	state.Apply([]collectors.Point{{Asset: "pump", Field: "pressure", Value: collectors.Float(0.1), Quality: collectors.QualityGood, Time: time.Now()}})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"type":"points"`) {
			// The hub's flush may still carry the first reading (0.4, already
			// in the snapshot) if it ran between the snapshot and the second
			// Apply; the delta that matters is the new one.
			if strings.Contains(string(b), `"value":0.1`) {
				return
			}
			if !strings.Contains(string(b), `"value":0.4`) {
				t.Fatalf("delta: %s", b)
			}
		}
	}
}

// testAuth is the access control over a real audit database: an operator
// with a password and a token, an engineer with a token, an admin with a
// bcrypt hash (of "admin-password").
func testAuth(t testing.TB) *access.Auth {
	a, _ := testAuthLog(t)
	return a
}

// testAuthLog is testAuth and its audit log.
func testAuthLog(t testing.TB) (*access.Auth, audit.Log) {
	t.Helper()
	cfg := access.Config{WallToken: "wall-token-123456", AuditDatabase: filepath.Join(t.TempDir(), "audit.db"), Users: []access.User{
		{Username: "wang.li", Role: "operator", Password: "pw-operator", Token: "operator-token-1234"},
		{Username: "zhang.wei", Role: "engineer", Password: "pw-engineer", Token: "engineer-token-1234"},
		{Username: "admin", Role: "admin", PasswordHash: "$2a$04$OJPJAUP6lD4v1jZa.eYBj.JFIN3jdGKb/DLLh9nBYIZnDOulE6KYS", Token: "admin-token-123456"},
	}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.OpenAudit(cfg.AuditDatabase, cfg.AuditMaxRows)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a, err := access.NewAuth(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a, store
}

// auditRows is the audit log, oldest first, as "user role METHOD path Status".
func auditRows(t *testing.T, log audit.Log) []string {
	t.Helper()
	es, err := log.Recent(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		out = append(out, strings.Join([]string{e.Username, e.Role, e.Method, e.Path}, " ")+" "+http.StatusText(e.Status))
	}
	return out
}

// The read-only token cannot change anything; a cross-origin websocket
// upgrade is refused; logins work; every change is audited.
func TestAccess(t *testing.T) {
	auth, log := testAuthLog(t)
	srv, _, _, _ := hubServer(t, auth)
	req := func(method, path, token, body string) int {
		r, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/assets", "", 401},
		{"GET", "/api/v1/assets", "wall-token-123456", 200},
		{"GET", "/api/v1/assets", "forged-token-123456", 401},
		{"POST", "/api/v1/simulator/scenarios/flooding", "wall-token-123456", 403},
		{"POST", "/api/v1/alarms/x/ack", "wall-token-123456", 403},
		{"POST", "/api/v1/simulator/scenarios/flooding", "operator-token-1234", 404}, // allowed; no simulator here
		{"GET", "/api/v1/audit", "operator-token-1234", 403},
		{"GET", "/", "", 200},
		{"GET", "/console", "", 200},
		{"GET", "/static/app.js", "", 200},
		{"GET", "/healthz", "", 503},
	} {
		if got := req(c.method, c.path, c.token, ""); got != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.token, got, c.want)
		}
	}
	// Websocket: the wall token connects; a foreign origin is refused.
	if _, resp, err := dial(t, srv, "?token=wall-token-123456", http.Header{"Origin": {"http://evil.example"}}); err == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-origin upgrade: %v %v", err, resp)
	}
	if _, resp, err := dial(t, srv, "", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("anonymous upgrade: %v", err)
	}
	c, _, err := dial(t, srv, "?token=wall-token-123456", http.Header{"Origin": {srv.URL}})
	if err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}
	c.Close()
	// Login with a password; wrong password refused.
	if got := req("POST", "/login", "", `{"username":"wang.li","password":"nope"}`); got != 401 {
		t.Fatalf("wrong password: %d", got)
	}
	r, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(`{"username":"wang.li","password":"pw-operator"}`))
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.StatusCode != 200 || len(resp.Cookies()) != 1 || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("login: %v %v", resp.Status, err)
	}
	cookie := resp.Cookies()[0]
	r, _ = http.NewRequest("GET", srv.URL+"/api/v1/me", nil)
	r.AddCookie(cookie)
	resp, _ = http.DefaultTransport.RoundTrip(r)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"role": "operator"`) {
		t.Fatalf("me: %d %s", resp.StatusCode, b)
	}
	audit := auditRows(t, log)
	want := []string{
		"anonymous none GET /api/v1/assets Unauthorized",
		"anonymous none GET /api/v1/assets Unauthorized",
		"wall-display viewer POST /api/v1/simulator/scenarios/flooding Forbidden",
		"wall-display viewer POST /api/v1/alarms/x/ack Forbidden",
		"wang.li operator POST /api/v1/simulator/scenarios/flooding Not Found",
		"wang.li operator GET /api/v1/audit Forbidden",
		"anonymous none GET /ws Unauthorized",
		"wang.li none POST /login Unauthorized",
		"wang.li operator POST /login OK",
	}
	if strings.Join(audit, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(audit, "\n"), strings.Join(want, "\n"))
	}
}

// Review 13: the snapshot used to be built and sent before the client was
// registered, so a change made meanwhile reached nobody: the wall display
// missed a new alarm until it reconnected. Here an alarm is published while
// the snapshot is being built, and the hub has consumed it before the
// snapshot is returned; the client must still receive it, after the snapshot.
func TestHubChangeDuringSnapshotIsDelivered(t *testing.T) {
	state := collectors.NewState([]collectors.Asset{{ID: "lift", Kind: "elevator"}})
	bus := event.NewBus(nil)
	sub := bus.Subscribe(16)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	snapshot := func(context.Context) (*Snapshot, error) {
		bus.Publish(event.Event{Type: event.EventAlarm, Alarm: &rules.Alarm{ID: "entrapment:lift", Rule: "entrapment", Asset: "lift"}})
		for deadline := time.Now().Add(5 * time.Second); len(sub.C) > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return nil, context.DeadlineExceeded
			}
		}
		return &Snapshot{Type: "snapshot", Site: "test"}, nil
	}
	hub := NewHub(state, sub, snapshot, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	up := &websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hub.ServeWS(up, w, r) }))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var types []string
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("the alarm published during the snapshot never arrived; got %v (%v)", types, err)
		}
		var m struct{ Type string }
		json.Unmarshal(b, &m)
		types = append(types, m.Type)
		if m.Type == "alarm" {
			if types[0] != "snapshot" {
				t.Fatalf("order: %v; the snapshot comes first", types)
			}
			if !strings.Contains(string(b), "entrapment:lift") {
				t.Fatalf("alarm: %s", b)
			}
			return
		}
	}
}

// Review 29: no cap on websocket clients. Beyond the cap: 503, counted; a
// slot frees when a client leaves.
func TestHubClientCap(t *testing.T) {
	srv, _, hub, _ := hubServer(t, nil)
	hub.LimitClients(2)
	var conns []*websocket.Conn
	for range 2 {
		c, _, err := dial(t, srv, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if _, resp, err := dial(t, srv, "", nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client: %v %v", err, resp)
	}
	if hub.Metrics.Refused.Load() != 1 {
		t.Fatalf("refused %d", hub.Metrics.Refused.Load())
	}
	conns[0].Close()
	for deadline := time.Now().Add(5 * time.Second); hub.admitted.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %d admitted", hub.admitted.Load())
		}
	}
	c, _, err := dial(t, srv, "", nil)
	if err != nil {
		t.Fatalf("after a client left: %v", err)
	}
	c.Close()
	conns[1].Close()
}

// Review 29: after the hub stopped, `h.register <- c` blocked the handler
// forever. Now a late connection is refused at once.
func TestHubAfterStopRefusesInsteadOfBlocking(t *testing.T) {
	srv, _, hub, cancel := hubServer(t, nil)
	cancel()
	select {
	case <-hub.done:
	case <-time.After(5 * time.Second):
		t.Fatal("hub did not stop")
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	_, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connect after stop: %v %v", err, resp)
	}
	if hub.admitted.Load() != 0 {
		t.Fatalf("%d slots still held", hub.admitted.Load())
	}
}

// Review 23: the demo must say it is one, on the screens too.
func TestSnapshotSaysDemo(t *testing.T) {
	state := collectors.NewState([]collectors.Asset{{ID: "pump", Kind: "pump_room"}})
	for _, demo := range []bool{false, true} {
		api := NewAPI(Deps{State: state, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Demo: demo})
		s, err := api.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(s)
		if s.Demo != demo || strings.Contains(string(b), `"demo"`) != demo {
			t.Fatalf("demo %v: %s", demo, b)
		}
	}
	page, err := webFS.ReadFile("web/wall.html")
	if err != nil || !strings.Contains(string(page), `id="demo"`) {
		t.Fatalf("wall.html has no demo banner: %v", err)
	}
}

// The wall token's screen gets incidents without what people wrote in them
// (a passenger's name and phone number in a note) and work orders without
// who reported them; a logged-in engineer's screen gets everything.
func TestWallScreenSeesNoPersonalDetails(t *testing.T) {
	state := collectors.NewState([]collectors.Asset{{ID: "lift", Kind: "elevator"}})
	bus := event.NewBus(nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const secret = "Li Hua 13812345678"
	in := &playbook.Incident{ID: 7, Playbook: "elevator-entrapment", Status: "open",
		Steps:    []playbook.StepState{{ID: "passenger-details", Status: playbook.StepDone, By: "li.ming", Note: secret}},
		Record:   map[string]playbook.RecordValue{"passengers": {By: "li.ming", Note: secret, Value: secret, Source: playbook.FromPerson}},
		Timeline: []playbook.Entry{{By: "li.ming", Kind: "step_done", Text: "passenger-details: " + secret}}}
	wo := &workorder.WorkOrder{ID: 3, Source: "manual", Reporter: secret, Description: "no water on 12F, call 138 1234 5678"}
	// Who acknowledged shows; their note (here with the client's IP and a
	// number) does not.
	alarm := rules.Alarm{ID: "entrapment:lift", State: rules.StateAcked, AckBy: "王立", AckNote: "from 203.0.113.9 " + secret}
	snapshot := func(context.Context) (*Snapshot, error) {
		return &Snapshot{Type: "snapshot", Alarms: []rules.Alarm{alarm}, Incidents: []*playbook.Incident{in}, WorkOrders: []*workorder.WorkOrder{wo}}, nil
	}
	hub := NewHub(state, bus.Subscribe(16), snapshot, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	up := &websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("as") == "engineer" {
			r = r.WithContext(access.WithPrincipal(r.Context(), access.Principal{Username: "zhang.wei", Role: access.Engineer}))
		}
		hub.ServeWS(up, w, r)
	}))
	defer srv.Close()
	read := func(c *websocket.Conn) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	wall, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wall.Close()
	eng, _, err := websocket.DefaultDialer.Dial(url+"?as=engineer", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	leaks := func(s string) bool {
		return strings.Contains(s, "13812345678") || strings.Contains(s, "1234 5678") || strings.Contains(s, "203.0.113.9")
	}
	if s := read(wall); leaks(s) || !strings.Contains(s, "no water on 12F") || !strings.Contains(s, `"ack_by":"王立"`) {
		t.Fatalf("wall snapshot: %s", s)
	}
	if s := read(eng); !strings.Contains(s, "13812345678") || !strings.Contains(s, "203.0.113.9") {
		t.Fatalf("engineer snapshot lacks the details: %s", s)
	}
	bus.IncidentChanged(in)
	bus.AlarmChanged(alarm, rules.Transition{AlarmID: alarm.ID, From: rules.StateUnacked, To: rules.StateAcked, By: "王立", Note: alarm.AckNote})
	for _, kind := range []string{`"type":"incident"`, `"type":"alarm"`} {
		for _, c := range []struct {
			conn *websocket.Conn
			want bool
		}{{wall, false}, {eng, true}} {
			for {
				s := read(c.conn)
				if !strings.Contains(s, kind) {
					continue // heartbeats, points
				}
				if leaks(s) != c.want {
					t.Fatalf("%s event (details expected %v): %s", kind, c.want, s)
				}
				break
			}
		}
	}
}
