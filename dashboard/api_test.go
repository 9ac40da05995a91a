package dashboard

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
)

type fakeSim struct{ active map[string]string }

func (f *fakeSim) Inject(name, target string) error {
	if name != "flooding" {
		return errors.New(`unknown scenario "` + name + `"; fix: one of power-outage, flooding, entrapment, pump-fault`)
	}
	f.active[name] = target
	return nil
}
func (f *fakeSim) Clear(name string) error   { delete(f.active, name); return nil }
func (f *fakeSim) Active() map[string]string { return f.active }

func newServer(t *testing.T, sim Scenarios) (*httptest.Server, *API) {
	state := collectors.NewState([]collectors.Asset{
		{ID: "pump", Kind: collectors.KindPumpRoom, Building: "B3"},
		{ID: "lift", Kind: collectors.KindElevator, Building: "B5"},
	})
	state.Apply([]collectors.Point{{Asset: "pump", Field: "pressure", Value: collectors.Float(0.4), Unit: "MPa", Time: time.Unix(1700000000, 0)}})
	d := Deps{State: state, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if sim != nil {
		d.Scenarios = sim
	}
	api := NewAPI(d)
	api.UseAuth(testAuth(t))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv, api
}

// call sends a request as the operator wang.li (testAuth's bearer token).
func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	return callAs(t, "operator-token-1234", method, url, body)
}

func TestAssetsAndHealth(t *testing.T) {
	srv, api := newServer(t, nil)
	if code, _ := call(t, "GET", srv.URL+"/healthz", ""); code != 503 {
		t.Fatalf("healthz before ready: %d", code)
	}
	api.SetReady(true)
	if code, _ := call(t, "GET", srv.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz when ready: %d", code)
	}
	code, body := call(t, "GET", srv.URL+"/api/v1/assets?building=B3", "")
	var got []struct {
		ID     string
		Fields map[string]struct {
			Value   any
			Unit    string
			Quality string
		}
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 || len(got) != 1 || got[0].ID != "pump" {
		t.Fatalf("assets?building=B3: %d %s", code, body)
	}
	if f := got[0].Fields["pressure"]; f.Value != 0.4 || f.Unit != "MPa" || f.Quality != "good" {
		t.Fatalf("pressure: %+v", f)
	}
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/api/v1/assets?colour=red", "", 400, `"error": "unknown query parameter colour; the filters are kind and building"`},
		{"GET", "/api/v1/assets/ghost", "", 404, `"error": "no asset ghost"`},
		{"POST", "/api/v1/simulator/scenarios/flooding", "", 404, `"error": "the simulator is not enabled in this gateway's config (simulator.enabled)"`},
		{"PUT", "/api/v1/assets", "", 405, ""},
	} {
		code, body := call(t, c.method, srv.URL+c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s; want %d %s", c.method, c.path, code, body, c.code, c.want)
		}
	}
}

func TestScenarioRequests(t *testing.T) {
	sim := &fakeSim{active: map[string]string{}}
	srv, _ := newServer(t, sim)
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/api/v1/simulator/scenarios/meteor", "", 404, `unknown scenario \"meteor\"`},
		{"POST", "/api/v1/simulator/scenarios/flooding", `{"target": 7}`, 400, `"error": "body: json: cannot unmarshal number into Go struct field ScenarioRequest.target of type string; expected {\"target\": \"\u003casset id\u003e\"} or no body"`},
		{"POST", "/api/v1/simulator/scenarios/flooding", `{"where": "x"}`, 400, `unknown field \"where\"`},
		{"POST", "/api/v1/simulator/scenarios/flooding", `{"target": "ghost"}`, 400, `"error": "target ghost is not a declared asset"`},
		{"POST", "/api/v1/simulator/scenarios/flooding", `{"target": "pump"}`, 200, `"status": "active"`},
		{"GET", "/api/v1/simulator/scenarios", "", 200, `"name": "flooding"`},
		{"DELETE", "/api/v1/simulator/scenarios/flooding", "", 200, `"status": "cleared"`},
	} {
		code, body := call(t, c.method, srv.URL+c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s; want %d %s", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
	if len(sim.active) != 0 {
		t.Fatalf("active after clear: %v", sim.active)
	}
}
