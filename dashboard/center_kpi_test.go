package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/internal/centerkpi"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/testenv"
	"github.com/propgate/gateway/rules/workorder"
)

// kpiOrders are two sites' work orders as they replicate them. November
// 2026 in Asia/Shanghai; the figures are judged at the month's end (now
// is in December). Expected, by the site's definitions:
//
//	north-1: orders 1, 2, 3 and 5 count (4 is a drill; 5 was created at
//	00:30 on 1 November in Shanghai, 31 October in UTC); handled 3/4;
//	accepted on time 3/4 (2 late); resolved on time 2/4 (2 late, 5 open
//	past its deadline); emergencies on site in time 1/1 in 120 s;
//	call-backs 1 of 2 due (2's is overdue); late orders 2.
//	south-2: order 1 counts (2 cancelled): every rate 1/1, no emergency.
//	total: handled 4/5, responses 4/5, repairs on time 3/5, call-backs 2/3.
//
// Open now (5 December 10:00): north-1's 5 (resolution past due) and 6
// (within its deadlines); south-2's 3 (not accepted past its response
// deadline), 4 (in progress past its resolution deadline), 5 (a drill).
func kpiOrders(t *testing.T) map[string][]workorder.WorkOrder {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cb := func(s, outcome string) []workorder.Callback {
		return []workorder.Callback{{At: at(s), By: "li.na", Outcome: outcome}}
	}
	return map[string][]workorder.WorkOrder{
		"north-1": {
			{ID: 1, Type: workorder.Repair, Status: workorder.CallbackDone, Created: at("2026-11-03 09:00"), ResponseDue: at("2026-11-03 09:30"), AcceptedAt: at("2026-11-03 09:10"),
				ResolutionDue: at("2026-11-03 13:10"), ResolvedAt: at("2026-11-03 11:00"), CallbackDue: at("2026-11-04 11:00"), Callbacks: cb("2026-11-04 10:00", workorder.Satisfied)},
			{ID: 2, Type: workorder.Complaint, Status: workorder.Resolved, Created: at("2026-11-10 10:00"), ResponseDue: at("2026-11-10 10:30"), AcceptedAt: at("2026-11-10 11:00"),
				ResolutionDue: at("2026-11-11 11:00"), ResolvedAt: at("2026-11-12 09:00"), ResolvedLate: true, CallbackDue: at("2026-11-15 09:00")},
			{ID: 3, Type: workorder.Fault, Source: "rule", Status: workorder.Closed, Created: at("2026-11-20 08:00"), ResponseDue: at("2026-11-20 08:05"), AcceptedAt: at("2026-11-20 08:01"),
				ArrivalDue: at("2026-11-20 08:03"), OnSiteAt: at("2026-11-20 08:02"), ResolutionDue: at("2026-11-20 12:00"), ResolvedAt: at("2026-11-20 10:00")},
			{ID: 4, Type: workorder.Repair, Drill: true, Status: workorder.Accepted, Created: at("2026-11-21 08:00"), ResponseDue: at("2026-11-21 08:05"), ResolutionDue: at("2026-11-21 09:00")},
			{ID: 5, Type: workorder.Repair, Status: workorder.Accepted, Created: at("2026-11-01 00:30"), ResponseDue: at("2026-11-01 01:00"), AcceptedAt: at("2026-11-01 00:40"),
				ResolutionDue: at("2026-11-01 04:40")},
			{ID: 6, Type: workorder.Repair, Status: workorder.Opened, Created: at("2026-12-05 09:00"), ResponseDue: at("2026-12-05 10:30"), ResolutionDue: at("2026-12-05 14:00")},
			{ID: 7, Type: workorder.Repair, Status: workorder.Closed, Created: at("2026-10-31 23:50"), ResponseDue: at("2026-11-01 00:20"), ResolutionDue: at("2026-11-01 04:00")},
		},
		"south-2": {
			{ID: 1, Type: workorder.Help, Status: workorder.CallbackDone, Created: at("2026-11-15 14:00"), ResponseDue: at("2026-11-15 14:30"), AcceptedAt: at("2026-11-15 14:05"),
				ResolutionDue: at("2026-11-15 18:05"), ResolvedAt: at("2026-11-15 16:00"), CallbackDue: at("2026-11-16 16:00"), Callbacks: cb("2026-11-16 09:00", workorder.FairlySatisfied)},
			{ID: 2, Type: workorder.Repair, Status: workorder.Cancelled, Created: at("2026-11-16 14:00"), ResponseDue: at("2026-11-16 14:30"), ResolutionDue: at("2026-11-16 18:00")},
			{ID: 3, Type: workorder.Repair, Status: workorder.Dispatched, Created: at("2026-12-05 08:00"), ResponseDue: at("2026-12-05 08:30"), ResolutionDue: at("2026-12-05 12:30")},
			{ID: 4, Type: workorder.Repair, Status: workorder.InProgress, Created: at("2026-12-04 08:00"), ResponseDue: at("2026-12-04 08:30"), AcceptedAt: at("2026-12-04 08:10"),
				ResolutionDue: at("2026-12-05 09:00")},
			{ID: 5, Type: workorder.Repair, Drill: true, Status: workorder.Opened, Created: at("2026-12-05 07:00"), ResponseDue: at("2026-12-05 07:30"), ResolutionDue: at("2026-12-05 08:00")},
		},
	}
}

func ptr(v float64) *float64 { return &v }

func nearPtr(a *float64, want float64) bool { return a != nil && math.Abs(*a-want) < 1e-9 }

// The center computes each site's figures from the replicated work
// orders as the site does, per site and in total, in the company's time
// zone; a user scoped to one site sees only it and a total over it; the
// overview counts each site's open orders past a deadline; the monthly
// report renders in Chinese (HTML) and as a workbook with a row per site
// and the total.
func TestCenterKPIsIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	center, err := postgres.OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer center.Close()
	received := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	seq := map[string]int64{}
	apply := func(site, key string, doc []byte) {
		seq[site]++
		e := replication.Event{V: replication.Version, Site: site, Seq: seq[site], Kind: replication.KindWorkOrder, Key: key, At: received, Op: "upsert", Doc: doc}
		if _, err := center.Apply(ctx, e, received); err != nil {
			t.Fatal(err)
		}
	}
	for site, ws := range kpiOrders(t) {
		for _, w := range ws {
			first := w
			first.Status, first.AcceptedAt, first.ResolvedAt, first.Callbacks = workorder.Opened, time.Time{}, time.Time{}, nil
			b, _ := json.Marshal(first) // an older version first: the center keeps the newest
			apply(site, jsonInt(w.ID), b)
			b, _ = json.Marshal(w)
			apply(site, jsonInt(w.ID), b)
		}
	}
	apply("north-1", "bad", []byte(`{"id":"x","created":"2026-11-05T00:00:00Z"}`)) // not a work order: left out, counted
	// Equipment in good order, as each site sends it per day: north-1 1 h
	// of a pump down on the 10th over two assets; south-2 10 % of a day;
	// days outside November are left out.
	good := func(site, day string, assetSeconds, down float64) {
		b, _ := json.Marshal(replication.GoodOrderDay{Day: day, AssetSeconds: assetSeconds, DownSeconds: down,
			Kinds: map[string]replication.GoodOrderTime{"pump_room": {AssetSeconds: assetSeconds / 2, DownSeconds: down}, "elevator": {AssetSeconds: assetSeconds / 2}}})
		seq[site]++
		e := replication.Event{V: replication.Version, Site: site, Seq: seq[site], Kind: replication.KindGoodOrder, Key: day, At: received, Op: "upsert", Doc: b}
		if _, err := center.Apply(ctx, e, received); err != nil {
			t.Fatal(err)
		}
	}
	good("north-1", "2026-10-31", 172800, 86400)
	good("north-1", "2026-11-10", 172800, 7200) // sent again below with the day's final figure
	good("north-1", "2026-11-10", 172800, 3600)
	good("north-1", "2026-11-11", 172800, 0)
	good("south-2", "2026-11-15", 86400, 8640)
	good("south-2", "2026-12-01", 86400, 86400)

	now := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC) // 10:00 in Shanghai
	sh, _ := time.LoadLocation("Asia/Shanghai")
	known := []replication.SiteInfo{{ID: "north-1", Name: "北一花园", Region: "北区"}, {ID: "south-2", Name: "南二广场", Region: "南区"}, {ID: "east-3", Name: "东三苑"}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &API{mux: http.NewServeMux()}
	a.MountCenter(Center{Store: center, OfflineAfter: time.Hour, Now: func() time.Time { return now }, Log: log, Sites: known}, true)
	a.MountCenterKPIs(CenterKPIs{Months: centerkpi.New(center, centerkpi.Config{Location: sh, Sites: known}, func() time.Time { return now }),
		Sites: center, Known: known, Now: func() time.Time { return now }, Log: log})
	all := access.Principal{Username: "zhao.min", Role: access.Engineer}
	north := access.Principal{Username: "wang.qiang", Role: access.Operator, Sites: []string{"north-*"}}
	get := func(p access.Principal, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r = r.WithContext(access.WithPrincipal(r.Context(), p))
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, r)
		return w
	}
	month := func(p access.Principal) centerkpi.Month {
		w := get(p, "/api/v1/center/kpis?month=2026-11")
		if w.Code != 200 {
			t.Fatalf("kpis: %d %s", w.Code, w.Body)
		}
		var m centerkpi.Month
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	m := month(all)
	if len(m.Sites) != 3 || m.Sites[0].Site != "east-3" || m.Sites[1].Site != "north-1" || m.Sites[2].Site != "south-2" || m.Sites[1].Name != "北一花园" || m.Sites[1].Region != "北区" {
		t.Fatalf("sites %+v", m.Sites)
	}
	if m.TimeZone != "Asia/Shanghai" || !m.From.Equal(time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)) || m.Partial || m.Undecodable != 1 {
		t.Errorf("month %s from %s partial %v undecodable %d", m.TimeZone, m.From, m.Partial, m.Undecodable)
	}
	type want struct {
		orders, handled, late, cbDue, cbDone     int
		handling, response, resolution, callback float64
		arrival, mtta, good                      *float64
	}
	f := func(v float64) *float64 { return &v }
	check := func(name string, r centerkpi.Row, w want) {
		t.Helper()
		k := r.KPIs
		if k.WorkOrders != w.orders || k.Handled != w.handled || r.Late != w.late || k.Callbacks.Due != w.cbDue || k.Callbacks.Done != w.cbDone {
			t.Errorf("%s: orders %d handled %d late %d call-backs %d/%d; want %+v", name, k.WorkOrders, k.Handled, r.Late, k.Callbacks.Done, k.Callbacks.Due, w)
		}
		if !nearPtr(k.HandlingRate.Value, w.handling) || !nearPtr(k.ResponseOnTimeRate.Value, w.response) || !nearPtr(k.ResolutionOnTimeRate.Value, w.resolution) || !nearPtr(k.CallbackRate.Value, w.callback) {
			t.Errorf("%s: handling %v response %v resolution %v callback %v; want %+v", name, k.HandlingRate.Value, k.ResponseOnTimeRate.Value, k.ResolutionOnTimeRate.Value, k.CallbackRate.Value, w)
		}
		if (w.arrival == nil) != (k.ArrivalOnTimeRate.Value == nil) || w.arrival != nil && !nearPtr(k.ArrivalOnTimeRate.Value, *w.arrival) ||
			(w.mtta == nil) != (k.MeanTimeToArrive.Value == nil) || w.mtta != nil && !nearPtr(k.MeanTimeToArrive.Value, *w.mtta) {
			t.Errorf("%s: arrival %v mean time to arrive %v; want %v %v", name, k.ArrivalOnTimeRate.Value, k.MeanTimeToArrive.Value, w.arrival, w.mtta)
		}
		if k.HandlingRate.Target != 1 || k.CallbackRate.Target != 0.95 || k.GoodOrder.Target != 0.98 || k.MeanTimeToArrive.Target != 180 {
			t.Errorf("%s: targets %+v %+v %+v", name, k.HandlingRate, k.CallbackRate, k.GoodOrder)
		}
		if (w.good == nil) != (k.GoodOrder.Value == nil) || w.good != nil && (!nearPtr(k.GoodOrder.Value, *w.good) || *k.GoodOrder.Met != (*w.good >= 0.98)) {
			t.Errorf("%s: equipment in good order %v (met %v); want %v", name, k.GoodOrder.Value, k.GoodOrder.Met, w.good)
		}
	}
	check("north-1", m.Sites[1], want{orders: 4, handled: 3, late: 2, cbDue: 2, cbDone: 1, handling: 0.75, response: 0.75, resolution: 0.5, callback: 0.5, arrival: f(1), mtta: f(120), good: f(1 - 3600.0/345600)})
	check("south-2", m.Sites[2], want{orders: 1, handled: 1, late: 0, cbDue: 1, cbDone: 1, handling: 1, response: 1, resolution: 1, callback: 1, good: f(0.9)})
	check("total", m.Total, want{orders: 5, handled: 4, late: 2, cbDue: 3, cbDone: 2, handling: 0.8, response: 0.8, resolution: 0.6, callback: 2.0 / 3, arrival: f(1), mtta: f(120),
		good: f(1 - 12240.0/432000)})
	if a := m.Sites[1].KPIs.Availability; !nearPtr(ptr(a["pump_room"]), 1-3600.0/172800) || !nearPtr(ptr(a["elevator"]), 1) || !m.GoodOrderReported {
		t.Errorf("north-1 by asset kind %v, reported %v", a, m.GoodOrderReported)
	}
	if k := m.Sites[1].KPIs; *k.HandlingRate.Met || !*k.ArrivalOnTimeRate.Met || !*k.MeanTimeToArrive.Met || k.Drills != 1 {
		t.Errorf("north-1 verdicts: handling met %v, arrival met %v, drills %d", *k.HandlingRate.Met, *k.ArrivalOnTimeRate.Met, k.Drills)
	}
	if k := m.Sites[2].KPIs; !*k.HandlingRate.Met || k.Cancelled != 1 || k.ArrivalOnTimeRate.Met != nil {
		t.Errorf("south-2: handling met %v cancelled %d arrival %+v", *k.HandlingRate.Met, k.Cancelled, k.ArrivalOnTimeRate)
	}
	if k := m.Sites[0].KPIs; k.WorkOrders != 0 || k.HandlingRate.Value != nil {
		t.Errorf("east-3 (no orders): %+v", k)
	}

	// A user of the north sites: north-1 only, and a total over it alone.
	n := month(north)
	if len(n.Sites) != 1 || n.Sites[0].Site != "north-1" {
		t.Fatalf("north user's sites %+v", n.Sites)
	}
	check("north user's total", n.Total, want{orders: 4, handled: 3, late: 2, cbDue: 2, cbDone: 1, handling: 0.75, response: 0.75, resolution: 0.5, callback: 0.5, arrival: f(1), mtta: f(120),
		good: f(1 - 3600.0/345600)})

	// The overview: open orders past a deadline now, per site.
	w := get(all, "/api/v1/sites")
	var sites []CenterSite
	if err := json.Unmarshal(w.Body.Bytes(), &sites); err != nil || w.Code != 200 {
		t.Fatalf("sites: %d %s", w.Code, w.Body)
	}
	got := map[string]int{}
	for _, s := range sites {
		got[s.Site.Site] = s.SLABreaches
	}
	if len(got) != 2 || got["north-1"] != 1 || got["south-2"] != 2 {
		t.Errorf("SLA breaches %v; want north-1 1 (order 5), south-2 2 (orders 3 and 4)", got)
	}

	if w := get(all, "/api/v1/center/kpis?month=2027-01"); w.Code != http.StatusBadRequest {
		t.Errorf("a month not begun: %d", w.Code)
	}
	if w := get(all, "/api/v1/center/kpis?month=November"); w.Code != http.StatusBadRequest {
		t.Errorf("not YYYY-MM: %d", w.Code)
	}

	// The report: Chinese headings and the figures; the north user's has no south site.
	w = get(all, "/api/v1/center/reports/monthly?month=2026-11")
	html := w.Body.String()
	for _, s := range []string{"集团物业服务月报", "各站点服务指标", "处理率", "回访率", "维修及时率", "设备完好率", "合计", "北一花园", "南二广场",
		`data-kpi="handling_rate">75.0%`, `data-kpi="resolution_on_time_rate">60.0%`, `data-kpi="callback_rate">66.7%`, `data-kpi="mean_time_to_arrive">2m0s`, `data-kpi="good_order">97.2%`, "≥ 95.0%", "按日上报", "Asia/Shanghai"} {
		if !strings.Contains(html, s) {
			t.Errorf("HTML report lacks %q", s)
		}
	}
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Errorf("HTML report: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if h := get(north, "/api/v1/center/reports/monthly?month=2026-11").Body.String(); strings.Contains(h, "南二广场") || !strings.Contains(h, "北一花园") {
		t.Error("the north user's report shows another region's site")
	}
	w = get(all, "/api/v1/center/reports/monthly?month=2026-11&format=xlsx")
	if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Disposition"), "center-monthly-report-2026-11.xlsx") {
		t.Fatalf("XLSX: %d %v", w.Code, w.Header())
	}
	x, err := excelize.OpenReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(centerkpi.SheetKPIs, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 7 || !strings.HasPrefix(rows[1][3], "处理率") || rows[3][0] != "东三苑" || rows[4][0] != "北一花园" || rows[4][1] != "北区" || rows[4][2] != "4" ||
		rows[4][3] != "0.75" || rows[5][0] != "南二广场" || rows[5][3] != "1" || !strings.HasPrefix(rows[6][0], "合计") || rows[6][2] != "5" || rows[6][3] != "0.8" ||
		rows[6][len(rows[6])-1] != "2" || rows[4][9] != "120" {
		t.Errorf("KPI sheet rows %q", rows)
	}
	cbs, err := x.GetRows(centerkpi.SheetCallbacks)
	if err != nil || len(cbs) != 5 || cbs[4][4] != "3" || cbs[4][5] != "2" || cbs[2][6] != "1" {
		t.Errorf("call-back sheet %q %v", cbs, err)
	}
	if w := get(all, "/api/v1/center/reports/monthly?month=2026-11&format=pdf"); w.Code != http.StatusBadRequest {
		t.Errorf("format pdf: %d", w.Code)
	}

	// The pages as Chromium shows them to the north user: the wall's card
	// with its SLA breaches and the link to the KPIs; the KPI page's rows.
	a.MountCenterScreens(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mux.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), north)))
	}))
	defer srv.Close()
	ctx, cancel := chromiumTab(t)
	defer cancel()
	var card, link, north1, total, target, title string
	var shot []byte
	if err := chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/?lang=zh"),
		chromedp.WaitVisible(`.sitecard[data-site="north-1"] .breaches`),
		chromedp.Text(`.sitecard[data-site="north-1"]`, &card),
		chromedp.AttributeValue(`#kpilink`, "href", &link, nil),
		chromedp.Navigate(srv.URL+"/static/center-kpis.html?month=2026-11"),
		chromedp.WaitVisible(`#rows tr.total td[data-kpi="handling_rate"]`),
		chromedp.Title(&title),
		chromedp.Text(`#rows tr[data-site="north-1"]`, &north1),
		chromedp.Text(`#rows tr.total`, &total),
		chromedp.Text(`#rows tr.target`, &target),
		chromedp.FullScreenshot(&shot, 100),
	); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "gateway-screenshots") // for people to look at, as rules/monthly's
	if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(filepath.Join(dir, "center-kpis.png"), shot, 0o644) == nil {
		t.Logf("screenshot: %s", filepath.Join(dir, "center-kpis.png"))
	}
	if !strings.Contains(card, "超时未完成工单: 1") || !strings.Contains(link, "center-kpis.html") {
		t.Errorf("wall card %q, link %q", card, link)
	}
	if title != "各站点服务指标" || !strings.Contains(north1, "北一花园") || !strings.Contains(north1, "75.0%") || !strings.Contains(north1, "2m0s") ||
		!strings.Contains(total, "合计") || strings.Contains(total, "80.0%") || !strings.Contains(target, "≥ 95.0%") {
		t.Errorf("KPI page: title %q, north-1 %q, total %q (the north user's: 75.0%%), targets %q", title, north1, total, target)
	}
}

// chromiumTab is a headless Debian Chromium tab (make deps installs it).
func chromiumTab(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("chromium is not installed; run `make deps` (apt-get install chromium)")
		}
	}
	// Not t.TempDir: Chromium's helpers may still be writing the profile
	// when the browser has exited; the directory goes once they are done.
	profile, err := os.MkdirTemp("", "center-kpis-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1400, 900))
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "IPAddressSpace") { // newer Chromium's enum values cdproto does not know
			stdlog.Print(msg) // not t.Log: chromedp may call this after the test
		}
	}))
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	return ctx, func() {
		cancelT()
		cancel()
		cancelAlloc()
		for i := 0; i < 100 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// countingCenter counts the reads of open work orders.
type countingCenter struct {
	*fakeCenter
	reads int
	doc   []byte
}

func (c *countingCenter) Records(_ context.Context, kind, _ string, _ []string, _ int) ([]replication.Record, error) {
	if kind != replication.KindWorkOrder {
		return nil, nil
	}
	c.reads++
	return []replication.Record{{Site: "north-1", Kind: kind, Key: "1", Doc: c.doc}}, nil
}

// The overview's SLA breaches are computed at most every 5 s however many
// walls poll, and again after.
func TestCenterSitesBreachesComputedAtMostEvery5s(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	doc, _ := json.Marshal(workorder.WorkOrder{ID: 1, Status: workorder.Opened, Created: now.Add(-time.Hour), ResponseDue: now.Add(-time.Minute), ResolutionDue: now.Add(time.Hour)})
	c := &countingCenter{fakeCenter: &fakeCenter{}, doc: doc}
	a := &API{mux: http.NewServeMux()}
	a.MountCenter(Center{Store: c, OfflineAfter: time.Minute, Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, false)
	breaches := func() int {
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/sites", nil))
		var sites []CenterSite
		if err := json.Unmarshal(w.Body.Bytes(), &sites); err != nil || len(sites) != 2 || sites[0].Site.Site != "north-1" {
			t.Fatalf("sites: %d %s", w.Code, w.Body)
		}
		return sites[0].SLABreaches
	}
	for range 3 {
		if n := breaches(); n != 1 {
			t.Fatalf("north-1's breaches %d, want 1", n)
		}
		now = now.Add(time.Second)
	}
	if c.reads != 1 {
		t.Errorf("%d reads of the open orders within 3 s, want 1", c.reads)
	}
	now = now.Add(5 * time.Second)
	breaches()
	if c.reads != 2 {
		t.Errorf("%d reads after 8 s, want 2", c.reads)
	}
}
