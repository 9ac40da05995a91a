package monthly_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/maintenance"
	. "github.com/propgate/gateway/rules/monthly"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

var bg = context.Background()

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }
func (c *clock) at(s string) {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	c.t = t
}

var assets = []collectors.Asset{
	{ID: "b3-panel", Kind: "distribution_panel", Name: "B3 低压配电室"},
	{ID: "b3-leak", Kind: "water_sensor", Name: "B3 泵房漏水传感器"},
	{ID: "b3-pump", Kind: "pump_room", Name: "B3 二次供水泵房"},
}

func config() workorder.Config {
	cfg := workorder.Config{
		Categories: []workorder.Category{
			{ID: "plumbing", NameZH: "给排水维修", Resolution: 4 * time.Hour},
			{ID: "electrical", NameZH: "供配电维修", Resolution: 4 * time.Hour},
			{ID: "lighting", NameZH: "公共照明", Resolution: 24 * time.Hour},
			{ID: "fire_safety", NameZH: "消防设施", Resolution: 24 * time.Hour, Arrival: 2 * time.Minute},
		},
		Calendar: workorder.Calendar{TimeZone: "UTC"},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return cfg
}

// month drives a November of work orders, alarms and call-backs through
// the real service, engine and SQLite store on a known clock, and returns
// the report built on 1 December. The figures the tests check are counted
// by hand from this script (see the comments).
func month(t *testing.T) (*Report, *workorder.KPIs) {
	t.Helper()
	b, _, _ := monthSite(t)
	r, err := b.Build(bg, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	return r, r.KPIs
}

// monthSite is month's site: the report builder, the engine and the clock
// (at 1 December, 09:00).
func monthSite(t *testing.T) (*Builder, *rules.Engine, *clock) {
	t.Helper()
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := &clock{}
	c.at("2026-11-01 00:00")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config()
	svc := workorder.NewService(cfg, assets, store, log, c.now)
	rc := rules.Config{Rules: []rules.Rule{
		{ID: "comm-lost", Name: "Controller not answering", NameZH: "设备控制器通讯中断", Target: rules.Target{Kind: "distribution_panel"}, Field: "comm_lost",
			State: &rules.StateMatch{Equals: true}, Priority: rules.High, Fault: true},
		{ID: "leak", Name: "Leak", NameZH: "检测到漏水", Target: rules.Target{Kind: "water_sensor"}, Field: "leak", State: &rules.StateMatch{Equals: true}, Priority: rules.Critical},
	}}
	rc.SetDefaults()
	if err := rc.Validate(assets); err != nil {
		t.Fatal(err)
	}
	e := rules.NewEngine(rc, assets, rules.Deps{Store: store, Log: log, Now: c.now})
	if err := e.Load(bg); err != nil {
		t.Fatal(err)
	}
	must := func(w *workorder.WorkOrder, err error) *workorder.WorkOrder {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	mv := func(id int64, to workorder.Status, when string) {
		t.Helper()
		c.at(when)
		must(svc.Transition(bg, id, to, "wang.li", "note"))
	}
	cb := func(id int64, outcome, note, when string) {
		t.Helper()
		c.at(when)
		must(svc.Callback(bg, id, outcome, note, "chen.jing"))
	}
	assign := func(id int64, who string) {
		must(svc.Update(bg, id, workorder.Update{Assignee: &who}, "chen.jing"))
	}
	open := func(w workorder.WorkOrder, when string) int64 {
		t.Helper()
		c.at(when)
		if w.Priority == "" {
			w.Priority = rules.Medium // respond within 1 h
		}
		return must(svc.Create(bg, w, "chen.jing")).ID
	}

	// 1. A repair, on time throughout, called back the next morning: satisfied.
	o1 := open(workorder.WorkOrder{Category: "plumbing", Room: "3-1201", Description: "厨房水龙头漏水"}, "2026-11-02 09:00")
	mv(o1, workorder.Accepted, "2026-11-02 09:10")
	mv(o1, workorder.Resolved, "2026-11-02 11:00") // due 13:10
	cb(o1, workorder.Satisfied, "", "2026-11-03 10:00")
	// 2. Lighting (24 h from acceptance), resolved late on a Saturday; the
	// call-back is due the next working day, Monday; unsatisfied: re-repair,
	// resolved in time, called back within three days: satisfied.
	o2 := open(workorder.WorkOrder{Category: "lighting", Location: "B3 大堂", Description: "大堂灯不亮"}, "2026-11-06 15:00")
	assign(o2, "wang.li")
	mv(o2, workorder.Accepted, "2026-11-06 15:30")
	mv(o2, workorder.Resolved, "2026-11-07 17:00") // due 11-07 15:30: late
	cb(o2, workorder.Unsatisfied, "仍有一盏不亮", "2026-11-09 16:00")
	mv(o2, workorder.Resolved, "2026-11-10 10:00") // re-repair due 11-10 16:00
	cb(o2, workorder.Satisfied, "", "2026-11-12 10:00")
	// 3. A complaint, handled through 002's steps, never called back.
	o3 := open(workorder.WorkOrder{Type: workorder.Complaint, Category: "plumbing", Room: "3-1202", CallerName: "李华", CallerPhone: "13812345678",
		Channel: "wechat", Description: "楼上漏水"}, "2026-11-10 09:00")
	mv(o3, workorder.Accepted, "2026-11-10 09:05")
	a, s, f := "防水层破损", "重做防水", "已告知业主"
	must(svc.Update(bg, o3, workorder.Update{Analysis: &a, Solution: &s, Feedback: &f}, "chen.jing"))
	mv(o3, workorder.Resolved, "2026-11-10 12:00")
	// 4. A repair closed without its call-back (the resident declined).
	o4 := open(workorder.WorkOrder{Category: "electrical", Room: "5-0301", Description: "插座跳闸"}, "2026-11-16 09:00")
	mv(o4, workorder.Accepted, "2026-11-16 09:20")
	mv(o4, workorder.Resolved, "2026-11-16 10:00")
	mv(o4, workorder.Closed, "2026-11-16 10:05")
	// 5. An emergency call for help (fire safety: on site within 2 min),
	// there in 3: late; resolved; called back on the Monday: fairly satisfied.
	o5 := open(workorder.WorkOrder{Type: workorder.Help, Category: "fire_safety", Priority: rules.Critical, Location: "B5 12F", Description: "烟感报警，业主求助"}, "2026-11-20 08:00")
	assign(o5, "wang.li")
	mv(o5, workorder.Accepted, "2026-11-20 08:01")
	mv(o5, workorder.OnSite, "2026-11-20 08:03")
	mv(o5, workorder.Resolved, "2026-11-20 08:30")
	cb(o5, workorder.FairlySatisfied, "", "2026-11-23 08:00")
	// 6. A repair on the pump room nobody accepted: late on both counts.
	open(workorder.WorkOrder{Category: "plumbing", Asset: "b3-pump", Description: "水泵异响"}, "2026-11-25 09:00")
	// 7. A drill's order and 8. a cancelled duplicate: in no rate.
	open(workorder.WorkOrder{Category: "plumbing", Location: "B3", Description: "[演练] 水浸", Drill: true}, "2026-11-26 09:00")
	o8 := open(workorder.WorkOrder{Category: "plumbing", Location: "B3", Description: "重复"}, "2026-11-27 09:00")
	mv(o8, workorder.Cancelled, "2026-11-27 09:10")

	// The panel's controller stops answering for 7 h 12 min (a device
	// fault); the leak sensor reports water for 10 h (it works: no fault).
	pt := func(asset, field string, v bool, when string) {
		c.at(when)
		e.Process([]collectors.Point{{Asset: asset, Field: field, Value: collectors.Bool(v), Quality: collectors.QualityGood}})
	}
	pt("b3-panel", "comm_lost", true, "2026-11-15 10:00")
	pt("b3-panel", "comm_lost", false, "2026-11-15 17:12")
	pt("b3-leak", "leak", true, "2026-11-18 00:00")
	pt("b3-leak", "leak", false, "2026-11-18 10:00")

	// The emergencies: a real mains outage on the 15th, the flooding plan's
	// drill on the 26th (its order is 7 above), and one of October's (not
	// this month's). The fire plan's drill fell due on the 20th and was not held.
	for _, in := range []playbook.Incident{
		{Playbook: "mains-outage", Name: "市电停电", Status: "closed", Started: time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)},
		{Playbook: "flooding", Name: "水浸", Drill: true, Status: "closed", Started: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)},
		{Playbook: "flooding", Name: "水浸", Status: "closed", Started: time.Date(2026, 10, 30, 9, 0, 0, 0, time.UTC)},
	} {
		if err := store.CreateIncident(bg, &in); err != nil {
			t.Fatal(err)
		}
	}
	six := playbook.Interval{Months: 6}
	last, next := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), time.Date(2027, 5, 26, 10, 0, 0, 0, time.UTC)
	fireLast, fireNext := time.Date(2026, 5, 20, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	plans := plansList{
		{Playbook: playbook.Playbook{ID: "fire", Name: "火警", Drill: &playbook.DrillSchedule{Every: six}}, LastDrill: &fireLast, NextDrill: &fireNext},
		{Playbook: playbook.Playbook{ID: "flooding", Name: "水浸", Drill: &playbook.DrillSchedule{Every: six}}, LastDrill: &last, NextDrill: &next},
		{Playbook: playbook.Playbook{ID: "mains-outage", Name: "市电停电"}},
	}

	c.at("2026-12-01 09:00")
	equip := rules.NewEquipment(e, store)
	b := New(Deps{Orders: store, Equipment: equip, Alarms: alarmkpi.New(alarmkpi.Config{}, store, e, time.UTC, c.now), Incidents: store, Plans: plans,
		Maintenance: pmCounts{}, Assets: assets, Config: cfg, Site: "御山花园", Now: c.now})
	return b, e, c
}

// plansList is the runner's plans with their drill calendars.
type plansList []playbook.PlaybookInfo

func (p plansList) Playbooks() []playbook.PlaybookInfo { return p }

// pmCounts is the month's PM items as maintenance.Service counts them
// (its own tests check the counting): 4 opened in November, 3 done.
type pmCounts struct{}

func (pmCounts) Counts(_ context.Context, from, to time.Time) (*maintenance.Counts, error) {
	if from.Month() != time.November || to.Month() != time.December || from.Day() != 1 || to.Day() != 1 {
		return nil, fmt.Errorf("asked for %s – %s, not November", from, to)
	}
	rate := 0.75
	return &maintenance.Counts{From: from, To: to, Opened: 4, Done: 3, DoneOnTime: 2, Overdue: 1, CompletionRate: &rate}, nil
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func val(t *testing.T, name string, k workorder.KPI) float64 {
	t.Helper()
	if k.Value == nil {
		t.Fatalf("%s: no value", name)
	}
	return *k.Value
}

// The KPIs against hand-computed figures: drills and cancellations out,
// late ones as counted above, call-backs as made.
func TestMonthOfOrdersKPIs(t *testing.T) {
	r, k := month(t)
	// Six counted orders (1–6); the drill's and the cancelled one in neither.
	if k.WorkOrders != 6 || k.Drills != 1 || k.Cancelled != 1 || k.Handled != 5 {
		t.Fatalf("orders %d, drills %d, cancelled %d, handled %d; want 6, 1, 1, 5", k.WorkOrders, k.Drills, k.Cancelled, k.Handled)
	}
	for _, c := range []struct {
		name   string
		k      workorder.KPI
		want   float64
		of     int
		target float64
		met    bool
	}{
		{"handling", k.HandlingRate, 5.0 / 6, 6, 1, false},
		{"response on time", k.ResponseOnTimeRate, 5.0 / 6, 6, 0.95, false},     // 6 never accepted
		{"resolution on time", k.ResolutionOnTimeRate, 4.0 / 6, 6, 0.95, false}, // 2 late (first time), 6 open past due
		{"arrival on time", k.ArrivalOnTimeRate, 0, 1, 1, false},                // 5: 3 min for a 2-min fire call
		{"mean time to arrive", k.MeanTimeToArrive, 180, 1, 180, true},          // 3 min ≤ 3 min
		{"call-back", k.CallbackRate, 3.0 / 5, 5, 0.95, false},                  // 1, 2, 5 of 1, 2, 3 (overdue), 4 (skipped), 5
		{"good order", k.GoodOrder, 1 - 7.2/(3*720), 3, 0.98, true},             // 7.2 h of 3 assets × 720 h
	} {
		if v := val(t, c.name, c.k); !near(v, c.want) || c.k.Of != c.of || c.k.Target != c.target || *c.k.Met != c.met {
			t.Errorf("%s: %v of %d, target %v, met %v; want %v of %d, target %v, met %v", c.name, v, c.k.Of, c.k.Target, *c.k.Met, c.want, c.of, c.target, c.met)
		}
	}
	cbs := k.Callbacks
	if cbs.Done != 3 || cbs.Due != 5 || cbs.Satisfied != 2 || cbs.FairlySatisfied != 1 || cbs.Unsatisfied != 1 || cbs.Skipped != 1 || cbs.Overdue != 1 || cbs.Late != 0 {
		t.Errorf("call-backs %+v", cbs)
	}
	if k.ReworkRate == nil || !near(*k.ReworkRate, 1.0/5) {
		t.Errorf("re-repair rate %v, want 1/5", k.ReworkRate)
	}
	if !near(k.Availability["distribution_panel"], 1-7.2/720) || k.Availability["water_sensor"] != 1 {
		t.Errorf("good order per kind %v: the leak sensor reporting water is in good order", k.Availability)
	}
	// Late orders by category and by person.
	byCat := map[string]BreachRow{}
	for _, b := range r.BreachesByCategory {
		byCat[b.Key] = b
	}
	if p := byCat["plumbing"]; p.Orders != 3 || p.Late != 1 || p.ResponseLate != 1 || p.ResolutionLate != 1 || p.NameZH != "给排水维修" {
		t.Errorf("plumbing %+v", p)
	}
	if l, f := byCat["lighting"], byCat["fire_safety"]; l.Late != 1 || l.ResolutionLate != 1 || f.Late != 1 || f.ArrivalLate != 1 || byCat["electrical"].Late != 0 {
		t.Errorf("by category %+v", r.BreachesByCategory)
	}
	if p := r.BreachesByPerson; len(p) != 2 || p[0].Key != "wang.li" || p[0].Orders != 2 || p[0].Late != 2 || p[1].Key != "chen.jing" || p[1].Orders != 4 || p[1].Late != 1 {
		t.Errorf("by person %+v", p)
	}
	if len(r.Reworks) != 1 || r.Reworks[0].Reworks != 1 || r.Reworks[0].Outcome != "满意" {
		t.Errorf("re-repairs %+v", r.Reworks)
	}
	if c := r.Complaints; c.Total != 1 || c.Handled != 1 || c.CalledBack != 0 || len(c.ByChannel) != 1 || c.ByChannel[0].NameZH != "微信" {
		t.Errorf("complaints %+v", c)
	}
	if a := r.TopAssets; len(a) != 3 || a[0].Asset != "b3-panel" || a[0].Faults != 1 || !near(a[0].DownHours, 7.2) || a[0].Alarms != 1 ||
		a[1].Asset != "b3-pump" || a[1].WorkOrders != 1 || a[2].Asset != "b3-leak" || a[2].Faults != 0 || a[2].Alarms != 1 {
		t.Errorf("top assets %+v", a)
	}
	if r.Health == nil || r.Health.Alarms != 2 || len(r.AlarmsByType) != 2 {
		t.Errorf("alarms %+v", r.AlarmsByType)
	}
	// Emergencies and drills: October's flood not counted; the fire plan's
	// drill due and not held.
	if in := r.Incidents; len(in) != 2 || in[0].Playbook != "flooding" || in[0].Drills != 1 || in[0].Real != 0 || in[1].Playbook != "mains-outage" || in[1].Real != 1 {
		t.Errorf("incidents %+v", in)
	}
	if d := r.Drills; len(d) != 3 || d[0].Playbook != "fire" || d[0].Held != 0 || !d[0].Due || d[0].Every != "6mo" ||
		d[1].Playbook != "flooding" || d[1].Held != 1 || d[1].Due || d[2].Every != "" || d[2].Due {
		t.Errorf("drills %+v", d)
	}
}

// The workbook opened and read back: one sheet per section, the figures as
// numbers.
func TestMonthlyWorkbookReadBack(t *testing.T) {
	r, _ := month(t)
	var buf bytes.Buffer
	if err := r.XLSX(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []string{SheetKPIs, SheetBreaches, SheetReworks, SheetComplaints, SheetAlarms, SheetDrills, SheetAssets, SheetHealth, SheetPM}
	if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sheets %v, want %v", got, want)
	}
	rows, err := f.GetRows(SheetKPIs, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	figures := map[string][]string{}
	for _, row := range rows {
		if len(row) > 0 {
			figures[row[0]] = row
		}
	}
	num := func(name string, col int) float64 {
		t.Helper()
		row := figures[name]
		if len(row) <= col {
			t.Fatalf("no %s in the KPI sheet: %v", name, rows)
		}
		v, err := strconv.ParseFloat(row[col], 64)
		if err != nil {
			t.Fatalf("%s: %q is not a number", name, row[col])
		}
		return v
	}
	if v := num("处理率", 2); math.Abs(v-5.0/6) > 1e-4 || figures["处理率"][4] != "未达标 not met" {
		t.Errorf("处理率 %v %v", v, figures["处理率"])
	}
	if v := num("回访率", 2); math.Abs(v-0.6) > 1e-4 {
		t.Errorf("回访率 %v", v)
	}
	if v := num("设备完好率", 2); math.Abs(v-(1-7.2/2160)) > 1e-4 || figures["设备完好率"][4] != "达标 met" {
		t.Errorf("设备完好率 %v %v", v, figures["设备完好率"])
	}
	if v := num("平均到场时间", 2); v != 180 {
		t.Errorf("平均到场时间 %v", v)
	}
	if v := num("工单总数", 2); v != 6 {
		t.Errorf("工单总数 %v", v)
	}
	// Shares are stored as numbers with a percentage format.
	if s, _ := f.GetCellValue(SheetKPIs, "C3"); s != "83.33%" {
		t.Errorf("C3 shows %q, want 83.33%%", s)
	}
	br, _ := f.GetRows(SheetBreaches)
	if len(br) < 2 || br[1][0] != "给排水维修" || br[1][1] != "3" || br[1][2] != "1" {
		t.Errorf("late orders sheet %v", br)
	}
	// PM completion feeds the report (维保计划执行).
	pm, _ := f.GetRows(SheetPM)
	if len(pm) != 2 || strings.Join(pm[1], ",") != "4,3,2,1,0,0,75.00%" {
		t.Errorf("PM sheet %v", pm)
	}
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "维保计划执行") || !strings.Contains(page.String(), `<td class="n">75.0%</td>`) {
		t.Errorf("the HTML report has no PM section")
	}
}
