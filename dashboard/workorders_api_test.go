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
	"github.com/xuri/excelize/v2"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/monthly"
	"github.com/propgate/gateway/rules/workorder"
)

// The report register and the call-back: a complaint is registered with the
// caller's details (hidden from the wall token), cannot be resolved before
// its analysis, solution and feedback are recorded, goes on site, and is
// called back by customer service (an operator; not the engineer who did
// the work); 不满意 reopens it as a re-repair.
func TestComplaintRegisterOnSiteAndCallback(t *testing.T) {
	srv, _ := rulesServer(t)
	const engineer, operator, wall = "engineer-token-1234", "operator-token-1234", "wall-token-123456"
	code, body := callAs(t, operator, "POST", srv.URL+"/api/v1/workorders", `{"type": "complaint", "category": "plumbing",
		"description": "楼上漏水到我家天花板", "room": "3-1201", "channel": "wechat", "caller_name": "李华", "caller_phone": "13812345678"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var wo struct {
		ID               int64
		Type             string
		FirstResponsible string `json:"first_responsible"`
		Channel          string
	}
	json.Unmarshal([]byte(body), &wo)
	if wo.Type != "complaint" || wo.Channel != "wechat" || wo.FirstResponsible != "wang.li" {
		t.Fatalf("registered: %s", body)
	}
	u := fmt.Sprintf("%s/api/v1/workorders/%d", srv.URL, wo.ID)
	for _, c := range []struct {
		token, method, path, body string
		code                      int
		want                      string
	}{
		{operator, "POST", "", `{"type": "gossip", "category": "plumbing", "description": "x", "room": "1"}`, 400, `type \"gossip\" is not a work-order type`},
		{operator, "POST", "", `{"category": "plumbing", "description": "x", "room": "1", "channel": "fax"}`, 400, `channel \"fax\" is not a channel`},
		{operator, "POST", "", `{"category": "gardening", "description": "x", "room": "1"}`, 400, `category \"gardening\" is not configured; fix: one of`},
		{engineer, "POST", "/transition", `{"to": "accepted"}`, 200, `"status": "accepted"`},
		{engineer, "POST", "/transition", `{"to": "on_site"}`, 200, `"status": "on_site"`},
		{engineer, "POST", "/transition", `{"to": "resolved"}`, 409, "a complaint is resolved once its analysis, solution and feedback are recorded"},
		{engineer, "PATCH", "", `{"analysis": "1301 卫生间防水层破损", "solution": "1301 重做防水，1201 天花板修补", "feedback": "已电话告知业主处理结果"}`, 200, `"analysis": "1301`},
		{engineer, "POST", "/transition", `{"to": "resolved"}`, 200, `"status": "resolved"`},
		{engineer, "POST", "/transition", `{"to": "callback_done"}`, 400, "a call-back is recorded with its outcome"},
		{engineer, "POST", "/callback", `{"outcome": "satisfied"}`, 403, "needs the operator role"},
		{engineer, "POST", "/transition", `{"to": "closed", "note": "busy"}`, 403, "close one without its call-back"},
		{operator, "POST", "/callback", `{"outcome": "great"}`, 400, "outcome must be satisfied"},
		{operator, "POST", "/callback", `{"outcome": "unsatisfied"}`, 400, "a reason is required"},
		{operator, "POST", "/callback", `{"outcome": "unsatisfied", "note": "天花板仍有水渍"}`, 200, `"reworks": 1`},
		{operator, "POST", "/callback", `{"outcome": "satisfied"}`, 409, "a in_progress work order cannot become callback_done"},
		{engineer, "POST", "/transition", `{"to": "resolved"}`, 200, `"status": "resolved"`},
		{operator, "POST", "/callback", `{"outcome": "fairly_satisfied", "note": "基本满意"}`, 200, `"status": "callback_done"`},
	} {
		url := u + c.path
		if c.method == "POST" && c.path == "" {
			url = srv.URL + "/api/v1/workorders"
		}
		code, body := callAs(t, c.token, c.method, url, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s\nwant %d %s", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
	_, full := callAs(t, operator, "GET", u, "")
	for _, want := range []string{`"on_site_at": "2`, `"outcome": "unsatisfied"`, `"outcome": "fairly_satisfied"`, `"callback_due": "2`} {
		if !strings.Contains(full, want) {
			t.Errorf("the order lacks %s: %s", want, full)
		}
	}
	// The wall token sees the order, never who called, their phone, room or
	// what people wrote.
	for _, path := range []string{"/api/v1/workorders", fmt.Sprintf("/api/v1/workorders/%d", wo.ID), "/api/v1/workorders/review"} {
		_, got := callAs(t, wall, "GET", srv.URL+path, "")
		for _, secret := range []string{"13812345678", "李华", "3-1201", "防水层", "天花板仍有水渍"} {
			if strings.Contains(got, secret) {
				t.Errorf("%s shows %s to the wall: %s", path, secret, got)
			}
		}
	}
	_, k := callAs(t, operator, "GET", srv.URL+"/api/v1/kpis", "")
	var kpis struct {
		CallbackRate struct {
			Value  *float64
			Target float64
			Met    *bool
		} `json:"callback_rate"`
		ReworkRate *float64 `json:"rework_rate"`
	}
	json.Unmarshal([]byte(k), &kpis)
	if kpis.CallbackRate.Value == nil || *kpis.CallbackRate.Value != 1 || kpis.CallbackRate.Target != 0.95 || !*kpis.CallbackRate.Met ||
		kpis.ReworkRate == nil || *kpis.ReworkRate != 1 {
		t.Fatalf("KPIs: %s", k)
	}
}

// The service endpoints: the alarm-system health for anyone with a token,
// the monthly report (residents' complaints in it) for engineers and above,
// as HTML or a workbook; bad months and formats are 400s that say why.
func TestMonthlyReportAndAlarmKPIsEndpoints(t *testing.T) {
	assets := []collectors.Asset{{ID: "pump", Kind: "pump_room", Building: "B3"}}
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	below := 0.15
	cfg := rules.Config{Rules: []rules.Rule{{ID: "low-pressure", Target: rules.Target{Kind: "pump_room"}, Field: "p",
		Threshold: &rules.Threshold{Below: &below}, Priority: rules.High}}}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wcfg := workorder.Config{Categories: []workorder.Category{{ID: "plumbing", NameZH: "给排水维修", Resolution: 4 * time.Hour}}}
	wo := workorder.NewService(wcfg, assets, store, log, time.Now)
	e := rules.NewEngine(cfg, assets, rules.Deps{Store: store, OnFire: wo, Log: log, Now: time.Now})
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.Process([]collectors.Point{{Asset: "pump", Field: "p", Value: collectors.Float(0.05), Quality: collectors.QualityGood}})
	if _, err := wo.Create(t.Context(), workorder.WorkOrder{Type: workorder.Complaint, Category: "plumbing", Room: "3-1201", Description: "楼上漏水到我家"}, "chen.jing"); err != nil {
		t.Fatal(err)
	}
	equip := rules.NewEquipment(e, store)
	health := alarmkpi.New(alarmkpi.Config{}, store, e, time.Local, time.Now)
	api := NewAPI(Deps{State: collectors.NewState(assets), Gatherer: prometheus.NewRegistry(), Log: log})
	api.MountService(Service{Health: health, Categories: wcfg.Categories, Monthly: monthly.New(monthly.Deps{Orders: store, Equipment: equip, Alarms: health,
		Incidents: store, Assets: assets, Config: wcfg, Site: "御山花园", Now: time.Now})})
	api.UseAuth(testAuth(t))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	month := time.Now().Format("2006-01")
	const engineer, wall = "engineer-token-1234", "wall-token-123456"
	for _, c := range []struct {
		token, path string
		code        int
		want        string
	}{
		{wall, "/api/v1/alarm-kpis", 200, `"alarms": 1`},
		{wall, "/api/v1/alarm-kpis?from=2026-11-02&to=2026-11-01", 400, "to must be after from"},
		{wall, "/api/v1/alarm-kpis?from=2020-01-01&to=2026-01-01", 400, "longer than a year"},
		{wall, "/api/v1/workorder-categories", 200, `"resolution_seconds": 14400`},
		{wall, "/api/v1/reports/monthly?month=" + month, 403, "needs the engineer role"},
		{engineer, "/api/v1/reports/monthly?month=2026-13", 400, "is not YYYY-MM"},
		{engineer, "/api/v1/reports/monthly?month=2999-01", 400, "has not begun"},
		{engineer, "/api/v1/reports/monthly?month=" + month + "&format=pdf", 400, "format pdf is not html or xlsx"},
		{engineer, "/api/v1/reports/monthly?month=" + month, 200, "御山花园 物业服务月报"},
	} {
		code, body := callAs(t, c.token, "GET", srv.URL+c.path, "")
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %.300s\nwant %d %s", c.path, code, body, c.code, c.want)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/reports/monthly?format=xlsx&month="+month, nil)
	req.Header.Set("Authorization", "Bearer "+engineer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	f, err := excelize.OpenReader(resp.Body)
	if err != nil || resp.Header.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("workbook: %v, %s", err, resp.Header.Get("Content-Type"))
	}
	defer f.Close()
	if v, _ := f.GetCellValue(monthly.SheetComplaints, "B2"); v != "1" {
		t.Errorf("complaints in the workbook: %q, want 1", v)
	}
}
