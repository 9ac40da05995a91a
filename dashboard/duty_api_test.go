package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/workorder"
)

// dutyServer is the API with the rules and the duty endpoints on a real
// engine and SQLite store, behind testAuth, with an injected clock.
func dutyServer(t *testing.T, now func() time.Time) (*httptest.Server, *rules.Engine) {
	t.Helper()
	assets := []collectors.Asset{{ID: "pump", Kind: "pump_room", Building: "B3"}}
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dstore, err := sqlite.NewDuty(store.DB)
	if err != nil {
		t.Fatal(err)
	}
	below := 0.15
	cfg := rules.Config{Rules: []rules.Rule{{ID: "low-pressure", Name: "Low pressure", NameZH: "供水压力低", Target: rules.Target{Kind: "pump_room"}, Field: "p",
		Threshold: &rules.Threshold{Below: &below}, Priority: rules.High, WorkOrder: &rules.WorkOrderSpec{Category: "plumbing"}}}}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wo := workorder.NewService(workorder.Config{}, assets, store, log, now)
	e := rules.NewEngine(cfg, assets, rules.Deps{Store: store, OnFire: wo, Log: log, Now: now})
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, loc)
	svc := duty.NewService(duty.Deps{Store: dstore, Sources: duty.Sources{Alarms: e, History: store, WorkOrders: store}, Orders: dutyOrders{store, wo},
		People: map[string]string{"wang.li": "王立", "admin": "管理员", "zhang.wei": "张伟"}, Required: []string{"engineering"}, Location: loc, Log: log, Now: now,
		Seed: []duty.Team{{ID: "engineering", Name: "工程部", Rotation: duty.Rotation{Members: []string{"wang.li", "zhang.wei"}, Start: start, Shift: duty.Duration(24 * time.Hour), TimeZone: "Asia/Shanghai"}}}})
	if err := svc.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	api := NewAPI(Deps{State: collectors.NewState(assets), Gatherer: prometheus.NewRegistry(), Log: log, Site: "御山花园"})
	api.MountRules(Rules{Alarms: e, AlarmActions: e, History: store, WorkOrders: wo, Orders: store, Reports: workorder.NewReports(store, rules.NewEquipment(e, store), workorder.Config{}, now)})
	api.MountDuty(Duty{Roster: svc, Handovers: svc, Log: svc, Location: loc, Now: now})
	api.UseAuth(testAuth(t))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv, e
}

type dutyOrders struct {
	*sqlite.Rules
	*workorder.Service
}

func (o dutyOrders) WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error) {
	return o.Rules.WorkOrder(ctx, id)
}

func (o dutyOrders) Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error) {
	return o.Service.Create(ctx, w, by)
}

// A handover with open items round-trips through both signatures over the
// API: the operator signs (the body cannot name someone else), the summary
// holds the active alarm and its work order, the operator cannot accept
// their own handover, another operator accepts it, both signatures and the
// snapshot read back, and it is found by date and printed.
func TestHandoverRoundTripOverTheAPI(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 11, 23, 7, 40, 0, 0, loc)
	srv, e := dutyServer(t, func() time.Time { return now })
	e.Process([]collectors.Point{{Asset: "pump", Field: "p", Value: collectors.Float(0.05), Quality: collectors.QualityGood, Time: now}})
	op, admin, eng, wall := bearer("operator-token-1234"), bearer("admin-token-123456"), bearer("engineer-token-1234"), bearer("wall-token-123456")
	js := header("Content-Type", "application/json")

	// A call in the duty log, linked to the alarm's work order.
	resp, body := do(t, "POST", srv.URL+"/api/v1/duty-log", `{"at":"2026-11-23T07:20:00+08:00","kind":"call","caller":"3-201 刘女士","text":"没水了","workorder":1}`, op, js)
	if resp.StatusCode != 201 || !strings.Contains(body, `"author": "wang.li"`) {
		t.Fatalf("log entry: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", srv.URL+"/api/v1/duty-log", `{"kind":"call","text":"x"}`, op, js); resp.StatusCode != 400 || !strings.Contains(body, "at is required") {
		t.Fatalf("entry without a time: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", srv.URL+"/api/v1/duty-log", `{"at_now":true,"kind":"note","text":"x"}`, eng, js); resp.StatusCode != 403 {
		t.Fatalf("an engineer wrote the log: %d", resp.StatusCode)
	}
	// The draft, then the signature; "by" in the body is refused, not trusted.
	if resp, body := do(t, "GET", srv.URL+"/api/v1/handovers/draft?team=engineering", "", eng); resp.StatusCode != 200 || !strings.Contains(body, "供水压力低") {
		t.Fatalf("draft: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", srv.URL+"/api/v1/handovers", `{"team":"engineering","by":"admin"}`, op, js); resp.StatusCode != 400 {
		t.Fatalf("a body naming the signer: %d", resp.StatusCode)
	}
	resp, body = do(t, "POST", srv.URL+"/api/v1/handovers", `{"team":"engineering","remarks":"2号泵压力低，已报修"}`, op, js)
	if resp.StatusCode != 201 {
		t.Fatalf("sign: %d %s", resp.StatusCode, body)
	}
	var h duty.Handover
	json.Unmarshal([]byte(body), &h)
	if h.Outgoing.By != "wang.li" || h.Status != duty.Signed || len(h.Summary.Alarms) != 1 || len(h.Summary.WorkOrders) != 1 || len(h.Summary.Log) != 1 ||
		h.Rostered != "zhang.wei" || h.Next != "wang.li" {
		t.Fatalf("signed: %+v", h)
	}
	id := func(p string) string { return srv.URL + "/api/v1/handovers/" + jsonInt(h.ID) + p }
	if resp, body := do(t, "POST", id("/accept"), `{}`, op, js); resp.StatusCode != 400 || !strings.Contains(body, "someone else") {
		t.Fatalf("self-acceptance: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", id("/accept"), `{}`, eng, js); resp.StatusCode != 403 {
		t.Fatalf("an engineer accepted: %d", resp.StatusCode)
	}
	now = now.Add(20 * time.Minute)
	if resp, body := do(t, "POST", id("/accept"), `{"note":"已了解"}`, admin, js); resp.StatusCode != 200 || !strings.Contains(body, `"status": "accepted"`) {
		t.Fatalf("accept: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", id("/accept"), `{}`, admin, js); resp.StatusCode != 409 {
		t.Fatalf("accepted twice: %d", resp.StatusCode)
	}
	// Read back by an engineer: both signatures and the snapshot.
	resp, body = do(t, "GET", id(""), "", eng)
	var back duty.Handover
	json.Unmarshal([]byte(body), &back)
	if resp.StatusCode != 200 || back.Incoming == nil || back.Incoming.By != "admin" || !back.Incoming.At.Equal(now) || back.Outgoing.By != "wang.li" ||
		back.Incoming.Note != "已了解" || len(back.Summary.Alarms) != 1 || back.Summary.Alarms[0].NameZH != "供水压力低" {
		t.Fatalf("read back: %d %+v", resp.StatusCode, back)
	}
	for path, want := range map[string]int{"/api/v1/handovers?date=2026-11-23": 1, "/api/v1/handovers?date=2026-11-22": 0, "/api/v1/handovers?from=2026-11-01&to=2026-11-23": 1,
		"/api/v1/handovers?status=pending": 0, "/api/v1/duty-log?date=2026-11-23": 1, "/api/v1/duty-log?date=2026-11-23&q=刘女士": 1, "/api/v1/duty-log?q=nothing": 0} {
		resp, body := do(t, "GET", srv.URL+path, "", eng)
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(body), &list); resp.StatusCode != 200 || err != nil || len(list) != want {
			t.Errorf("%s: %d %d items, want %d", path, resp.StatusCode, len(list), want)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/handovers?date=23.11.2026", "", eng); resp.StatusCode != 400 {
		t.Errorf("bad date: %d", resp.StatusCode)
	}
	// Printable, Chinese first.
	resp, body = do(t, "GET", id("/print"), "", eng)
	for _, want := range []string{"交接班记录", "交班人", "接班人", "王立", "2号泵压力低，已报修", "供水压力低", "2026-11-23 08:00", "没水了", "已了解"} {
		if !strings.Contains(body, want) {
			t.Errorf("printed handover lacks %q", want)
		}
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("print content type %s", resp.Header.Get("Content-Type"))
	}
	if _, body := do(t, "GET", srv.URL+"/api/v1/duty-log/print?date=2026-11-23", "", eng); !strings.Contains(body, "值班记录") || !strings.Contains(body, "3-201 刘女士") {
		t.Errorf("printed log: %s", body)
	}
	// What people write is text on the printed page, never markup.
	if resp, body := do(t, "POST", srv.URL+"/api/v1/duty-log", `{"at_now":true,"kind":"note","text":"<script>alert(1)</script>"}`, op, js); resp.StatusCode != 201 {
		t.Fatalf("entry: %d %s", resp.StatusCode, body)
	}
	if _, body := do(t, "GET", srv.URL+"/api/v1/duty-log/print?date=2026-11-23", "", eng); strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)") {
		t.Errorf("printed log does not escape what people wrote")
	}

	// The wall token: names on duty, nothing people wrote.
	resp, body = do(t, "GET", srv.URL+"/api/v1/duty/now", "", wall)
	if resp.StatusCode != 200 || !strings.Contains(body, "王立") || strings.Contains(body, "wang.li") {
		t.Fatalf("wall on duty: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/api/v1/handovers", id(""), id("/print"), "/api/v1/duty-log", "/api/v1/duty-log/print?date=2026-11-23", "/api/v1/roster", "/api/v1/handovers/draft?team=engineering"} {
		if !strings.HasPrefix(p, "http") {
			p = srv.URL + p
		}
		if resp, _ := do(t, "GET", p, "", wall); resp.StatusCode != 403 {
			t.Errorf("wall read %s: %d", p, resp.StatusCode)
		}
	}
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

// The roster: engineers read it, only admins change it; a stale version
// is a conflict; the change takes effect on who is on duty.
func TestRosterOverTheAPI(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, loc)
	srv, _ := dutyServer(t, func() time.Time { return now })
	js := header("Content-Type", "application/json")
	resp, body := do(t, "GET", srv.URL+"/api/v1/roster", "", bearer("engineer-token-1234"))
	var r RosterView
	if err := json.Unmarshal([]byte(body), &r); resp.StatusCode != 200 || err != nil || r.Version != 1 || r.OnDuty[0].Person != "wang.li" {
		t.Fatalf("roster: %d %s", resp.StatusCode, body)
	}
	r.Teams[0].Overrides = []duty.Override{{Person: "admin", From: now.Add(-time.Hour), To: now.Add(time.Hour), Note: "代班"}}
	upd, _ := json.Marshal(RosterUpdate{Version: 1, Teams: r.Teams, Note: "管理员代班"})
	if resp, _ := do(t, "PUT", srv.URL+"/api/v1/roster", string(upd), bearer("operator-token-1234"), js); resp.StatusCode != 403 {
		t.Fatalf("operator edited the roster: %d", resp.StatusCode)
	}
	if resp, body := do(t, "PUT", srv.URL+"/api/v1/roster", string(upd), bearer("admin-token-123456"), js); resp.StatusCode != 200 || !strings.Contains(body, `"version": 2`) {
		t.Fatalf("admin edit: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "PUT", srv.URL+"/api/v1/roster", string(upd), bearer("admin-token-123456"), js); resp.StatusCode != 409 {
		t.Fatalf("stale edit: %d", resp.StatusCode)
	}
	if _, body := do(t, "GET", srv.URL+"/api/v1/duty/now", "", bearer("wall-token-123456")); !strings.Contains(body, "管理员") {
		t.Fatalf("override not on duty: %s", body)
	}
	bad := strings.Replace(string(upd), `"version":1`, `"version":2`, 1)
	bad = strings.Replace(bad, `"shift":"24h0m0s"`, `"shift":"soon"`, 1)
	if resp, body := do(t, "PUT", srv.URL+"/api/v1/roster", bad, bearer("admin-token-123456"), js); resp.StatusCode != 400 || !strings.Contains(body, "not a duration") {
		t.Fatalf("bad shift: %d %s", resp.StatusCode, body)
	}
	if _, body := do(t, "GET", srv.URL+"/api/v1/roster/versions", "", bearer("engineer-token-1234")); !strings.Contains(body, "管理员代班") {
		t.Fatalf("versions: %s", body)
	}
	// The week's schedule: the override splits the day's shift.
	resp, body = do(t, "GET", srv.URL+"/api/v1/roster/schedule?from=2026-11-23&to=2026-11-23", "", bearer("engineer-token-1234"))
	var shifts []duty.Shift
	json.Unmarshal([]byte(body), &shifts)
	var who []string
	for _, s := range shifts {
		who = append(who, s.Person+"@"+s.From.In(loc).Format("15:04"))
	}
	if resp.StatusCode != 200 || strings.Join(who, " ") != "zhang.wei@00:00 admin@08:00 wang.li@10:00" {
		t.Fatalf("schedule: %d %v", resp.StatusCode, who)
	}
	if _, body := do(t, "GET", srv.URL+"/api/v1/roster/print?from=2026-11-23&to=2026-11-29", "", bearer("engineer-token-1234")); !strings.Contains(body, "值班表") || !strings.Contains(body, "管理员") {
		t.Fatalf("printed roster: %s", body)
	}
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/roster/schedule?from=2026-01-01&to=2026-12-31", "", bearer("engineer-token-1234")); resp.StatusCode != 400 {
		t.Fatalf("a year's schedule: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/roster/print", "", bearer("wall-token-123456")); resp.StatusCode != 403 {
		t.Fatalf("the wall printed the roster: %d", resp.StatusCode)
	}
}
