package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

func rulesServer(t testing.TB) (*httptest.Server, *rules.Engine) {
	t.Helper()
	assets := []collectors.Asset{{ID: "pump", Kind: "pump_room", Building: "B3"}}
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	below := 0.15
	cfg := rules.Config{Rules: []rules.Rule{{ID: "low-pressure", Target: rules.Target{Kind: "pump_room"}, Field: "p",
		Threshold: &rules.Threshold{Below: &below}, Priority: rules.High, WorkOrder: &rules.WorkOrderSpec{Category: "plumbing"}}}}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wcfg := workorder.Config{Categories: []workorder.Category{{ID: "plumbing", NameZH: "给排水维修", Resolution: 4 * time.Hour}, {ID: "elevator", NameZH: "电梯", Resolution: 2 * time.Hour}}} // the categories are a configured list
	wo := workorder.NewService(wcfg, assets, store, log, time.Now)
	e := rules.NewEngine(cfg, assets, rules.Deps{Store: store, OnFire: wo, Log: log, Now: time.Now})
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	api := NewAPI(Deps{State: collectors.NewState(assets), Gatherer: prometheus.NewRegistry(), Log: log})
	api.MountRules(Rules{Alarms: e, AlarmActions: e, History: store, WorkOrders: wo, Orders: store,
		Reports: workorder.NewReports(store, rules.NewEquipment(e, store), wcfg, time.Now)})
	api.UseAuth(testAuth(t)) // call() acts as the operator wang.li
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv, e
}

func TestRulesAPI(t *testing.T) {
	srv, e := rulesServer(t)
	e.Process([]collectors.Point{{Asset: "pump", Field: "p", Value: collectors.Float(0.05), Quality: collectors.QualityGood}})
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/api/v1/alarms?state=active", "", 200, `"id": "low-pressure:pump"`},
		{"GET", "/api/v1/alarms?state=loud", "", 400, `"error": "state loud is not one of active, all`},
		{"GET", "/api/v1/alarms?colour=red", "", 400, `"error": "unknown query parameter colour; the parameters are state, priority, asset, rule"`},
		{"POST", "/api/v1/alarms/low-pressure:pump/ack", `{"note": 5}`, 400, `"error": "body: json: cannot unmarshal number into Go struct field AlarmAction.note of type string"`},
		{"POST", "/api/v1/alarms/low-pressure:pump/ack", `{"note": "on it", "whom": "x"}`, 400, `"error": "body: json: unknown field \"whom\""`},
		{"POST", "/api/v1/alarms/nope/ack", `{}`, 404, `"error": "no alarm nope"`},
		{"POST", "/api/v1/alarms/low-pressure:pump/shelve", `{"minutes": 0}`, 400, `"error": "minutes 0 is out of range; shelving needs a time limit of 1 to 10080 minutes"`},
		{"POST", "/api/v1/alarms/low-pressure:pump/out-of-service", `{}`, 400, `"error": "\"on\" is required: true takes the alarm out of service, false returns it"`},
		{"POST", "/api/v1/alarms/low-pressure:pump/ack", `{"note": "on my way", "by": "wang.li"}`, 200, `"state": "acknowledged"`},
		{"POST", "/api/v1/alarms/low-pressure:pump/ack", `{}`, 409, `"error": "the alarm is not waiting for acknowledgement"`},
		{"GET", "/api/v1/alarms/low-pressure:pump", "", 200, `"by": "wang.li"`},
		{"POST", "/api/v1/workorders", `{"category": "plumbing"}`, 400, `"error": "description required"`},
		{"POST", "/api/v1/workorders", `{"category": "plumbing", "description": "no water on 12F"}`, 400, `"error": "asset, location or room required: the engineer must know where to go"`},
		{"POST", "/api/v1/workorders", `{"category": "plumbing", "description": "x", "asset": "ghost"}`, 400, `"error": "asset \"ghost\" is not declared"`},
		{"POST", "/api/v1/workorders", `{"category": "plumbing", "description": "x", "location": "B3 12F", "priority": "urgent"}`, 400, `"error": "priority \"urgent\" is not critical, high, medium or low"`},
		{"POST", "/api/v1/workorders", `{"category": "plumbing", "description": "no water on 12F", "location": "B3 12F", "reporter": "resident 1203"}`, 201, `"status": "opened"`},
		{"GET", "/api/v1/workorders?status=open", "", 200, `"description": "no water on 12F"`},
		{"GET", "/api/v1/workorders?status=done", "", 400, `"error": "status done is not open, all, or a work-order status"`},
		{"GET", "/api/v1/workorders/abc", "", 400, `"error": "work-order id abc is not a positive number"`},
		{"GET", "/api/v1/workorders/99", "", 404, `"error": "no work order 99"`},
		{"POST", "/api/v1/workorders/2/transition", `{}`, 400, `"error": "\"to\" is required: the status to move to"`},
		{"POST", "/api/v1/workorders/2/transition", `{"to": "closed"}`, 409, `"error": "a opened work order cannot become closed; from opened it can go to [dispatched accepted cancelled]"`},
		{"POST", "/api/v1/workorders/2/transition", `{"to": "accepted", "by": "li.ming"}`, 200, `"status": "accepted"`},
		{"PATCH", "/api/v1/workorders/2", `{"assignee": "li.ming", "note": "bringing a spare valve"}`, 200, `"assignee": "li.ming"`},
		{"GET", "/api/v1/workorders/2", "", 200, `"note": "assignee li.ming; bringing a spare valve"`},
		{"GET", "/api/v1/workorders/review", "", 200, `"sla_status": "ok"`},
		{"GET", "/api/v1/kpis?from=2026-13-01", "", 400, `"error": "from 2026-13-01 is not a date (2026-11-01) or RFC 3339 time"`},
		{"GET", "/api/v1/kpis?from=0001-01-01&to=2026-11-01", "", 400, `"error": "the period is longer than a year; ask for a year or less"`},
		{"GET", "/api/v1/kpis", "", 200, `"workorders": 2`},
	} {
		code, body := call(t, c.method, srv.URL+c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s:\n got %d %s\nwant %d %s", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
	// Rejected requests changed nothing: one history entry per real change.
	_, body := call(t, "GET", srv.URL+"/api/v1/workorders/2", "")
	var wo struct {
		Version int
		History []json.RawMessage
	}
	json.Unmarshal([]byte(body), &wo)
	if wo.Version != 3 || len(wo.History) != 3 {
		t.Fatalf("work order 2: version %d, %d history entries; want 3 and 3", wo.Version, len(wo.History))
	}
}

// callAs makes one request with a bearer token.
func callAs(t *testing.T, token, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// Issue 10 item 7: an engineer can work a critical order but not cancel it
// or lower its priority (which would also take it out of the KPIs); an
// operator can, with a reason, and the cancelled order stays counted.
func TestEngineersCannotCancelOrDowngrade(t *testing.T) {
	srv, _ := rulesServer(t)
	const engineer, operator = "engineer-token-1234", "operator-token-1234"
	code, body := callAs(t, operator, "POST", srv.URL+"/api/v1/workorders", `{"category": "elevator", "description": "people trapped", "location": "B3 car 2", "priority": "critical"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var wo struct{ ID int64 }
	json.Unmarshal([]byte(body), &wo)
	u := fmt.Sprintf("%s/api/v1/workorders/%d", srv.URL, wo.ID)
	for _, c := range []struct {
		token, method, path, body string
		code                      int
		want                      string
	}{
		{engineer, "POST", "/transition", `{"to": "cancelled", "note": "not needed"}`, 403, "only an operator may cancel a work order, close one without its call-back, or lower its priority"},
		{engineer, "PATCH", "", `{"priority": "low", "note": "not urgent"}`, 403, "only an operator may cancel"},
		{engineer, "PATCH", "", `{"priority": "critical", "assignee": "zhang.wei"}`, 200, `"assignee": "zhang.wei"`},
		{engineer, "POST", "/transition", `{"to": "accepted"}`, 200, `"status": "accepted"`},
		{operator, "PATCH", "", `{"priority": "low"}`, 400, "a reason is required"},
		{operator, "POST", "/transition", `{"to": "cancelled"}`, 400, "a reason is required"},
		{operator, "POST", "/transition", `{"to": "cancelled", "note": "duplicate of order 1, same car"}`, 200, `"status": "cancelled"`},
	} {
		code, body := callAs(t, c.token, c.method, u+c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s\nwant %d %s", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
	_, body = callAs(t, operator, "GET", srv.URL+"/api/v1/kpis", "")
	if !strings.Contains(body, `"cancelled": 1`) {
		t.Fatalf("KPIs do not show the cancelled order: %s", body)
	}
}

// The wall token reads work orders without who reported them (a resident's
// name or phone); staff read everything.
func TestWallTokenSeesNoReporter(t *testing.T) {
	srv, _ := rulesServer(t)
	code, body := callAs(t, "operator-token-1234", "POST", srv.URL+"/api/v1/workorders",
		`{"category": "plumbing", "description": "no water on 12F", "location": "B3 12F", "reporter": "Li Hua 13812345678"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	for _, path := range []string{"/api/v1/workorders", "/api/v1/workorders/1"} {
		_, wall := callAs(t, "wall-token-123456", "GET", srv.URL+path, "")
		_, staff := callAs(t, "operator-token-1234", "GET", srv.URL+path, "")
		if strings.Contains(wall, "13812345678") || !strings.Contains(wall, "no water on 12F") || !strings.Contains(staff, "13812345678") {
			t.Errorf("%s\nwall:  %s\nstaff: %s", path, wall, staff)
		}
	}
}

// The wall token sees who acknowledged an alarm (a name), not what they
// wrote with it nor where they were (a phone number, an IP address), in the
// alarm list and in an alarm's history; staff read the note.
func TestWallTokenSeesWhoAcknowledgedNotTheNote(t *testing.T) {
	srv, e := rulesServer(t)
	e.Process([]collectors.Point{{Asset: "pump", Field: "p", Value: collectors.Float(0.05), Quality: collectors.QualityGood}})
	const secret = "from 203.0.113.9, call me on 13812345678"
	if code, body := callAs(t, "operator-token-1234", "POST", srv.URL+"/api/v1/alarms/low-pressure:pump/ack", `{"note": "`+secret+`"}`); code != 200 {
		t.Fatalf("ack: %d %s", code, body)
	}
	for _, path := range []string{"/api/v1/alarms?state=all", "/api/v1/alarms/low-pressure:pump"} {
		_, wall := callAs(t, "wall-token-123456", "GET", srv.URL+path, "")
		_, staff := callAs(t, "operator-token-1234", "GET", srv.URL+path, "")
		for _, leak := range []string{"203.0.113.9", "13812345678"} {
			if strings.Contains(wall, leak) {
				t.Errorf("%s: the wall reads %q:\n%s", path, leak, wall)
			}
		}
		if !strings.Contains(wall, `"ack_by": "`) || !strings.Contains(staff, secret) {
			t.Errorf("%s: the wall must say who acknowledged, staff what they wrote\nwall:  %s\nstaff: %s", path, wall, staff)
		}
	}
}
