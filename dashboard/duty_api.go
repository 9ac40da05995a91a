package dashboard

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/duty"
)

// DutyRoster is the duty roster (值班表) as the API sees it (rules/duty).
type DutyRoster interface {
	Roster() duty.Roster
	RosterVersions(ctx context.Context, limit int) ([]*duty.Roster, error)
	SetRoster(ctx context.Context, teams []duty.Team, version int, by duty.Who, note string) (*duty.Roster, error)
	OnDuty(now time.Time) []duty.Shift
	Schedule(from, to time.Time) []duty.Shift
}

// HandoverBook is the shift handovers (交接班记录).
type HandoverBook interface {
	Draft(ctx context.Context, team string, by duty.Who) (*duty.Handover, error)
	Sign(ctx context.Context, team, remarks string, by duty.Who) (*duty.Handover, error)
	Accept(ctx context.Context, id int64, note string, by duty.Who) (*duty.Handover, error)
	Handover(ctx context.Context, id int64) (*duty.Handover, error)
	Handovers(ctx context.Context, q duty.Query) ([]*duty.Handover, error)
}

// DutyLog is the duty log (值班记录).
type DutyLog interface {
	Write(ctx context.Context, in duty.EntryInput, by duty.Who) (*duty.Entry, error)
	Entries(ctx context.Context, q duty.Query) ([]*duty.Entry, error)
}

// OverdueHandovers lists the teams whose handover is overdue (duty.Watch).
type OverdueHandovers interface {
	Overdue(ctx context.Context) ([]duty.OverdueHandover, error)
}

// Duty is everything the duty endpoints need.
type Duty struct {
	Roster    DutyRoster
	Handovers HandoverBook
	Log       DutyLog
	Overdue   OverdueHandovers // nil: handovers are not watched (no duty.handover: section)
	Location  *time.Location   // dates in queries and printouts; default time.Local
	Now       func() time.Time
}

// MountDuty adds the roster, handover and duty-log endpoints, their
// printable pages and the wall's on-duty list.
func (a *API) MountDuty(d Duty) {
	if d.Location == nil {
		d.Location = time.Local
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	x := &dutyAPI{d: d, log: a.deps.Log, site: a.deps.Site}
	x.handoverPage = template.Must(template.New("handover").Funcs(x.funcs()).Parse(handoverHTML))
	x.logPage = template.Must(template.New("log").Funcs(x.funcs()).Parse(logHTML))
	x.schedulePage = template.Must(template.New("schedule").Funcs(x.funcs()).Parse(scheduleHTML))
	a.mux.HandleFunc("GET /api/v1/duty/now", x.onDuty)
	a.mux.HandleFunc("GET /api/v1/roster", x.roster)
	a.mux.HandleFunc("PUT /api/v1/roster", x.setRoster)
	a.mux.HandleFunc("GET /api/v1/roster/versions", x.rosterVersions)
	a.mux.HandleFunc("GET /api/v1/roster/schedule", x.schedule)
	a.mux.HandleFunc("GET /api/v1/roster/print", x.printSchedule)
	a.mux.HandleFunc("GET /api/v1/handovers", x.handovers)
	a.mux.HandleFunc("POST /api/v1/handovers", x.sign)
	a.mux.HandleFunc("GET /api/v1/handovers/draft", x.draft)
	if d.Overdue != nil {
		a.mux.HandleFunc("GET /api/v1/handovers/overdue", x.overdue)
	}
	a.mux.HandleFunc("GET /api/v1/handovers/{id}", x.handover)
	a.mux.HandleFunc("GET /api/v1/handovers/{id}/print", x.printHandover)
	a.mux.HandleFunc("POST /api/v1/handovers/{id}/accept", x.accept)
	a.mux.HandleFunc("GET /api/v1/duty-log", x.entries)
	a.mux.HandleFunc("POST /api/v1/duty-log", x.write)
	a.mux.HandleFunc("GET /api/v1/duty-log/print", x.printLog)
}

type dutyAPI struct {
	d                     Duty
	log                   *slog.Logger
	site                  string
	handoverPage, logPage *template.Template
	schedulePage          *template.Template
}

func who(r *http.Request) duty.Who {
	p, _ := access.PrincipalOf(r)
	return duty.Who{Username: p.Username, Name: p.Name}
}

func (x *dutyAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, duty.ErrInvalid):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, duty.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, duty.ErrConflict):
		httpjson.Error(w, http.StatusConflict, err.Error())
	default:
		x.log.Error("duty request failed", "path", r.URL.Path, "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "值班记录读写失败 / the duty records could not be read or written; see the gateway log")
	}
}

// OnDutyView is one team's person on duty as every screen may see it:
// names only, never contact details.
type OnDutyView struct {
	Team     string    `json:"team"`
	TeamName string    `json:"team_name"`
	Person   string    `json:"person,omitempty"` // the id, for engineers and above
	Name     string    `json:"name"`
	From     time.Time `json:"from"`
	Until    time.Time `json:"until"`
	Override bool      `json:"override,omitempty"`
}

func (x *dutyAPI) onDuty(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	out := []OnDutyView{}
	for _, s := range x.d.Roster.OnDuty(x.d.Now()) {
		v := OnDutyView{Team: s.Team, TeamName: s.TeamName, Name: s.Name, From: s.From, Until: s.Until, Override: s.Override}
		if staff(r) {
			v.Person = s.Person
		}
		out = append(out, v)
	}
	httpjson.Write(w, http.StatusOK, out)
}

// RosterView is GET /api/v1/roster: the current version and who is on duty.
type RosterView struct {
	duty.Roster
	OnDuty []duty.Shift `json:"on_duty"`
}

func (x *dutyAPI) roster(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	httpjson.Write(w, http.StatusOK, RosterView{Roster: x.d.Roster.Roster(), OnDuty: x.d.Roster.OnDuty(x.d.Now())})
}

// RosterUpdate is the body of PUT /api/v1/roster.
type RosterUpdate struct {
	Version int         `json:"version"` // the version edited: a newer stored one is a conflict
	Teams   []duty.Team `json:"teams"`
	Note    string      `json:"note"`
}

func (x *dutyAPI) setRoster(w http.ResponseWriter, r *http.Request) {
	var b RosterUpdate
	if !httpjson.Decode(w, r, &b) {
		return
	}
	ro, err := x.d.Roster.SetRoster(r.Context(), b.Teams, b.Version, who(r), b.Note)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, ro)
}

func (x *dutyAPI) rosterVersions(w http.ResponseWriter, r *http.Request) {
	n, ok := limit(w, r)
	if !ok {
		return
	}
	vs, err := x.d.Roster.RosterVersions(r.Context(), n)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if vs == nil {
		vs = []*duty.Roster{}
	}
	httpjson.Write(w, http.StatusOK, vs)
}

// scheduleRange reads from and to (dates, to inclusive; default a week
// from today), at most 62 days.
func (x *dutyAPI) scheduleRange(w http.ResponseWriter, r *http.Request) (time.Time, time.Time, bool) {
	if !checkQuery(w, r, "from", "to") {
		return time.Time{}, time.Time{}, false
	}
	now := x.d.Now().In(x.d.Location)
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, x.d.Location)
	to := from.AddDate(0, 0, 7)
	for key, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := r.URL.Query().Get(key); v != "" {
			d, err := time.ParseInLocation("2006-01-02", v, x.d.Location)
			if err != nil {
				httpjson.Error(w, http.StatusBadRequest, key+" "+strconv.Quote(v)+" is not a date YYYY-MM-DD (or today)")
				return from, to, false
			}
			if key == "to" {
				d = d.AddDate(0, 0, 1)
			}
			*dst = d
		}
	}
	if !to.After(from) || to.Sub(from) > 62*24*time.Hour {
		httpjson.Error(w, http.StatusBadRequest, "to must be on or after from, at most 62 days later")
		return from, to, false
	}
	return from, to, true
}

func (x *dutyAPI) schedule(w http.ResponseWriter, r *http.Request) {
	from, to, ok := x.scheduleRange(w, r)
	if !ok {
		return
	}
	httpjson.Write(w, http.StatusOK, x.d.Roster.Schedule(from, to))
}

func (x *dutyAPI) printSchedule(w http.ResponseWriter, r *http.Request) {
	from, to, ok := x.scheduleRange(w, r)
	if !ok {
		return
	}
	ro := x.d.Roster.Roster()
	x.html(w, x.schedulePage, map[string]any{"Site": x.site, "From": from, "To": to.AddDate(0, 0, -1), "Roster": ro, "Shifts": x.d.Roster.Schedule(from, to)})
}

// query reads date (YYYY-MM-DD) or from/to (dates, to inclusive), team, q
// and limit.
func (x *dutyAPI) query(w http.ResponseWriter, r *http.Request, extra ...string) (duty.Query, bool) {
	if !checkQuery(w, r, append([]string{"date", "from", "to", "team", "q", "limit"}, extra...)...) {
		return duty.Query{}, false
	}
	v := r.URL.Query()
	q := duty.Query{Team: v.Get("team"), Text: strings.TrimSpace(v.Get("q")), Limit: 500}
	day := func(key string) (time.Time, bool) {
		s := v.Get(key)
		if s == "" {
			return time.Time{}, true
		}
		if s == "today" { // the site's today: a browser elsewhere (or in UTC) does not know it
			now := x.d.Now().In(x.d.Location)
			return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, x.d.Location), true
		}
		t, err := time.ParseInLocation("2006-01-02", s, x.d.Location)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, key+" "+strconv.Quote(s)+" is not a date YYYY-MM-DD (or today)")
			return time.Time{}, false
		}
		return t, true
	}
	if v.Get("date") != "" && (v.Get("from") != "" || v.Get("to") != "") {
		httpjson.Error(w, http.StatusBadRequest, "give date, or from and to, not both")
		return q, false
	}
	d, ok := day("date")
	if !ok {
		return q, false
	}
	if !d.IsZero() {
		q.From, q.To = d, d.AddDate(0, 0, 1)
	}
	if q.From.IsZero() {
		if q.From, ok = day("from"); !ok {
			return q, false
		}
		to, ok := day("to")
		if !ok {
			return q, false
		}
		if !to.IsZero() {
			q.To = to.AddDate(0, 0, 1)
		}
	}
	if len(q.Text) > 200 {
		httpjson.Error(w, http.StatusBadRequest, "q is at most 200 characters")
		return q, false
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 5000 {
			httpjson.Error(w, http.StatusBadRequest, "limit must be 1 .. 5000")
			return q, false
		}
		q.Limit = n
	}
	return q, true
}

func (x *dutyAPI) handovers(w http.ResponseWriter, r *http.Request) {
	q, ok := x.query(w, r, "status")
	if !ok {
		return
	}
	switch s := r.URL.Query().Get("status"); s {
	case "", "all":
	case "pending":
		q.Pending = true
	default:
		httpjson.Error(w, http.StatusBadRequest, "status "+strconv.Quote(s)+" is not pending or all")
		return
	}
	hs, err := x.d.Handovers.Handovers(r.Context(), q)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if hs == nil {
		hs = []*duty.Handover{}
	}
	httpjson.Write(w, http.StatusOK, hs)
}

// overdue lists the teams whose outgoing shift ended past the grace with no
// handover signed (what the handover_overdue alarm counts).
func (x *dutyAPI) overdue(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	list, err := x.d.Overdue.Overdue(r.Context())
	if err != nil {
		x.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, list)
}

func (x *dutyAPI) draft(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "team") {
		return
	}
	h, err := x.d.Handovers.Draft(r.Context(), r.URL.Query().Get("team"), who(r))
	if err != nil {
		x.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, h)
}

// SignHandover is the body of POST /api/v1/handovers: the outgoing person
// (the login, never the body) signs the team's handover with the summary
// generated now.
type SignHandover struct {
	Team    string `json:"team"`
	Remarks string `json:"remarks"`
}

func (x *dutyAPI) sign(w http.ResponseWriter, r *http.Request) {
	var b SignHandover
	if !httpjson.Decode(w, r, &b) {
		return
	}
	if b.Team == "" {
		httpjson.Error(w, http.StatusBadRequest, "team is required: whose shift is handed over (a team of the duty roster)")
		return
	}
	h, err := x.d.Handovers.Sign(r.Context(), b.Team, b.Remarks, who(r))
	if err != nil {
		x.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, h)
}

func (x *dutyAPI) handover(w http.ResponseWriter, r *http.Request) {
	id, ok := handoverID(w, r)
	if !ok || !checkQuery(w, r) {
		return
	}
	h, err := x.d.Handovers.Handover(r.Context(), id)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, h)
}

func handoverID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		httpjson.Error(w, http.StatusBadRequest, "handover id "+strconv.Quote(r.PathValue("id"))+" is not a positive number")
		return 0, false
	}
	return id, true
}

// AcceptHandover is the body of POST /api/v1/handovers/{id}/accept.
type AcceptHandover struct {
	Note string `json:"note"`
}

func (x *dutyAPI) accept(w http.ResponseWriter, r *http.Request) {
	id, ok := handoverID(w, r)
	if !ok {
		return
	}
	var b AcceptHandover
	if !httpjson.Decode(w, r, &b) {
		return
	}
	h, err := x.d.Handovers.Accept(r.Context(), id, b.Note, who(r))
	if err != nil {
		x.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, h)
}

func (x *dutyAPI) entries(w http.ResponseWriter, r *http.Request) {
	q, ok := x.query(w, r)
	if !ok {
		return
	}
	es, err := x.d.Log.Entries(r.Context(), q)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if es == nil {
		es = []*duty.Entry{}
	}
	httpjson.Write(w, http.StatusOK, es)
}

func (x *dutyAPI) write(w http.ResponseWriter, r *http.Request) {
	var b duty.EntryInput
	if !httpjson.Decode(w, r, &b) {
		return
	}
	e, err := x.d.Log.Write(r.Context(), b, who(r))
	if err != nil {
		x.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, e)
}

// ---- printable pages ---------------------------------------------------------

func (x *dutyAPI) html(w http.ResponseWriter, t *template.Template, v any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // what people wrote: not kept in caches
	if err := t.Execute(w, v); err != nil {
		x.log.Warn("printing a duty page failed", "err", err)
	}
}

func (x *dutyAPI) funcs() template.FuncMap {
	return template.FuncMap{
		"t": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(x.d.Location).Format("2006-01-02 15:04")
		},
		"kind": func(k string) string { return duty.Kinds[k] + " " + k },
		"d":    func(t time.Time) string { return t.Format("2006-01-02") },
		"prio": func(p rules.Priority) string { return priorityZH[string(p)] },
	}
}

const printStyle = `<style>body{font:14px/1.45 "Noto Sans CJK SC","Noto Sans",sans-serif;margin:1.5em;color:#000;background:#fff}
h1{font-size:20px;margin:0 0 .3em}h2{font-size:16px;margin:1.2em 0 .3em;border-bottom:1px solid #000}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #888;padding:.25em .4em;text-align:left;vertical-align:top}
th{background:#eee}.sig{display:grid;grid-template-columns:1fr 1fr;gap:1em;margin-top:1em}.sig div{border:1px solid #000;padding:.5em}
.muted{color:#555}.over{font-weight:700}@media print{.noprint{display:none}}</style>`

const handoverHTML = (`<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>交接班记录 Shift handover #{{.H.ID}}</title>` + printStyle + `</head><body>
<p class="noprint muted">打印：Ctrl+P / Print with Ctrl+P</p>
<h1>交接班记录 Shift handover #{{.H.ID}}</h1>
<p>{{.Site}} · {{.H.TeamName}}（{{.H.Team}}）· 班次 Shift {{t .H.ShiftStart}} – {{t .H.ShiftEnd}}
{{if .H.Rostered}} · 排班 Rostered: {{.H.RosterName}} → {{.H.NextName}}{{end}}</p>
<div class="sig"><div><b>交班人 Outgoing</b><br>{{.H.Outgoing.Name}}（{{.H.Outgoing.By}}）<br>签字时间 Signed: {{t .H.Outgoing.At}}</div>
<div><b>接班人 Incoming</b><br>{{with .H.Incoming}}{{.Name}}（{{.By}}）<br>接班时间 Accepted: {{t .At}}{{if .Note}}<br>{{.Note}}{{end}}{{else}}待接班 awaiting acceptance{{end}}</div></div>
<h2>交班说明 Remarks</h2><p>{{if .H.Remarks}}{{.H.Remarks}}{{else}}无 none{{end}}</p>
{{with .H.Summary}}
<h2>未确认及活动报警 Open and unacknowledged alarms（{{len .Alarms}}）</h2>
{{if .Alarms}}<table><tr><th>优先级 Priority</th><th>报警 Alarm</th><th>设备 Asset</th><th>状态 State</th><th>开始 Since</th><th>确认人 Acked by</th></tr>
{{range .Alarms}}<tr><td>{{prio .Priority}}</td><td>{{.NameZH}} {{.Name}}</td><td>{{.Asset}}</td><td>{{.State}}</td><td>{{t .Since}}</td><td>{{.AckBy}}</td></tr>{{end}}</table>{{else}}<p>无 none</p>{{end}}
<h2>搁置及停用报警 Shelved and out-of-service alarms（{{len .Masked}}）</h2>
{{if .Masked}}<table><tr><th>报警 Alarm</th><th>设备 Asset</th><th>状态 State</th><th>操作人 By</th><th>原因 Reason</th><th>至 Until</th></tr>
{{range .Masked}}<tr><td>{{.NameZH}} {{.Name}}</td><td>{{.Asset}}</td><td>{{.State}}</td><td>{{.By}}</td><td>{{.Note}}</td><td>{{t .Until}}</td></tr>{{end}}</table>{{else}}<p>无 none</p>{{end}}
<h2>未关闭的突发事件 Open incidents（{{len .Incidents}}）</h2>
{{if .Incidents}}<table><tr><th>#</th><th>预案 Plan</th><th>设备 Asset</th><th>开始 Started</th><th>进度 Done</th><th>当前步骤 Current steps</th></tr>
{{range .Incidents}}<tr><td>{{.ID}}{{if .Drill}} 演练{{end}}</td><td>{{.Name}}</td><td>{{.Asset}} {{.Location}}</td><td>{{t .Started}}</td><td>{{.Done}}/{{.Total}}</td>
<td>{{range .Current}}{{if .TitleZH}}{{.TitleZH}}{{else}}{{.Title}}{{end}}（时限 due {{t .Due}}{{if .Overdue}}，<span class="over">超时 overdue</span>{{end}}）<br>{{end}}</td></tr>{{end}}</table>{{else}}<p>无 none</p>{{end}}
<h2>未完成工单 Open work orders（{{len .WorkOrders}}）</h2>
{{if .WorkOrders}}<table><tr><th>#</th><th>优先级</th><th>类别 Category</th><th>描述 Description</th><th>状态 Status</th><th>负责人 Assignee</th><th>解决时限 Due</th></tr>
{{range .WorkOrders}}<tr><td>{{.ID}}</td><td>{{prio .Priority}}</td><td>{{.Category}}</td><td>{{.Description}} {{.Location}}</td><td>{{.Status}}</td><td>{{.Assignee}}</td>
<td>{{t .ResolutionDue}}{{if .Overdue}} <span class="over">超时 overdue</span>{{end}}</td></tr>{{end}}</table>{{else}}<p>无 none</p>{{end}}
<h2>进行中的计划停水停电/维保 Planned works in progress（{{len .PlannedWorks}}）</h2>
{{if .PlannedWorks}}<table><tr><th>#</th><th>内容 What</th><th>状态 Status</th><th>楼栋 Buildings</th><th>开始 Start</th><th>预计结束 Expected end</th></tr>
{{range .PlannedWorks}}<tr><td>{{.ID}}</td><td>{{.Title}}</td><td>{{.Status}}</td><td>{{range .Buildings}}{{.}} {{end}}</td><td>{{t .Start}}</td><td>{{t .End}}</td></tr>{{end}}</table>{{else}}<p>无 none</p>{{end}}
<h2>本班值班记录 Duty log this shift（{{len .Log}}）</h2>
{{if .Log}}<table><tr><th>时间 At</th><th>类型 Kind</th><th>来电/报告人 Caller</th><th>内容 Text</th><th>工单 WO</th><th>记录人 By</th></tr>
{{range .Log}}<tr><td>{{t .At}}</td><td>{{kind .Kind}}</td><td>{{.Caller}}</td><td>{{.Text}}</td><td>{{if .WorkOrder}}#{{.WorkOrder}}{{end}}</td><td>{{.AuthorName}}（{{.Author}}）</td></tr>{{end}}</table>{{else}}<p>无 none</p>{{end}}
{{if .Unavailable}}<p class="muted">未能读取 Not available: {{range .Unavailable}}{{.}}; {{end}}</p>{{end}}
<p class="muted">汇总生成于 Summary generated {{t .Generated}}</p>
{{end}}</body></html>`)

const logHTML = (`<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>值班记录 Duty log {{.Title}}</title>` + printStyle + `</head><body>
<p class="noprint muted">打印：Ctrl+P / Print with Ctrl+P</p>
<h1>值班记录 Duty log · {{.Title}}</h1><p>{{.Site}}</p>
{{if .Entries}}<table><tr><th>时间 At</th><th>类型 Kind</th><th>班组 Team</th><th>来电/报告人 Caller</th><th>内容 Text</th><th>工单 WO</th><th>记录人 By</th><th>录入 Written</th></tr>
{{range .Entries}}<tr><td>{{t .At}}</td><td>{{kind .Kind}}</td><td>{{.Team}}</td><td>{{.Caller}}</td><td>{{.Text}}</td><td>{{if .WorkOrder}}#{{.WorkOrder}}{{end}}</td><td>{{.AuthorName}}（{{.Author}}）</td><td>{{t .Recorded}}</td></tr>{{end}}</table>
{{else}}<p>无记录 no entries</p>{{end}}
{{with .Handovers}}<h2>交接班 Handovers</h2><table><tr><th>#</th><th>班组 Team</th><th>交班人 Outgoing</th><th>接班人 Incoming</th></tr>
{{range .}}<tr><td>{{.ID}}</td><td>{{.TeamName}}</td><td>{{.Outgoing.Name}} {{t .Outgoing.At}}</td><td>{{with .Incoming}}{{.Name}} {{t .At}}{{else}}待接班 awaiting{{end}}</td></tr>{{end}}</table>{{end}}
</body></html>`)

const scheduleHTML = `<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>值班表 Duty roster</title>` + printStyle + `</head><body>
<p class="noprint muted">打印：Ctrl+P / Print with Ctrl+P</p>
<h1>值班表 Duty roster · {{d .From}} – {{d .To}}</h1><p>{{.Site}} · 版本 version {{.Roster.Version}}（{{t .Roster.Updated}} {{.Roster.By}}）</p>
<table><tr><th>班组 Team</th><th>值班人 On duty</th><th>从 From</th><th>到 Until</th><th></th></tr>
{{range .Shifts}}<tr><td>{{.TeamName}}</td><td>{{.Name}}</td><td>{{t .From}}</td><td>{{t .Until}}</td><td>{{if .Override}}替班 override{{end}}</td></tr>{{end}}</table>
</body></html>`

func (x *dutyAPI) printHandover(w http.ResponseWriter, r *http.Request) {
	id, ok := handoverID(w, r)
	if !ok || !checkQuery(w, r) {
		return
	}
	h, err := x.d.Handovers.Handover(r.Context(), id)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	x.html(w, x.handoverPage, map[string]any{"H": h, "Site": x.site})
}

func (x *dutyAPI) printLog(w http.ResponseWriter, r *http.Request) {
	q, ok := x.query(w, r)
	if !ok {
		return
	}
	if q.From.IsZero() {
		httpjson.Error(w, http.StatusBadRequest, "date (YYYY-MM-DD) or from is required: which day's log to print")
		return
	}
	es, err := x.d.Log.Entries(r.Context(), q)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	hq := q
	hq.Text = ""
	hs, err := x.d.Handovers.Handovers(r.Context(), hq)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	title := q.From.Format("2006-01-02")
	if !q.To.IsZero() && q.To.Sub(q.From) > 24*time.Hour+time.Hour {
		title += " – " + q.To.AddDate(0, 0, -1).Format("2006-01-02")
	}
	x.html(w, x.logPage, map[string]any{"Title": title, "Site": x.site, "Entries": es, "Handovers": hs})
}
