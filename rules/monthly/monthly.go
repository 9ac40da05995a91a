// Package monthly builds the monthly report (月报) a property office files
// and forwards: the service figures against their targets, late work orders
// by category and by responsible person, re-repairs, the complaints, alarms
// and emergencies by type, the drills held per plan, the ten most faulty
// assets, and the alarm system's health. It renders as printable HTML and
// as an Excel workbook (one sheet per section), Chinese first.
package monthly

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// Orders reads the month's work orders (the store).
type Orders interface {
	WorkOrders(ctx context.Context, f workorder.Filter) ([]*workorder.WorkOrder, error)
}

// Equipment is equipment in good order (rules.Equipment).
type Equipment interface {
	GoodOrder(ctx context.Context, from, to time.Time) (*rules.GoodOrder, error)
}

// AlarmHealth is the alarm system's health (alarmkpi.Health).
type AlarmHealth interface {
	Report(ctx context.Context, from, to time.Time) (*alarmkpi.Report, error)
}

// Incidents reads the incidents (the store).
type Incidents interface {
	Incidents(ctx context.Context, openOnly bool, limit int) ([]*playbook.Incident, error)
}

// Plans lists the emergency plans with their drill calendars (the runner).
type Plans interface {
	Playbooks() []playbook.PlaybookInfo
}

// Maintenance counts the month's preventive-maintenance items
// (maintenance.Service).
type Maintenance interface {
	Counts(ctx context.Context, from, to time.Time) (*maintenance.Counts, error)
}

// Deps are the report's sources; Equipment, Alarms, Incidents, Plans and
// Maintenance may be nil (their sections are then empty).
type Deps struct {
	Orders      Orders
	Equipment   Equipment
	Alarms      AlarmHealth
	Incidents   Incidents
	Plans       Plans
	Maintenance Maintenance
	Assets      []collectors.Asset
	Config      workorder.Config // categories, targets, calendar (the month's time zone)
	Site        string
	Now         func() time.Time
}

// Builder builds monthly reports.
type Builder struct{ d Deps }

// New builds the builder.
func New(d Deps) *Builder {
	d.Config.SetDefaults()
	return &Builder{d: d}
}

// KPIRow is one figure against its target, for the tables.
type KPIRow struct {
	ID     string
	NameZH string
	Name   string
	Value  string
	Target string
	Met    *bool
	Raw    *float64 // the value (a share 0..1, or seconds)
	Unit   string
	Of     int
}

// Count is a labelled count.
type Count struct {
	Key    string
	NameZH string
	Name   string
	N      int
}

// BreachRow is late work orders for one category or person.
type BreachRow struct {
	Key, NameZH                                       string
	Orders, ResponseLate, ArrivalLate, ResolutionLate int
	Late                                              int // orders with any deadline missed
	OnTimeRate                                        *float64
}

// OrderLine is one work order in a list.
type OrderLine struct {
	ID          int64
	Type        string
	Category    string
	Location    string
	Description string
	Responsible string
	Status      string
	Created     time.Time
	Reworks     int
	Outcome     string // the last call-back's outcome, in Chinese
}

// Complaints is the complaints analysis (投诉分析).
type Complaints struct {
	Total, Handled, CalledBack, Satisfied, FairlySatisfied, Unsatisfied int
	ByCategory                                                          []Count
	ByChannel                                                           []Count
	List                                                                []OrderLine
}

// IncidentRow is one plan's emergencies and drills in the month.
type IncidentRow struct {
	Playbook, Name string
	Real, Drills   int
}

// DrillRow is one plan's drill record.
type DrillRow struct {
	Playbook, Name string
	Every          string // the plan's drill interval ("" when it has no calendar)
	Held           int    // drills held this month
	Last, Next     *time.Time
	Due            bool // the next drill is due by the month's end and none was held
}

// AssetRow is one asset in the ten most faulty.
type AssetRow struct {
	Asset, Name, Kind string
	WorkOrders        int // fault and repair orders on it created in the month
	Faults            int // device faults that began in the month
	DownHours         float64
	Alarms            int // alarm firings on it
}

// Report is one site's month.
type Report struct {
	Site               string
	Month              string // 2026-11
	From, To           time.Time
	Generated          time.Time
	Partial            bool // the month is not over
	KPIs               *workorder.KPIs
	KPIRows            []KPIRow
	ByType             []Count
	BreachesByCategory []BreachRow
	BreachesByPerson   []BreachRow
	Reworks            []OrderLine
	ReworkRate         *float64
	Complaints         Complaints
	AlarmsByType       []Count // by rule
	AlarmsByCategory   []Count
	Incidents          []IncidentRow
	Drills             []DrillRow
	TopAssets          []AssetRow
	Health             *alarmkpi.Report
	Maintenance        *maintenance.Counts // PM items opened in the month, done, on time, overdue (维保计划执行)
}

// ParseMonth reads YYYY-MM in loc: the month's first instant and the next
// month's.
func ParseMonth(s string, loc *time.Location) (time.Time, time.Time, error) {
	t, err := time.ParseInLocation("2006-01", s, loc)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("month %q is not YYYY-MM, e.g. 2026-11", s)
	}
	return t, t.AddDate(0, 1, 0), nil
}

var outcomeZH = map[string]string{workorder.Satisfied: "满意", workorder.FairlySatisfied: "基本满意", workorder.Unsatisfied: "不满意"}

var statusZH = map[workorder.Status]string{workorder.Opened: "已登记", workorder.Dispatched: "已派单", workorder.Accepted: "已接单", workorder.OnSite: "已到场",
	workorder.InProgress: "维修中", workorder.Resolved: "已完成", workorder.CallbackDone: "已回访", workorder.Closed: "已归档", workorder.Cancelled: "已取消"}

var channelZH = map[string]string{"phone": "电话", "front_desk": "前台", "wechat": "微信", "monitoring_center": "监控中心", "gateway": "网关"}

// Build computes the report for the month (YYYY-MM).
func (b *Builder) Build(ctx context.Context, month string) (*Report, error) {
	loc := b.d.Config.Calendar.Location()
	from, to, err := ParseMonth(month, loc)
	if err != nil {
		return nil, err
	}
	now := b.d.Now()
	if !from.Before(now) {
		return nil, fmt.Errorf("month %s has not begun", month)
	}
	r := &Report{Site: b.d.Site, Month: month, From: from, To: to, Generated: now, Partial: now.Before(to)}
	end := to // figures over time stop at now
	if now.Before(end) {
		end = now
	}
	ws, err := b.d.Orders.WorkOrders(ctx, workorder.Filter{CreatedAfter: from, CreatedBefore: to})
	if err != nil {
		return nil, err
	}
	var good *rules.GoodOrder
	if b.d.Equipment != nil {
		if good, err = b.d.Equipment.GoodOrder(ctx, from, end); err != nil {
			return nil, err
		}
	}
	if b.d.Alarms != nil {
		if r.Health, err = b.d.Alarms.Report(ctx, from, end); err != nil {
			return nil, err
		}
	}
	r.KPIs = workorder.Compute(ws, from, to, now, b.d.Config.Targets, good)
	r.ReworkRate = r.KPIs.ReworkRate
	r.KPIRows = kpiRows(r.KPIs)
	for _, t := range workorder.Types {
		if n := r.KPIs.ByType[t.Type]; n > 0 {
			r.ByType = append(r.ByType, Count{Key: string(t.Type), NameZH: t.NameZH, N: n})
		}
	}
	b.breaches(r, ws, end)
	b.complaints(r, ws)
	b.alarmsAndIncidents(ctx, r, from, to)
	b.assets(r, ws, good)
	if b.d.Maintenance != nil {
		if r.Maintenance, err = b.d.Maintenance.Counts(ctx, from, to); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func pct(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

func kpiRows(k *workorder.KPIs) []KPIRow {
	row := func(id, zh, en string, x workorder.KPI) KPIRow {
		r := KPIRow{ID: id, NameZH: zh, Name: en, Met: x.Met, Raw: x.Value, Unit: x.Unit, Of: x.Of}
		if x.Unit == "seconds" {
			r.Target = fmt.Sprintf("≤ %s", time.Duration(x.Target*float64(time.Second)))
			r.Value = "—"
			if x.Value != nil {
				r.Value = time.Duration(*x.Value * float64(time.Second)).Round(time.Second).String()
			}
		} else {
			t := x.Target
			r.Target, r.Value = "≥ "+pct(&t), pct(x.Value)
		}
		return r
	}
	return []KPIRow{
		row("handling_rate", "处理率", "Handling rate", k.HandlingRate),
		row("callback_rate", "回访率", "Call-back rate", k.CallbackRate),
		row("good_order", "设备完好率", "Equipment in good order", k.GoodOrder),
		row("resolution_on_time_rate", "维修及时率", "Repairs on time", k.ResolutionOnTimeRate),
		row("response_on_time_rate", "响应及时率", "Responses on time", k.ResponseOnTimeRate),
		row("arrival_on_time_rate", "突发事件到场及时率", "Emergencies: on site in time", k.ArrivalOnTimeRate),
		row("mean_time_to_arrive", "平均到场时间", "Mean time to arrive", k.MeanTimeToArrive),
	}
}

func (b *Builder) categoryName(id string) string {
	for _, c := range b.d.Config.Categories {
		if c.ID == id {
			return c.NameZH
		}
	}
	return id
}

func responsible(w *workorder.WorkOrder) string {
	if w.Assignee != "" {
		return w.Assignee
	}
	if w.FirstResponsible != "" {
		return w.FirstResponsible
	}
	return "（未指派 unassigned）"
}

func line(w *workorder.WorkOrder, cat string) OrderLine {
	l := OrderLine{ID: w.ID, Type: w.Type.NameZH(), Category: cat, Location: w.Location, Description: w.Description, Responsible: responsible(w),
		Status: statusZH[w.Status], Created: w.Created, Reworks: w.Reworks}
	if w.Room != "" {
		l.Location = w.Room
	}
	if n := len(w.Callbacks); n > 0 {
		l.Outcome = outcomeZH[w.Callbacks[n-1].Outcome]
	}
	return l
}

func (b *Builder) breaches(r *Report, ws []*workorder.WorkOrder, now time.Time) {
	byCat, byPerson := map[string]*BreachRow{}, map[string]*BreachRow{}
	add := func(m map[string]*BreachRow, key, zh string, w *workorder.WorkOrder) {
		row := m[key]
		if row == nil {
			row = &BreachRow{Key: key, NameZH: zh}
			m[key] = row
		}
		row.Orders++
		resp, arr, res := workorder.ResponseLate(w, now), workorder.ArrivalLate(w, now), workorder.ResolutionLate(w, now)
		if resp {
			row.ResponseLate++
		}
		if arr {
			row.ArrivalLate++
		}
		if res {
			row.ResolutionLate++
		}
		if resp || arr || res {
			row.Late++
		}
	}
	for _, w := range ws {
		if !workorder.Counts(w) || w.Status == workorder.Cancelled {
			continue
		}
		add(byCat, w.Category, b.categoryName(w.Category), w)
		p := responsible(w)
		add(byPerson, p, p, w)
		if w.Reworks > 0 {
			r.Reworks = append(r.Reworks, line(w, b.categoryName(w.Category)))
		}
	}
	flat := func(m map[string]*BreachRow) []BreachRow {
		out := make([]BreachRow, 0, len(m))
		for _, v := range m {
			v.OnTimeRate = ratio(v.Orders-v.Late, v.Orders)
			out = append(out, *v)
		}
		slices.SortFunc(out, func(a, b BreachRow) int {
			return cmp.Or(cmp.Compare(b.Late, a.Late), cmp.Compare(b.Orders, a.Orders), cmp.Compare(a.Key, b.Key))
		})
		return out
	}
	r.BreachesByCategory, r.BreachesByPerson = flat(byCat), flat(byPerson)
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(n) / float64(d)
	return &v
}

func counted(m map[string]int, name func(string) string) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{Key: k, NameZH: name(k), N: n})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Key, b.Key)) })
	return out
}

func (b *Builder) complaints(r *Report, ws []*workorder.WorkOrder) {
	c := &r.Complaints
	cats, chans := map[string]int{}, map[string]int{}
	for _, w := range ws {
		if !workorder.Counts(w) || w.Type != workorder.Complaint || w.Status == workorder.Cancelled {
			continue
		}
		c.Total++
		if workorder.Handled(w) {
			c.Handled++
		}
		if len(w.Callbacks) > 0 {
			c.CalledBack++
		}
		for _, cb := range w.Callbacks {
			switch cb.Outcome {
			case workorder.Satisfied:
				c.Satisfied++
			case workorder.FairlySatisfied:
				c.FairlySatisfied++
			case workorder.Unsatisfied:
				c.Unsatisfied++
			}
		}
		cats[w.Category]++
		chans[w.Channel]++
		c.List = append(c.List, line(w, b.categoryName(w.Category)))
	}
	c.ByCategory = counted(cats, b.categoryName)
	c.ByChannel = counted(chans, func(k string) string { return cmp.Or(channelZH[k], k) })
	slices.SortFunc(c.List, func(a, b OrderLine) int { return cmp.Compare(a.ID, b.ID) })
}

func (b *Builder) alarmsAndIncidents(ctx context.Context, r *Report, from, to time.Time) {
	if r.Health != nil {
		byRule, byCat := map[string]int{}, map[string]int{}
		names := map[string]string{}
		for _, a := range r.Health.PerAlarm {
			byRule[a.Rule] += a.Count
			byCat[a.Category] += a.Count
			names[a.Rule] = cmp.Or(a.NameZH, a.Name, a.Rule)
		}
		r.AlarmsByType = counted(byRule, func(k string) string { return names[k] })
		r.AlarmsByCategory = counted(byCat, func(k string) string { return k })
	}
	var all []*playbook.Incident
	if b.d.Incidents != nil {
		var err error
		if all, err = b.d.Incidents.Incidents(ctx, false, 10000); err != nil {
			all = nil // the section stays empty; the rest of the report stands
		}
	}
	rows := map[string]*IncidentRow{}
	held := map[string]int{}
	for _, in := range all {
		if in.Started.Before(from) || !in.Started.Before(to) {
			continue
		}
		row := rows[in.Playbook]
		if row == nil {
			row = &IncidentRow{Playbook: in.Playbook, Name: in.Name}
			rows[in.Playbook] = row
		}
		if in.Drill {
			row.Drills++
			held[in.Playbook]++
		} else {
			row.Real++
		}
	}
	for _, row := range rows {
		r.Incidents = append(r.Incidents, *row)
	}
	slices.SortFunc(r.Incidents, func(a, b IncidentRow) int { return cmp.Compare(a.Playbook, b.Playbook) })
	if b.d.Plans != nil {
		for _, p := range b.d.Plans.Playbooks() {
			d := DrillRow{Playbook: p.ID, Name: p.Name, Held: held[p.ID], Last: p.LastDrill, Next: p.NextDrill}
			if p.Drill != nil {
				d.Every = fmt.Sprint(p.Drill.Every)
			}
			d.Due = d.Held == 0 && p.NextDrill != nil && p.NextDrill.Before(to)
			r.Drills = append(r.Drills, d)
		}
	}
}

func (b *Builder) assets(r *Report, ws []*workorder.WorkOrder, good *rules.GoodOrder) {
	rows := map[string]*AssetRow{}
	get := func(id string) *AssetRow {
		if rows[id] == nil {
			rows[id] = &AssetRow{Asset: id}
		}
		return rows[id]
	}
	for _, w := range ws {
		if w.Asset != "" && workorder.Counts(w) && w.Status != workorder.Cancelled {
			get(w.Asset).WorkOrders++
		}
	}
	if good != nil {
		for _, a := range good.Assets {
			row := get(a.Asset)
			row.Faults, row.DownHours = a.Faults, a.Down/3600
		}
	}
	if r.Health != nil {
		for _, a := range r.Health.PerAlarm {
			if a.Asset != "" {
				get(a.Asset).Alarms += a.Count
			}
		}
	}
	for _, a := range b.d.Assets {
		if row, ok := rows[a.ID]; ok {
			row.Name, row.Kind = a.Name, string(a.Kind)
		}
	}
	for _, row := range rows {
		r.TopAssets = append(r.TopAssets, *row)
	}
	slices.SortFunc(r.TopAssets, func(a, b AssetRow) int {
		return cmp.Or(cmp.Compare(b.WorkOrders+b.Faults, a.WorkOrders+a.Faults), cmp.Compare(b.DownHours, a.DownHours),
			cmp.Compare(b.Alarms, a.Alarms), cmp.Compare(a.Asset, b.Asset))
	})
	r.TopAssets = r.TopAssets[:min(10, len(r.TopAssets))]
}
