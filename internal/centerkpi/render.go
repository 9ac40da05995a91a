package centerkpi

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/rules/workorder"
)

// Column is one figure of the table, by its catalogue key (kpi.<id>).
type Column struct {
	ID  string // the figure's JSON name in workorder.KPIs
	Key string // its catalogue key
	Get func(*workorder.KPIs) workorder.KPI
}

// Columns are the figures the center shows, in the order of the site's
// monthly report.
var Columns = []Column{
	{"handling_rate", "kpi.handling_rate", func(k *workorder.KPIs) workorder.KPI { return k.HandlingRate }},
	{"callback_rate", "kpi.callback_rate", func(k *workorder.KPIs) workorder.KPI { return k.CallbackRate }},
	{"good_order", "kpi.availability", func(k *workorder.KPIs) workorder.KPI { return k.GoodOrder }},
	{"resolution_on_time_rate", "kpi.resolution_on_time_rate", func(k *workorder.KPIs) workorder.KPI { return k.ResolutionOnTimeRate }},
	{"response_on_time_rate", "kpi.response_on_time_rate", func(k *workorder.KPIs) workorder.KPI { return k.ResponseOnTimeRate }},
	{"arrival_on_time_rate", "kpi.arrival_on_time_rate", func(k *workorder.KPIs) workorder.KPI { return k.ArrivalOnTimeRate }},
	{"mean_time_to_arrive", "kpi.mean_time_to_arrive", func(k *workorder.KPIs) workorder.KPI { return k.MeanTimeToArrive }},
}

// Value formats a figure's value: a share as 97.5%, a time as 2m30s, no
// data as —.
func Value(k workorder.KPI) string {
	if k.Value == nil {
		return "—"
	}
	if k.Unit == "seconds" {
		return time.Duration(*k.Value * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%.1f%%", *k.Value*100)
}

// Target formats a figure's target: ≥ 95.0% or ≤ 3m0s.
func Target(k workorder.KPI) string {
	if k.Unit == "seconds" {
		return "≤ " + time.Duration(k.Target*float64(time.Second)).String()
	}
	return fmt.Sprintf("≥ %.1f%%", k.Target*100)
}

// metKey is the catalogue key of a figure's verdict.
func metKey(k workorder.KPI) string {
	switch {
	case k.Met == nil:
		return "center.kpis.no_data"
	case *k.Met:
		return "center.kpis.met"
	}
	return "center.kpis.unmet"
}

// cell is one figure in the HTML table.
type cell struct {
	ID, Value, Class, Verdict string
	Of                        int
}

type htmlRow struct {
	Site, Name, Region string
	Total              bool
	Orders, Late       int
	Handled, Cancelled int
	CB                 workorder.CallbackStats
	Cells              []cell
}

func (m *Month) htmlRows() []htmlRow {
	conv := func(r Row, total bool) htmlRow {
		h := htmlRow{Site: r.Site, Name: r.Name, Region: r.Region, Total: total, Orders: r.KPIs.WorkOrders, Late: r.Late,
			Handled: r.KPIs.Handled, Cancelled: r.KPIs.Cancelled, CB: r.KPIs.Callbacks}
		if h.Name == "" {
			h.Name = r.Site
		}
		if total {
			h.Name = i18n.T(i18n.ZH, "center.kpis.total")
		}
		for _, c := range Columns {
			k := c.Get(r.KPIs)
			class := "none"
			if k.Met != nil {
				class = map[bool]string{true: "met", false: "unmet"}[*k.Met]
			}
			h.Cells = append(h.Cells, cell{ID: c.ID, Value: Value(k), Class: class, Verdict: i18n.T(i18n.ZH, metKey(k)), Of: k.Of})
		}
		return h
	}
	out := make([]htmlRow, 0, len(m.Sites)+1)
	for _, r := range m.Sites {
		out = append(out, conv(r, false))
	}
	return append(out, conv(m.Total, true))
}

//go:embed report.html
var reportHTML string

var tmpl = template.Must(template.New("center-report").Funcs(template.FuncMap{
	"zh":   func(key string) string { return i18n.T(i18n.ZH, key) },
	"en":   func(key string) string { return i18n.T(i18n.EN, key) },
	"zhf":  func(key string, a ...any) string { return i18n.Tf(i18n.ZH, key, a...) },
	"enf":  func(key string, a ...any) string { return i18n.Tf(i18n.EN, key, a...) },
	"when": func(t time.Time) string { return t.Format("2006-01-02 15:04") },
}).Parse(reportHTML))

type htmlView struct {
	*Month
	Columns []Column
	Targets []string
	Rows    []htmlRow
}

// HTML writes the report as one printable page, Chinese first.
func (m *Month) HTML(w io.Writer) error {
	v := htmlView{Month: m, Columns: Columns, Rows: m.htmlRows()}
	for _, c := range Columns {
		v.Targets = append(v.Targets, Target(c.Get(m.Total.KPIs)))
	}
	var buf bytes.Buffer // a template error must not leave half a page
	if err := tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("center monthly report: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// SheetKPIs and SheetCallbacks are the workbook's sheets.
var (
	SheetKPIs      = i18n.Both("center.kpis.title")
	SheetCallbacks = i18n.Both("center.report.callbacks")
)

// XLSX writes the report as a workbook: one row per site and the total;
// shares are numbers formatted as percentages, times in seconds.
func (m *Month) XLSX(w io.Writer) error {
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
	if err := f.SetSheetName("Sheet1", SheetKPIs); err != nil {
		return err
	}
	if _, err := f.NewSheet(SheetCallbacks); err != nil {
		return err
	}
	put := func(sheet string, row int, vals []any) {
		if err != nil {
			return
		}
		c, _ := excelize.CoordinatesToCellName(1, row)
		err = f.SetSheetRow(sheet, c, &vals)
	}
	style := func(sheet string, row, col, style int) {
		if err != nil {
			return
		}
		c, _ := excelize.CoordinatesToCellName(col, row)
		err = f.SetCellStyle(sheet, c, c, style)
	}
	b := i18n.Both
	put(SheetKPIs, 1, []any{fmt.Sprintf("%s %s", b("center.report.title"), m.Month),
		fmt.Sprintf("%s %s — %s (%s %s)", b("center.report.period"), m.From.Format("2006-01-02 15:04"), m.To.Format("2006-01-02 15:04"), b("center.report.time_zone"), m.TimeZone),
		fmt.Sprintf("%s %s", b("center.report.generated"), m.Generated.Format("2006-01-02 15:04"))})
	head := []any{b("center.site"), b("center.kpis.region"), b("center.kpis.orders")}
	target := []any{b("center.kpis.target"), "", ""}
	for _, c := range Columns {
		k := c.Get(m.Total.KPIs)
		unit := ""
		if k.Unit == "seconds" {
			unit = " (s)"
		}
		head = append(head, b(c.Key)+unit)
		target = append(target, Target(k))
	}
	head = append(head, b("center.kpis.late"))
	put(SheetKPIs, 2, head)
	for col := 1; col <= len(head); col++ {
		style(SheetKPIs, 2, col, bold)
	}
	put(SheetKPIs, 3, target)
	rows := append(append([]Row{}, m.Sites...), m.Total)
	for i, r := range rows {
		n := 4 + i
		name, region := r.Name, r.Region
		if name == "" {
			name = r.Site
		}
		if i == len(rows)-1 {
			name, region = b("center.kpis.total"), ""
		}
		vals := []any{name, region, r.KPIs.WorkOrders}
		for _, c := range Columns {
			k := c.Get(r.KPIs)
			if k.Value == nil {
				vals = append(vals, "—")
			} else {
				vals = append(vals, *k.Value)
			}
		}
		vals = append(vals, r.Late)
		put(SheetKPIs, n, vals)
		for j, c := range Columns {
			if k := c.Get(r.KPIs); k.Value != nil && k.Unit == "ratio" {
				style(SheetKPIs, n, 4+j, pctStyle)
			}
		}
		if i == len(rows)-1 {
			style(SheetKPIs, n, 1, bold)
		}
	}
	note := "center.kpis.good_order_note"
	if m.GoodOrderReported {
		note = "center.kpis.good_order_days"
	}
	put(SheetKPIs, 5+len(rows), []any{i18n.Both(note)})

	cbHead := []any{b("center.site"), b("center.kpis.orders"), b("center.report.handled"), b("center.report.cancelled"), b("center.report.cb_due"),
		b("center.report.cb_done"), b("center.report.cb_satisfied"), b("center.report.cb_fairly"), b("center.report.cb_unsatisfied")}
	put(SheetCallbacks, 1, cbHead)
	for col := 1; col <= len(cbHead); col++ {
		style(SheetCallbacks, 1, col, bold)
	}
	for i, r := range rows {
		name := r.Name
		if name == "" {
			name = r.Site
		}
		if i == len(rows)-1 {
			name = b("center.kpis.total")
		}
		cb := r.KPIs.Callbacks
		put(SheetCallbacks, 2+i, []any{name, r.KPIs.WorkOrders, r.KPIs.Handled, r.KPIs.Cancelled, cb.Due, cb.Done, cb.Satisfied, cb.FairlySatisfied, cb.Unsatisfied})
	}
	if err != nil {
		return fmt.Errorf("center monthly report: %w", err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("center monthly report: %w", err)
	}
	return nil
}
