// Package report renders an incident's record as the emergency plans ask
// for it (存档备案): Markdown for the API and a printable HTML page.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/rules/playbook"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// b is a heading or label, Chinese first: "记录事项 Record".
func b(key string) string { return i18n.Both(key) }

// label is a record item's label, Chinese first.
func label(f playbook.RecordField) string {
	switch {
	case f.LabelZH == "":
		return f.Label
	case f.Label == "" || f.Label == f.LabelZH:
		return f.LabelZH
	}
	return f.LabelZH + " " + f.Label
}

// stepStatus is a step's status for the record, Chinese first.
func stepStatus(st playbook.StepState) string {
	s := b("step." + string(st.Status))
	if st.Overdue {
		s += "，" + b("report.was_overdue")
	}
	if st.Optional {
		s += "（" + b("report.optional") + "）"
	}
	return s
}

// stepTitle is the plan's own Chinese wording with the English after it.
func stepTitle(st playbook.StepState, sep string) string {
	if st.TitleZH == "" {
		return st.Title
	}
	return st.TitleZH + sep + st.Title
}

// role is a playbook role by name, Chinese first (a site's own role: its id).
func role(r string) string {
	if r == "" || !i18n.Has("role."+r) {
		return r
	}
	return b("role." + r)
}

// kind is a timeline entry's kind, Chinese first.
func kind(k string) string {
	if !i18n.Has("tl." + k) {
		return k
	}
	return b("tl." + k)
}

// Markdown renders the incident record the emergency plans ask for (存档备案),
// Chinese first: the timestamps, who did what and when, the evidence and
// the outcome. p is the incident's playbook (nil if it is no longer
// configured).
func Markdown(p *playbook.Playbook, in *playbook.Incident) string {
	var w strings.Builder
	title := in.Name
	if in.Drill {
		title = b("report.title_drill") + " — " + title
	}
	fmt.Fprintf(&w, "# %s\n\n", cell(title))
	fmt.Fprintf(&w, "| | |\n|---|---|\n| %s | %d (%s) |\n| %s | %s |\n| %s | %s |\n| %s | %s |\n| %s | %s |\n| %s | %s |\n| %s | %s |\n",
		b("report.incident"), in.ID, cell(in.Playbook), b("report.status"), b("incident."+in.Status), b("report.asset"), cell(or(in.Asset)),
		b("report.location"), cell(or(in.Location)), b("report.trigger"), cell(in.Trigger), b("report.started"), fmtTime(in.Started), b("report.closed"), fmtTime(in.Closed))
	if !in.Closed.IsZero() {
		fmt.Fprintf(&w, "| %s | %s |\n", b("report.duration"), in.Closed.Sub(in.Started).Round(time.Second))
	}
	if in.Parent != 0 {
		fmt.Fprintf(&w, "| %s | %d |\n", b("report.parent"), in.Parent)
	}
	if len(in.Children) > 0 {
		fmt.Fprintf(&w, "| %s | %s |\n", b("report.children"), joinIDs(in.Children))
	}
	if p != nil && len(p.Record) > 0 {
		fmt.Fprintf(&w, "\n## %s\n\n| %s | %s | %s | %s |\n|---|---|---|---|\n", b("report.record"), b("report.item"), b("report.time"), b("report.by"), b("report.note"))
		for _, f := range p.Record {
			if !in.Drill && drillOnly(p, f.Key) {
				continue // a drill's evaluation is no item of a real incident's record
			}
			if v, ok := in.Record[f.Key]; ok {
				fmt.Fprintf(&w, "| %s | %s | %s | %s |\n", cell(label(f)), fmtTime(v.At), cell(v.By), cell(v.Note))
			} else {
				fmt.Fprintf(&w, "| %s | **%s** | | |\n", cell(label(f)), b("report.missing"))
			}
		}
	}
	fmt.Fprintf(&w, "\n## %s\n\n| %s | %s | %s | %s | %s | %s | %s | %s |\n|---|---|---|---|---|---|---|---|\n", b("report.steps"),
		b("report.step"), b("report.role"), b("report.started"), b("report.due"), b("report.done"), b("report.by"), b("report.status"), b("report.note"))
	for _, st := range in.Steps {
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(stepTitle(st, " / ")), cell(role(st.Role)), fmtTime(st.Started), due(st), fmtTime(st.Done), cell(st.By), stepStatus(st), cell(st.Note))
	}
	fmt.Fprintf(&w, "\n## %s\n\n", b("report.timeline"))
	for _, e := range in.Timeline {
		step := ""
		if e.Step != "" {
			step = " [" + cell(e.Step) + "]"
		}
		fmt.Fprintf(&w, "- %s — %s%s — %s: %s\n", fmtTime(e.At), cell(e.By), step, kind(e.Kind), cell(e.Text))
	}
	fmt.Fprintf(&w, "\n%s：＿＿＿＿＿＿　　%s：＿＿＿＿＿＿\n", b("report.sign_duty"), b("report.sign_manager"))
	return w.String()
}

// drillOnly: the record item is filled only by a drill-only step.
func drillOnly(p *playbook.Playbook, key string) bool {
	for _, s := range p.Steps {
		if s.Records == key {
			return s.DrillOnly
		}
	}
	return false
}

// due is a step's deadline with where it comes from.
func due(st playbook.StepState) string {
	if st.DeadlineSource == "" {
		return fmtTime(st.Due)
	}
	return fmtTime(st.Due) + " (" + cell(st.DeadlineSource) + ")"
}

func or(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// mdEscaper makes text from people (notes, evidence, names) inert in
// Markdown: one line (no forged timeline entries), no HTML, no links or
// images, no bold, no table cells. Underscores stay (ids like
// pump1_run_cmd read as they are; intraword "_" emphasises nothing) and so
// does "#" (never at the start of a line here).
var mdEscaper = strings.NewReplacer(
	"\r\n", " ", "\n", " ", "\r", " ",
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	"\\", "\\\\", "`", "\\`", "*", "\\*", "[", "\\[", "]", "\\]", "|", "\\|",
)

// cell escapes text for a Markdown table cell or list item.
func cell(s string) string { return mdEscaper.Replace(s) }

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}

var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{"t": fmtTime, "or": or, "b": b, "role": role, "kind": kind,
	"status": stepStatus, "istatus": func(s string) string { return b("incident." + string(s)) }}).Parse(`<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{{if .In.Drill}}{{b "report.title_drill"}} — {{end}}{{.In.Name}} — {{b "report.incident"}} {{.In.ID}}</title>
<style>
body{font:14px/1.4 "Noto Sans CJK SC","Noto Sans","Helvetica Neue",Arial,sans-serif;margin:2em;color:#111}
h1{font-size:22px;margin:0 0 .5em}h2{font-size:16px;margin:1.5em 0 .5em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eee}.missing{color:#b00;font-weight:bold}.drill{color:#b00;border:2px solid #b00;padding:2px 8px;display:inline-block}
.en{color:#555;font-size:12px}.sign{margin-top:3em;display:flex;gap:4em}.sign div{border-top:1px solid #111;padding-top:4px;width:14em}
@media print{body{margin:1cm}}
</style></head><body>
{{if .In.Drill}}<p class="drill">{{b "report.title_drill"}}</p>{{end}}
<h1>{{.In.Name}}</h1>
<table>
<tr><th>{{b "report.incident"}}</th><td>{{.In.ID}} ({{.In.Playbook}})</td><th>{{b "report.status"}}</th><td>{{istatus .In.Status}}</td></tr>
<tr><th>{{b "report.asset"}}</th><td>{{or .In.Asset}}</td><th>{{b "report.location"}}</th><td>{{or .In.Location}}</td></tr>
<tr><th>{{b "report.started"}}</th><td>{{t .In.Started}}</td><th>{{b "report.closed"}}</th><td>{{t .In.Closed}}</td></tr>
<tr><th>{{b "report.trigger"}}</th><td colspan="3">{{.In.Trigger}}</td></tr>
{{if .In.Parent}}<tr><th>{{b "report.parent"}}</th><td colspan="3">{{.In.Parent}}</td></tr>{{end}}
{{if .In.Children}}<tr><th>{{b "report.children"}}</th><td colspan="3">{{range .In.Children}}{{.}} {{end}}</td></tr>{{end}}
</table>
{{if .Record}}<h2>{{b "report.record"}}</h2><table><tr><th>{{b "report.item"}}</th><th>{{b "report.time"}}</th><th>{{b "report.by"}}</th><th>{{b "report.note"}}</th></tr>
{{range .Record}}<tr><td>{{if .Field.LabelZH}}{{.Field.LabelZH}}{{if .Field.Label}}<br><span class="en">{{.Field.Label}}</span>{{end}}{{else}}{{.Field.Label}}{{end}}</td>{{if .Set}}<td>{{t .Value.At}}</td><td>{{.Value.By}}</td><td>{{.Value.Note}}</td>{{else}}<td class="missing">{{b "report.missing"}}</td><td></td><td></td>{{end}}</tr>
{{end}}</table>{{end}}
<h2>{{b "report.steps"}}</h2><table><tr><th>{{b "report.step"}}</th><th>{{b "report.role"}}</th><th>{{b "report.due"}}</th><th>{{b "report.done"}}</th><th>{{b "report.by"}}</th><th>{{b "report.status"}}</th><th>{{b "report.note"}}</th></tr>
{{range .In.Steps}}<tr><td>{{if .TitleZH}}{{.TitleZH}}<br><span class="en">{{.Title}}</span>{{else}}{{.Title}}{{end}}</td><td>{{role .Role}}</td><td>{{t .Due}}{{if .DeadlineSource}}<br><small>{{.DeadlineSource}}</small>{{end}}</td><td>{{t .Done}}</td><td>{{.By}}</td><td>{{status .}}</td><td>{{.Note}}</td></tr>
{{end}}</table>
<h2>{{b "report.timeline"}}</h2><table><tr><th>{{b "report.time"}}</th><th>{{b "report.by"}}</th><th>{{b "report.what"}}</th><th>{{b "report.note"}}</th></tr>
{{range .In.Timeline}}<tr><td>{{t .At}}</td><td>{{.By}}</td><td>{{kind .Kind}}{{if .Step}} [{{.Step}}]{{end}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
<div class="sign"><div>{{b "report.sign_duty"}}</div><div>{{b "report.sign_manager"}}</div></div>
</body></html>
`))

type recordRow struct {
	Field playbook.RecordField
	Value playbook.RecordValue
	Set   bool
}

// HTML renders the same record as a printable page.
func HTML(p *playbook.Playbook, in *playbook.Incident) ([]byte, error) {
	var rows []recordRow
	if p != nil {
		for _, f := range p.Record {
			if !in.Drill && drillOnly(p, f.Key) {
				continue
			}
			v, ok := in.Record[f.Key]
			rows = append(rows, recordRow{Field: f, Value: v, Set: ok})
		}
	}
	var buf bytes.Buffer
	err := reportHTML.Execute(&buf, struct {
		In     *playbook.Incident
		Record []recordRow
	}{in, rows})
	return buf.Bytes(), err
}
