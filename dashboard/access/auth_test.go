package access

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/store/sqlite"
)

// authServer is the guard in front of login, logout, me and the audit log,
// and a few stand-in routes: an operator-only incident close, an engineer
// step, and the signed ack link.
func authServer(t *testing.T) (*httptest.Server, http.Handler, *Auth, *atomic.Int32) {
	t.Helper()
	mux := http.NewServeMux()
	auth := testAuth(t)
	reached := &atomic.Int32{}
	ok := func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		httpjson.Write(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "by": Actor(r)})
	}
	mux.HandleFunc("POST /api/v1/incidents/{id}/close", ok)
	mux.HandleFunc("POST /api/v1/incidents/{id}/steps/{step}/complete", ok)
	mux.HandleFunc("GET /api/v1/alerts/{id}/ack", ok)
	mux.HandleFunc("POST /api/v1/alerts/{id}/ack", func(w http.ResponseWriter, r *http.Request) {
		AuditAs(r, "zhou.jun")
		ok(w, r)
	})
	mux.HandleFunc("GET /api/v1/assets", ok)
	auth.Mount(mux)
	h := Guard(auth, mux)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h, auth, reached
}

// testAuth is the access control over a real audit database: an operator
// with a password and a token, an engineer with a token, an admin with a
// bcrypt hash (of "admin-password").
func testAuth(t testing.TB) *Auth {
	t.Helper()
	cfg := Config{WallToken: "wall-token-123456", AuditDatabase: filepath.Join(t.TempDir(), "audit.db"), Users: []User{
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
	a, err := NewAuth(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// auditRows is the audit log, oldest first, as "user role METHOD path Status".
func auditRows(t *testing.T, a *Auth) []string {
	t.Helper()
	es, err := a.store.Recent(t.Context(), 1000)
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

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}
func header(k, v string) reqOpt    { return func(r *http.Request) { r.Header.Set(k, v) } }
func cookie(c *http.Cookie) reqOpt { return func(r *http.Request) { r.AddCookie(c) } }

func do(t *testing.T, method, url, body string, opts ...reqOpt) (*http.Response, string) {
	t.Helper()
	r, _ := http.NewRequest(method, url, strings.NewReader(body))
	for _, o := range opts {
		o(r)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func login(t *testing.T, srv *httptest.Server, user, pw string) *http.Cookie {
	t.Helper()
	resp, body := do(t, "POST", srv.URL+"/login", `{"username":"`+user+`","password":"`+pw+`"}`, header("Content-Type", "application/json"))
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("login %s: %d %s", user, resp.StatusCode, body)
	}
	return resp.Cookies()[0]
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_800_000_000, 0)} }
func loginReq(user, pw, ip string) *http.Request {
	b, _ := json.Marshal(LoginRequest{Username: user, Password: pw})
	r := httptest.NewRequest("POST", "/login", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = ip + ":40000"
	return r
}

// Review 31: the role came from substrings of the decoded path while the
// router matched the escaped one, so an engineer reached the operator-only
// incident close through %2F. The role now comes from the matched route.
func TestRoleFromMatchedRouteNotPath(t *testing.T) {
	srv, _, auth, reached := authServer(t)
	resp, _ := do(t, "POST", srv.URL+"/api/v1/incidents/1%2Fsteps%2F/close", "{}", bearer("engineer-token-1234"))
	if resp.StatusCode != http.StatusForbidden || reached.Load() != 0 {
		t.Fatalf("engineer on close via %%2F: %d, handler reached %d times", resp.StatusCode, reached.Load())
	}
	if resp, _ := do(t, "POST", srv.URL+"/api/v1/incidents/1/steps/s1/complete", "{}", bearer("engineer-token-1234")); resp.StatusCode != 200 {
		t.Fatalf("engineer on a step: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "POST", srv.URL+"/api/v1/incidents/1/close", "{}", bearer("engineer-token-1234")); resp.StatusCode != 403 {
		t.Fatalf("engineer on close: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "POST", srv.URL+"/api/v1/incidents/1/close", "{}", bearer("operator-token-1234")); resp.StatusCode != 200 {
		t.Fatalf("operator on close: %d", resp.StatusCode)
	}
	rows := auditRows(t, auth)
	if len(rows) == 0 || rows[0] != "zhang.wei engineer POST /api/v1/incidents/1%2Fsteps%2F/close Forbidden" {
		t.Fatalf("audit: %q", rows)
	}
}

func TestActorIsThePrincipalNeverTheBody(t *testing.T) {
	srv, _, _, _ := authServer(t)
	_, body := do(t, "POST", srv.URL+"/api/v1/incidents/1/close", `{"by":"admin"}`, bearer("operator-token-1234"))
	if !strings.Contains(body, `"by": "wang.li"`) {
		t.Fatalf("actor: %s", body)
	}
}

// The signed acknowledgement link is its own credential: GET (the
// confirmation page) and POST (the acknowledgement) need no session, and the
// POST is audited as the person the link names.
func TestAckLinkNeedsNoSessionAndIsAudited(t *testing.T) {
	srv, _, auth, reached := authServer(t)
	for _, m := range []string{"GET", "POST"} {
		if resp, body := do(t, m, srv.URL+"/api/v1/alerts/r:a@1/ack?by=zhou.jun&exp=1&sig=x", ""); resp.StatusCode != 200 {
			t.Fatalf("%s ack link: %d %s", m, resp.StatusCode, body)
		}
	}
	if reached.Load() != 2 {
		t.Fatalf("handlers reached %d times", reached.Load())
	}
	rows := auditRows(t, auth)
	if len(rows) != 1 || rows[0] != "zhou.jun link POST /api/v1/alerts/r:a@1/ack OK" {
		t.Fatalf("audit: %q", rows)
	}
	es, _ := auth.store.Recent(t.Context(), 1)
	if es[0].Remote != "127.0.0.1" {
		t.Fatalf("remote %q", es[0].Remote)
	}
}

func TestSecureCookie(t *testing.T) {
	srv, _, auth, _ := authServer(t)
	if c := login(t, srv, "wang.li", "pw-operator"); c.Secure {
		t.Fatal("Secure over plain HTTP without secure_cookie")
	}
	auth.cfg.SecureCookie = true // behind a TLS-terminating proxy
	if c := login(t, srv, "wang.li", "pw-operator"); !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie: %+v", c)
	}
	auth.cfg.SecureCookie = false
	tls := httptest.NewTLSServer(srv.Config.Handler)
	defer tls.Close()
	resp, err := tls.Client().Post(tls.URL+"/login", "application/json", strings.NewReader(`{"username":"wang.li","password":"pw-operator"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
		t.Fatalf("over TLS: %v %v", resp.Cookies(), resp.Header)
	}
}

// Review 5: a failed login stored and logged a username of up to 1 MiB, and
// guesses were not limited. Usernames are cut to 64 bytes of printable text;
// failures are limited per IP and per user; the refusals are audited.
func TestLoginFloodIsBoundedAndLimited(t *testing.T) {
	srv, h, auth, _ := authServer(t)
	clk := newClock()
	auth.now = clk.now
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	huge := strings.Repeat("A\x00\n", 1<<16) // 196 KiB, 600 KiB as JSON
	if w := serve(loginReq(huge, "x", "10.0.0.1")); w.Code != 401 {
		t.Fatalf("huge username: %d", w.Code)
	}
	es, _ := auth.store.Recent(t.Context(), 1)
	if len(es) != 1 || len(es[0].Username) > maxUsername+len("…") || strings.ContainsAny(es[0].Username, "\x00\n") {
		t.Fatalf("audited username: %q", es[0].Username)
	}
	// Per IP: the burst, then 429 with Retry-After until a token refills.
	for i := 1; i < ipBurst; i++ {
		if w := serve(loginReq("guess"+string(rune('a'+i)), "x", "10.0.0.1")); w.Code != 401 {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	w := serve(loginReq("wang.li", "pw-operator", "10.0.0.1"))
	if w.Code != 429 || w.Header().Get("Retry-After") != "6" {
		t.Fatalf("after %d failures: %d %q", ipBurst, w.Code, w.Header().Get("Retry-After"))
	}
	if w := serve(loginReq("wang.li", "pw-operator", "10.0.0.2")); w.Code != 200 {
		t.Fatalf("another IP: %d", w.Code)
	}
	clk.add(ipEvery)
	if w := serve(loginReq("wang.li", "pw-operator", "10.0.0.1")); w.Code != 200 {
		t.Fatalf("after a refill: %d", w.Code)
	}
	// Per user, from many IPs.
	for i := range userBurst {
		if w := serve(loginReq("admin", "wrong", "10.1.0."+string(rune('1'+i)))); w.Code != 401 {
			t.Fatalf("admin failure %d: %d", i, w.Code)
		}
	}
	if w := serve(loginReq("admin", "admin-password", "10.2.0.1")); w.Code != 429 {
		t.Fatalf("admin after %d failures from several IPs: %d", userBurst, w.Code)
	}
	clk.add(userEvery)
	if w := serve(loginReq("admin", "admin-password", "10.2.0.1")); w.Code != 200 {
		t.Fatalf("admin after a refill: %d", w.Code)
	}
	if auth.Metrics.LoginsLimited.Load() != 2 || auth.Metrics.LoginFailures.Load() != uint64(ipBurst+userBurst) {
		t.Fatalf("metrics: limited %d failures %d", auth.Metrics.LoginsLimited.Load(), auth.Metrics.LoginFailures.Load())
	}
	_ = srv
}

// 401 refusals are audited (review 20), at a bounded rate: a flood of
// anonymous requests is counted, not written row by row.
func TestRefusalsAuditedAtABoundedRate(t *testing.T) {
	_, h, auth, _ := authServer(t)
	clk := newClock()
	auth.now = clk.now
	auth.refusals = rate.NewLimiter(refusalRate, 3)
	for range 10 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/v1/assets", nil))
	}
	rows := auditRows(t, auth)
	if len(rows) != 3 || rows[0] != "anonymous none GET /api/v1/assets Unauthorized" || auth.Metrics.RefusalsNotAudited.Load() != 7 {
		t.Fatalf("rows %q, not audited %d", rows, auth.Metrics.RefusalsNotAudited.Load())
	}
}

func TestLimiterIsBounded(t *testing.T) {
	var evicted atomic.Uint64
	l := newLimiter(100, rate.Every(time.Minute), 1, &evicted)
	now := time.Unix(0, 0)
	l.fail("victim", now)
	if l.wait("victim", now) == 0 {
		t.Fatal("victim not limited")
	}
	for i := range 1000 {
		l.fail(strings.Repeat("k", 1+i%7)+string(rune(0x4e00+i)), now)
	}
	if l.len() != 100 || evicted.Load() != 901 {
		t.Fatalf("len %d evicted %d", l.len(), evicted.Load())
	}
	if l.wait("never-failed", now) != 0 {
		t.Fatal("a key without failures is limited")
	}
}

// Plaintext config passwords are hashed at start and not kept; tokens are
// kept as digests only.
func TestPasswordsHashedAtLoad(t *testing.T) {
	auth := testAuth(t)
	if auth.cfg.Users != nil || auth.cfg.WallToken != "" {
		t.Fatalf("config secrets kept: %+v", auth.cfg)
	}
	for name, acct := range auth.accounts {
		if !bytes.HasPrefix(acct.hash, []byte("$2")) || bytes.Contains(acct.hash, []byte("pw-")) {
			t.Fatalf("%s: %q is not a bcrypt hash", name, acct.hash)
		}
	}
	if len(auth.dummy) == 0 {
		t.Fatal("no dummy hash for unknown users")
	}
}

// Review 24: sessions were never pruned. They live in the audit database
// (a restart keeps logins), expire, are deleted when found expired and by
// the periodic prune, and a user keeps at most sessionsPerUser.
func TestSessionsExpireAndArePruned(t *testing.T) {
	srv, _, auth, _ := authServer(t)
	clk := newClock()
	auth.now = clk.now
	c := login(t, srv, "wang.li", "pw-operator")
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/me", "", cookie(c)); resp.StatusCode != 200 {
		t.Fatalf("me: %d", resp.StatusCode)
	}
	clk.add(auth.cfg.SessionTTL)
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/me", "", cookie(c)); resp.StatusCode != 401 {
		t.Fatalf("me after expiry: %d", resp.StatusCode)
	}
	for range sessionsPerUser + 3 {
		login(t, srv, "zhang.wei", "pw-engineer")
	}
	clk.add(auth.cfg.SessionTTL)
	auth.pruneSessions(t.Context())
	if n := auth.Metrics.SessionsPruned.Load(); n != sessionsPerUser {
		t.Fatalf("pruned %d sessions, want %d (the expired one was deleted on sight, the rest capped per user)", n, sessionsPerUser)
	}
}
