package dashboard

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/register"
)

// fakeDesk serves one round with what an inspector wrote.
type fakeDesk struct{ InspectionDesk }

func (fakeDesk) Routes() []inspection.Route { return []inspection.Route{} }
func (fakeDesk) Rounds(context.Context, inspection.RoundFilter) ([]*inspection.Round, error) {
	return []*inspection.Round{{ID: 1, Route: "night", Status: inspection.StatusDone, Note: "电话 13800000001",
		Results: []inspection.CheckpointResult{{Checkpoint: "lobby", By: "wang.li", Items: []inspection.ItemResult{{Item: "x", Text: "住户王先生反映"}}}}}}, nil
}

type fakeBook struct{ RegisterBook }

func (fakeBook) Contacts() []register.Contact {
	return []register.Contact{{ID: "power-company", Name: "供电公司", Category: "utility", Phone: "95598"}}
}
func (fakeBook) Entry(asset string) (register.Entry, error) { return register.Entry{Asset: asset}, nil }

type fakePlans struct{ MaintenancePlans }

func (fakePlans) Counts(_ context.Context, from, to time.Time) (*maintenance.Counts, error) {
	return &maintenance.Counts{From: from, To: to, Opened: 3, Done: 2}, nil
}

func registerServer(t *testing.T) *httptest.Server {
	t.Helper()
	state := collectors.NewState([]collectors.Asset{{ID: "pump", Kind: collectors.KindPumpRoom}})
	d := Deps{State: state, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	api := NewAPI(d)
	api.MountRegister(RegisterPorts{Register: fakeBook{}, Inspections: fakeDesk{}, Maintenance: fakePlans{}})
	api.MountDashboard(NewHub(state, nil, api.Snapshot, d.Log), testAuth(t))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// Who may read and change what: phone numbers and what inspectors wrote
// are not for the wall token; the register is the admins'.
func TestRegisterRoutesRoles(t *testing.T) {
	srv := registerServer(t)
	for _, c := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/api/v1/contacts", "wall-token-123456", "", http.StatusForbidden},
		{"GET", "/api/v1/contacts", "engineer-token-1234", "", http.StatusOK},
		{"GET", "/api/v1/register", "wall-token-123456", "", http.StatusForbidden},
		{"GET", "/api/v1/assets/pump/register", "wall-token-123456", "", http.StatusForbidden},
		{"PUT", "/api/v1/assets/pump/register", "operator-token-1234", `{}`, http.StatusForbidden},
		{"POST", "/api/v1/register/import", "operator-token-1234", `{"csv":""}`, http.StatusForbidden},
		{"GET", "/api/v1/contacts/power-company", "wall-token-123456", "", http.StatusForbidden},
		{"POST", "/api/v1/contacts", "operator-token-1234", `{"id":"x"}`, http.StatusForbidden},
		{"PUT", "/api/v1/contacts/power-company", "operator-token-1234", `{"version":1}`, http.StatusForbidden},
		{"DELETE", "/api/v1/contacts/power-company?version=1", "operator-token-1234", "", http.StatusForbidden},
		{"PUT", "/api/v1/contacts/power-company", "admin-token-123456", `{"id":"other","version":1}`, http.StatusBadRequest},
		{"PUT", "/api/v1/contacts/power-company", "admin-token-123456", `{"name":"x"}`, http.StatusBadRequest},
		{"DELETE", "/api/v1/contacts/power-company", "admin-token-123456", "", http.StatusBadRequest},
		{"GET", "/api/v1/inspections/codes", "engineer-token-1234", "", http.StatusForbidden},
		{"GET", "/api/v1/inspections/checkpoint?code=x", "wall-token-123456", "", http.StatusForbidden},
		{"POST", "/api/v1/inspections", "engineer-token-1234", `{"route":"night"}`, http.StatusForbidden},
		{"GET", "/api/v1/maintenance/counts?from=2026-11-01T00:00:00%2B08:00&to=2026-12-01T00:00:00%2B08:00", "wall-token-123456", "", http.StatusOK},
		{"GET", "/api/v1/maintenance/counts?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", "wall-token-123456", "", http.StatusBadRequest},
	} {
		resp, body := do(t, c.method, srv.URL+c.path, c.body, bearer(c.token), header("Content-Type", "application/json"))
		if resp.StatusCode != c.want {
			t.Errorf("%s %s as %s: %d, want %d (%s)", c.method, c.path, c.token, resp.StatusCode, c.want, body)
		}
	}
	// The wall token sees rounds without names and notes; engineers see them.
	_, wall := do(t, "GET", srv.URL+"/api/v1/inspections", "", bearer("wall-token-123456"))
	if strings.Contains(wall, "13800000001") || strings.Contains(wall, "王先生") || strings.Contains(wall, "wang.li") {
		t.Errorf("wall token read what people wrote: %s", wall)
	}
	_, eng := do(t, "GET", srv.URL+"/api/v1/inspections", "", bearer("engineer-token-1234"))
	if !strings.Contains(eng, "王先生") || !strings.Contains(eng, "wang.li") {
		t.Errorf("engineer: %s", eng)
	}
}
