package dashboard

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
)

// authServer is the API behind testAuth.
func authServer(t *testing.T, sim Scenarios) *httptest.Server {
	t.Helper()
	state := collectors.NewState([]collectors.Asset{{ID: "pump", Kind: collectors.KindPumpRoom, Building: "B3"}})
	d := Deps{State: state, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if sim != nil {
		d.Scenarios = sim
	}
	api := NewAPI(d)
	auth := testAuth(t)
	api.MountDashboard(NewHub(state, nil, api.Snapshot, d.Log), auth)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
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

// Review 2: with no dashboard: section every endpoint was open, and the
// body's "by" was trusted. Now nothing that changes state is served without
// access control, and the actor is the authenticated principal only.
func TestNoDashboardSectionIsReadOnly(t *testing.T) {
	sim := &fakeSim{active: map[string]string{}}
	state := collectors.NewState([]collectors.Asset{{ID: "pump", Kind: collectors.KindPumpRoom}})
	api := NewAPI(Deps{State: state, Gatherer: prometheus.NewRegistry(), Scenarios: sim, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/assets", ""); resp.StatusCode != 200 {
		t.Fatalf("read without auth: %d", resp.StatusCode)
	}
	for _, m := range []string{"POST", "DELETE"} {
		resp, body := do(t, m, srv.URL+"/api/v1/simulator/scenarios/flooding", `{"target":"pump"}`)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "dashboard:") {
			t.Fatalf("%s without a dashboard section: %d %s", m, resp.StatusCode, body)
		}
	}
	if len(sim.active) != 0 {
		t.Fatalf("a scenario was injected anonymously: %v", sim.active)
	}
}

// Review 19: any token, admin included, was accepted as ?token=. Only the
// wall token is, and only on the websocket (browsers cannot set its headers).
func TestOnlyTheWallTokenInTheQuery(t *testing.T) {
	srv := authServer(t, nil)
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/assets?token=wall-token-123456", 401}, // the page's fetches send it as a header
		{"GET", "/api/v1/audit?token=admin-token-123456", 401},
		{"GET", "/api/v1/assets?token=operator-token-1234", 401},
		{"POST", "/api/v1/simulator/scenarios/flooding?token=operator-token-1234", 401},
	} {
		if resp, _ := do(t, c.method, srv.URL+c.path, ""); resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/audit", "", bearer("admin-token-123456")); resp.StatusCode != 200 {
		t.Fatalf("admin token in the header: %d", resp.StatusCode)
	}
	if _, resp, err := dial(t, srv, "?token=operator-token-1234", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("websocket with a user token in the URL: %v %v", err, resp)
	}
	c, _, err := dial(t, srv, "?token=wall-token-123456", nil)
	if err != nil {
		t.Fatalf("websocket with the wall token: %v", err)
	}
	c.Close()
}

// Review 18: a cookie-authenticated change needs the gateway's own Origin
// and a JSON body; SameSite alone let same-site pages post text/plain.
func TestCookieChangesNeedOriginAndJSON(t *testing.T) {
	sim := &fakeSim{active: map[string]string{}}
	srv := authServer(t, sim)
	c := login(t, srv, "wang.li", "pw-operator")
	url := srv.URL + "/api/v1/simulator/scenarios/flooding"
	for _, x := range []struct {
		name string
		opts []reqOpt
		want int
	}{
		{"no origin", []reqOpt{cookie(c), header("Content-Type", "application/json")}, 403},
		{"foreign origin", []reqOpt{cookie(c), header("Content-Type", "application/json"), header("Origin", "http://evil.example")}, 403},
		{"text/plain", []reqOpt{cookie(c), header("Content-Type", "text/plain"), header("Origin", srv.URL)}, 415},
		{"form", []reqOpt{cookie(c), header("Content-Type", "application/x-www-form-urlencoded"), header("Origin", srv.URL)}, 415},
	} {
		if resp, body := do(t, "POST", url, `{"target":"pump"}`, x.opts...); resp.StatusCode != x.want {
			t.Errorf("%s: %d %s, want %d", x.name, resp.StatusCode, body, x.want)
		}
	}
	if len(sim.active) != 0 {
		t.Fatalf("a refused request injected a scenario: %v", sim.active)
	}
	if resp, body := do(t, "POST", url, `{"target":"pump"}`, cookie(c), header("Content-Type", "application/json; charset=utf-8"), header("Origin", srv.URL)); resp.StatusCode != 200 {
		t.Fatalf("same-origin JSON: %d %s", resp.StatusCode, body)
	}
	// A bearer token is not an ambient credential: no Origin needed.
	if resp, _ := do(t, "DELETE", url, "", bearer("operator-token-1234")); resp.StatusCode != 200 {
		t.Fatalf("bearer: %d", resp.StatusCode)
	}
}

// Review 26: every response carries CSP, X-Frame-Options and nosniff.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	srv := authServer(t, nil)
	for _, path := range []string{"/", "/console", "/static/app.js", "/api/v1/assets", "/api/v1/nothing", "/healthz"} {
		resp, _ := do(t, "GET", srv.URL+path, "")
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s (%d): %v", path, resp.StatusCode, h)
		}
	}
	tls := httptest.NewTLSServer(srv.Config.Handler)
	defer tls.Close()
	resp, err := tls.Client().Get(tls.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("over TLS: %v", resp.Header)
	}
}
