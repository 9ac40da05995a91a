// Package report renders an incident's record as the emergency plans ask
// for it (存档备案): Markdown for the API and a printable HTML page.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/propgate/gateway/rules/playbook"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// Markdown renders the incident record the emergency plans ask for: the
// timestamps, who did what and when, the evidence and the outcome. p is the
// incident's playbook (nil if it is no longer configured).
func Markdown(p *playbook.Playbook, in *playbook.Incident) string {
	var b strings.Builder
	title := in.Name
	if in.Drill {
		title = "DRILL — " + title
	}
	fmt.Fprintf(&b, "# %s\n\n", cell(title))
	fmt.Fprintf(&b, "| | |\n|---|---|\n| Incident | %d (%s) |\n| Status | %s |\n| Asset | %s |\n| Location | %s |\n| Trigger | %s |\n| Started | %s |\n| Closed | %s |\n",
		in.ID, cell(in.Playbook), in.Status, cell(or(in.Asset)), cell(or(in.Location)), cell(in.Trigger), fmtTime(in.Started), fmtTime(in.Closed))
	if !in.Closed.IsZero() {
		fmt.Fprintf(&b, "| Duration | %s |\n", in.Closed.Sub(in.Started).Round(time.Second))
	}
	if in.Parent != 0 {
		fmt.Fprintf(&b, "| Part of incident | %d |\n", in.Parent)
	}
	if len(in.Children) > 0 {
		fmt.Fprintf(&b, "| Incidents it started | %s |\n", joinIDs(in.Children))
	}
	if p != nil && len(p.Record) > 0 {
		b.WriteString("\n## Record\n\n| Item | Time | By | Note |\n|---|---|---|---|\n")
		for _, f := range p.Record {
			if !in.Drill && drillOnly(p, f.Key) {
				continue // a drill's evaluation is no item of a real incident's record
			}
			if v, ok := in.Record[f.Key]; ok {
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(f.Label), fmtTime(v.At), cell(v.By), cell(v.Note))
			} else {
				fmt.Fprintf(&b, "| %s | **missing** | | |\n", cell(f.Label))
			}
		}
	}
	b.WriteString("\n## Steps\n\n| Step | Role | Started | Due | Done | By | Status | Note |\n|---|---|---|---|---|---|---|---|\n")
	for _, st := range in.Steps {
		status := string(st.Status)
		if st.Overdue {
			status += ", was overdue"
		}
		if st.Optional {
			status += " (optional)"
		}
		title := st.Title
		if st.TitleZH != "" {
			title = st.TitleZH + " / " + st.Title
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(title), cell(st.Role), fmtTime(st.Started), due(st), fmtTime(st.Done), cell(st.By), status, cell(st.Note))
	}
	b.WriteString("\n## Timeline\n\n")
	for _, e := range in.Timeline {
		step := ""
		if e.Step != "" {
			step = " [" + cell(e.Step) + "]"
		}
		fmt.Fprintf(&b, "- %s — %s%s — %s: %s\n", fmtTime(e.At), cell(e.By), step, e.Kind, cell(e.Text))
	}
	return b.String()
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

var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{"t": fmtTime, "or": or}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{if .In.Drill}}DRILL — {{end}}{{.In.Name}} — incident {{.In.ID}}</title>
<style>
body{font:14px/1.4 "Noto Sans","Helvetica Neue",Arial,sans-serif;margin:2em;color:#111}
h1{font-size:22px;margin:0 0 .5em}h2{font-size:16px;margin:1.5em 0 .5em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eee}.missing{color:#b00;font-weight:bold}.drill{color:#b00;border:2px solid #b00;padding:2px 8px;display:inline-block}
.sign{margin-top:3em;display:flex;gap:4em}.sign div{border-top:1px solid #111;padding-top:4px;width:14em}
@media print{body{margin:1cm}}
</style></head><body>
{{if .In.Drill}}<p class="drill">DRILL 演练</p>{{end}}
<h1>{{.In.Name}}</h1>
<table>
<tr><th>Incident</th><td>{{.In.ID}} ({{.In.Playbook}})</td><th>Status</th><td>{{.In.Status}}</td></tr>
<tr><th>Asset</th><td>{{or .In.Asset}}</td><th>Location</th><td>{{or .In.Location}}</td></tr>
<tr><th>Started</th><td>{{t .In.Started}}</td><th>Closed</th><td>{{t .In.Closed}}</td></tr>
<tr><th>Trigger</th><td colspan="3">{{.In.Trigger}}</td></tr>
{{if .In.Parent}}<tr><th>Part of incident</th><td colspan="3">{{.In.Parent}}</td></tr>{{end}}
{{if .In.Children}}<tr><th>Incidents it started</th><td colspan="3">{{range .In.Children}}{{.}} {{end}}</td></tr>{{end}}
</table>
{{if .Record}}<h2>Record</h2><table><tr><th>Item</th><th>Time</th><th>By</th><th>Note</th></tr>
{{range .Record}}<tr><td>{{.Label}}</td>{{if .Set}}<td>{{t .Value.At}}</td><td>{{.Value.By}}</td><td>{{.Value.Note}}</td>{{else}}<td class="missing">missing</td><td></td><td></td>{{end}}</tr>
{{end}}</table>{{end}}
<h2>Steps</h2><table><tr><th>Step</th><th>Role</th><th>Due</th><th>Done</th><th>By</th><th>Status</th><th>Note</th></tr>
{{range .In.Steps}}<tr><td>{{if .TitleZH}}{{.TitleZH}}<br>{{end}}{{.Title}}</td><td>{{.Role}}</td><td>{{t .Due}}{{if .DeadlineSource}}<br><small>{{.DeadlineSource}}</small>{{end}}</td><td>{{t .Done}}</td><td>{{.By}}</td><td>{{.Status}}{{if .Overdue}}, was overdue{{end}}</td><td>{{.Note}}</td></tr>
{{end}}</table>
<h2>Timeline</h2><table><tr><th>Time</th><th>By</th><th>What</th><th></th></tr>
{{range .In.Timeline}}<tr><td>{{t .At}}</td><td>{{.By}}</td><td>{{.Kind}}{{if .Step}} [{{.Step}}]{{end}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
<div class="sign"><div>Duty engineer</div><div>Engineering manager</div></div>
</body></html>
`))

type recordRow struct {
	Label string
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
			rows = append(rows, recordRow{Label: f.Label, Value: v, Set: ok})
		}
	}
	var buf bytes.Buffer
	err := reportHTML.Execute(&buf, struct {
		In     *playbook.Incident
		Record []recordRow
	}{in, rows})
	return buf.Bytes(), err
}
