package monthly

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/xuri/excelize/v2"
)

//go:embed report.html
var reportHTML string

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   pct,
	"deref": func(b *bool) bool { return b != nil && *b },
	"pctv":  func(v float64) string { return pct(&v) },
	"day": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.Format("2006-01-02")
	},
	"when":  func(t time.Time) string { return t.Format("2006-01-02 15:04") },
	"hours": func(h float64) string { return fmt.Sprintf("%.1f", h) },
	"f1":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(reportHTML))

// HTML writes the report as one printable page.
func (r *Report) HTML(w io.Writer) error {
	var buf bytes.Buffer // a template error must not leave half a page
	if err := tmpl.Execute(&buf, r); err != nil {
		return fmt.Errorf("monthly report: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Sheet names, one per section.
const (
	SheetKPIs       = "服务指标 KPIs"
	SheetBreaches   = "超时工单 Late orders"
	SheetReworks    = "返修 Re-repairs"
	SheetComplaints = "投诉分析 Complaints"
	SheetAlarms     = "报警与事件 Alarms"
	SheetDrills     = "演练 Drills"
	SheetAssets     = "故障设备 Faulty assets"
	SheetHealth     = "报警系统健康 Alarm health"
	SheetPM         = "维保计划执行 Preventive maintenance"
)

type sheet struct {
	f    *excelize.File
	name string
	row  int
	err  error
	pct  int // style id for percentages
	bold int
}

func (s *sheet) put(vals ...any) {
	if s.err != nil {
		return
	}
	s.row++
	cell, _ := excelize.CoordinatesToCellName(1, s.row)
	s.err = s.f.SetSheetRow(s.name, cell, &vals)
}

// pctCell writes a share as a number formatted as a percentage.
func (s *sheet) pctCell(col int, v *float64) {
	if s.err != nil || v == nil {
		return
	}
	cell, _ := excelize.CoordinatesToCellName(col, s.row)
	if s.err = s.f.SetCellFloat(s.name, cell, *v, 4, 64); s.err == nil {
		s.err = s.f.SetCellStyle(s.name, cell, cell, s.pct)
	}
}

func (s *sheet) header(vals ...any) {
	s.put(vals...)
	if s.err == nil {
		a, _ := excelize.CoordinatesToCellName(1, s.row)
		b, _ := excelize.CoordinatesToCellName(len(vals), s.row)
		s.err = s.f.SetCellStyle(s.name, a, b, s.bold)
	}
}

func metZH(m *bool) string {
	switch {
	case m == nil:
		return "—"
	case *m:
		return "达标 met"
	}
	return "未达标 not met"
}

// XLSX writes the report as a workbook, one sheet per section; shares are
// numbers formatted as percentages, so they can be summed and charted.
func (r *Report) XLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	pctStyle, err := f.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	if err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	var sheets []*sheet
	add := func(name string) *sheet {
		if len(sheets) == 0 {
			err = f.SetSheetName("Sheet1", name)
		} else if err == nil {
			_, err = f.NewSheet(name)
		}
		s := &sheet{f: f, name: name, pct: pctStyle, bold: bold, err: err}
		sheets = append(sheets, s)
		return s
	}

	s := add(SheetKPIs)
	s.put(fmt.Sprintf("%s 月报 %s", r.Site, r.Month), fmt.Sprintf("生成 generated %s", r.Generated.Format("2006-01-02 15:04")))
	s.header("指标 KPI", "English", "数值 Value", "目标 Target", "是否达标 Met", "样本数 Of")
	for _, k := range r.KPIRows {
		if k.Unit == "seconds" {
			var v any = "—"
			if k.Raw != nil {
				v = *k.Raw
			}
			s.put(k.NameZH, k.Name+" (s)", v, k.Target, metZH(k.Met), k.Of)
			continue
		}
		s.put(k.NameZH, k.Name, "—", k.Target, metZH(k.Met), k.Of)
		s.pctCell(3, k.Raw)
	}
	s.put("返修率", "Re-repair rate", "—")
	s.pctCell(3, r.ReworkRate)
	s.put("工单总数", "Work orders", r.KPIs.WorkOrders)
	s.put("已处理", "Handled", r.KPIs.Handled)
	s.put("已取消", "Cancelled", r.KPIs.Cancelled)
	s.put("演练工单（不计入）", "Drill orders (not counted)", r.KPIs.Drills)
	for _, t := range r.ByType {
		s.put("类型："+t.NameZH, "Type: "+t.Key, t.N)
	}

	s = add(SheetBreaches)
	s.header("按类别 By category", "工单 Orders", "超时 Late", "响应超时 Response late", "到场超时 Arrival late", "完成超时 Resolution late", "及时率 On time")
	for _, b := range r.BreachesByCategory {
		s.put(b.NameZH, b.Orders, b.Late, b.ResponseLate, b.ArrivalLate, b.ResolutionLate)
		s.pctCell(7, b.OnTimeRate)
	}
	s.put()
	s.header("按责任人 By person", "工单 Orders", "超时 Late", "响应超时 Response late", "到场超时 Arrival late", "完成超时 Resolution late", "及时率 On time")
	for _, b := range r.BreachesByPerson {
		s.put(b.NameZH, b.Orders, b.Late, b.ResponseLate, b.ArrivalLate, b.ResolutionLate)
		s.pctCell(7, b.OnTimeRate)
	}

	s = add(SheetReworks)
	s.put("返修率 Re-repair rate", "—")
	s.pctCell(2, r.ReworkRate)
	s.header("工单 #", "类型 Type", "类别 Category", "位置 Where", "描述 Description", "责任人 Responsible", "返修次数 Re-repairs", "回访 Call-back", "状态 Status")
	for _, l := range r.Reworks {
		s.put(l.ID, l.Type, l.Category, l.Location, l.Description, l.Responsible, l.Reworks, l.Outcome, l.Status)
	}

	s = add(SheetComplaints)
	c := r.Complaints
	s.header("投诉 Complaints", "数量 Count")
	s.put("投诉总数 Total", c.Total)
	s.put("已处理 Handled", c.Handled)
	s.put("已回访 Called back", c.CalledBack)
	s.put("满意 Satisfied", c.Satisfied)
	s.put("基本满意 Fairly satisfied", c.FairlySatisfied)
	s.put("不满意 Unsatisfied", c.Unsatisfied)
	s.put()
	s.header("按类别 By category", "数量 Count")
	for _, x := range c.ByCategory {
		s.put(x.NameZH, x.N)
	}
	s.put()
	s.header("按渠道 By channel", "数量 Count")
	for _, x := range c.ByChannel {
		s.put(x.NameZH, x.N)
	}
	s.put()
	s.header("工单 #", "类别 Category", "位置 Where", "描述 Description", "责任人 Responsible", "回访 Call-back", "状态 Status")
	for _, l := range c.List {
		s.put(l.ID, l.Category, l.Location, l.Description, l.Responsible, l.Outcome, l.Status)
	}

	s = add(SheetAlarms)
	s.header("报警类型 Alarm", "次数 Count")
	for _, x := range r.AlarmsByType {
		s.put(x.NameZH, x.N)
	}
	s.put()
	s.header("突发事件预案 Plan", "突发事件 Real", "演练 Drills")
	for _, x := range r.Incidents {
		s.put(x.Name, x.Real, x.Drills)
	}

	s = add(SheetDrills)
	s.header("预案 Plan", "演练周期 Every", "本月演练 Held", "上次演练 Last", "下次演练 Next", "应演练未演练 Due")
	for _, d := range r.Drills {
		due := ""
		if d.Due {
			due = "是 yes"
		}
		s.put(d.Name, d.Every, d.Held, dayOf(d.Last), dayOf(d.Next), due)
	}

	s = add(SheetAssets)
	s.header("设备 Asset", "名称 Name", "类型 Kind", "工单 Orders", "故障次数 Faults", "故障时长（小时） Down (h)", "报警次数 Alarms")
	for _, a := range r.TopAssets {
		s.put(a.Asset, a.Name, a.Kind, a.WorkOrders, a.Faults, a.DownHours, a.Alarms)
	}

	s = add(SheetHealth)
	if h := r.Health; h != nil {
		s.header("指标 Figure", "数值 Value", "基准 Benchmark", "是否达标 Met")
		s.put("报警总数 Alarms", h.Alarms)
		s.put("每人每天报警数 Per operator per day", h.PerDayPerOperator.Value, h.PerDayPerOperator.Target, metZH(&h.PerDayPerOperator.Met))
		s.put("每人每10分钟报警数 Per operator per 10 min", h.Per10MinPerOperator.Value, h.Per10MinPerOperator.Target, metZH(&h.Per10MinPerOperator.Met))
		s.put("报警泛滥时间占比 Time in flood", "—", "—", metZH(&h.FloodTimeShare.Met))
		s.pctCell(2, &h.FloodTimeShare.Value)
		s.pctCell(3, &h.FloodTimeShare.Target)
		s.put("10分钟最多报警 Most in 10 min", h.Max10Min)
		s.put("报警泛滥次数 Floods", len(h.Floods))
		s.put("当前搁置 Shelved now", h.ShelvedNow)
		s.put("当前停用 Out of service now", h.OutOfServiceNow)
		s.put("本月搁置次数 Shelvings", h.ShelvedInPeriod)
		s.put("本月停用次数 Taken out of service", h.OutOfServiceInPer)
		s.put()
		s.header("优先级 Priority", "报警数 Alarms", "占比 Share", "目标 Target")
		for _, p := range h.Priorities {
			s.put(p.Priority, p.Alarms)
			s.pctCell(3, &p.Share)
			s.pctCell(4, &p.Target)
		}
		s.put()
		s.header("频发报警 Bad actors", "名称 Name", "次数 Count", "占比 Share")
		for _, b := range h.BadActors {
			s.put(b.Alarm, b.NameZH, b.Count)
			s.pctCell(4, &b.Share)
		}
		s.put()
		s.header("抖动报警 Chattering", "名称 Name", "抖动次数 Episodes")
		for _, b := range h.Chattering {
			s.put(b.Alarm, b.NameZH, b.Episodes)
		}
		s.put()
		s.header("报警泛滥 Flood", "结束 End", "报警数 Alarms", "峰值 Peak")
		for _, fl := range h.Floods {
			s.put(fl.Start.Format("2006-01-02 15:04"), fl.End.Format("2006-01-02 15:04"), fl.Alarms, fl.Peak)
		}
		s.put()
		s.header("长期报警（>24小时） Stale", "名称 Name", "开始 Since", "小时 Hours")
		for _, st := range h.Stale {
			s.put(st.Alarm, st.NameZH, st.Since.Format("2006-01-02 15:04"), st.Hours)
		}
	}
	s = add(SheetPM)
	if m := r.Maintenance; m != nil {
		s.header("本月到期维保 PM items opened", "已完成 Done", "按期完成 On time", "逾期未完成 Overdue", "进行中 Pending", "已取消 Cancelled", "完成率 Completion")
		s.put(m.Opened, m.Done, m.DoneOnTime, m.Overdue, m.Pending, m.Cancelled)
		s.pctCell(7, m.CompletionRate)
	}
	for _, s := range sheets {
		if s.err != nil {
			return fmt.Errorf("monthly report: sheet %s: %w", s.name, s.err)
		}
		_ = f.SetColWidth(s.name, "A", "A", 34)
		_ = f.SetColWidth(s.name, "B", "I", 16)
	}
	return f.Write(w)
}

func dayOf(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.Format("2006-01-02")
}
