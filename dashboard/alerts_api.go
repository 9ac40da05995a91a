package dashboard

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/demoreceiver"
	"github.com/propgate/gateway/dashboard/httpjson"
)

// AlertLinks is what the alerting endpoints need from the router.
type AlertLinks interface {
	OnCallNow() []alerts.OnCall
	CheckLink(ctx context.Context, l alerts.Link) (*alerts.LinkView, error)
	AckByLink(ctx context.Context, l alerts.Link, clientIP string) (*alerts.Alert, error)
}

// AlertsOptions configure MountAlerts.
type AlertsOptions struct {
	// DemoReceiver mounts /demo/receiver (the demo's webhook target); nil,
	// the default, leaves it out: only the demo asks for it.
	DemoReceiver *demoreceiver.Options
	// TimeZone for times on the acknowledgement page; default the server's.
	TimeZone *time.Location
}

// MountAlerts adds the on-call list, the notification and alert history
// (contact details only for operators), the acknowledgement-link page and,
// when asked, the demo receiver.
func (a *API) MountAlerts(links AlertLinks, history alerts.Log, o AlertsOptions) {
	if o.TimeZone == nil {
		o.TimeZone = time.Local
	}
	x := &alertsAPI{links: links, history: history, loc: o.TimeZone, log: a.deps.Log}
	a.mux.HandleFunc("GET /api/v1/oncall", x.oncall)
	a.mux.HandleFunc("GET /api/v1/notifications", x.notifications)
	a.mux.HandleFunc("GET /api/v1/alerts", x.alerts)
	a.mux.HandleFunc("GET /api/v1/alerts/{id}/ack", x.ackPage) // also HEAD: shows, never acknowledges
	a.mux.HandleFunc("POST /api/v1/alerts/{id}/ack", x.ack)
	if o.DemoReceiver != nil {
		demoreceiver.New(*o.DemoReceiver).Mount(a.mux)
	}
}

type alertsAPI struct {
	links   AlertLinks
	history alerts.Log
	loc     *time.Location
	log     *slog.Logger
}

func (x *alertsAPI) oncall(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, x.links.OnCallNow())
}

func limit(w http.ResponseWriter, r *http.Request) (int, bool) {
	if !checkQuery(w, r, "limit") {
		return 0, false
	}
	n := 200
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 5000 {
			httpjson.Error(w, http.StatusBadRequest, "limit must be 1 .. 5000")
			return 0, false
		}
		n = v
	}
	return n, true
}

// seesContacts: phone numbers, e-mail addresses, client IPs and delivery
// errors are for operators; the wall display's viewer token (on a screen in
// the duty room, in browser history) gets none.
func seesContacts(r *http.Request) bool {
	p, ok := access.PrincipalOf(r)
	return ok && p.Role >= access.Operator
}

func (x *alertsAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	x.log.Error("reading the alerts history failed", "path", r.URL.Path, "err", err)
	httpjson.Error(w, http.StatusInternalServerError, "reading the alerts history failed; see the gateway log")
}

func (x *alertsAPI) notifications(w http.ResponseWriter, r *http.Request) {
	n, ok := limit(w, r)
	if !ok {
		return
	}
	atts, err := x.history.Attempts(r.Context(), n)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if atts == nil {
		atts = []*alerts.Attempt{}
	}
	if !seesContacts(r) {
		for _, at := range atts {
			at.Address, at.ClientIP = "", ""
			if at.Error != "" {
				at.Error = "delivery failed (details for operators)"
			}
		}
	}
	httpjson.Write(w, http.StatusOK, atts)
}

func (x *alertsAPI) alerts(w http.ResponseWriter, r *http.Request) {
	n, ok := limit(w, r)
	if !ok {
		return
	}
	as, err := x.history.Alerts(r.Context(), n)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if as == nil {
		as = []*alerts.Alert{}
	}
	if !seesContacts(r) {
		for _, a := range as {
			a.Notes = nil // may name people and what changed in the on-call config
		}
	}
	httpjson.Write(w, http.StatusOK, as)
}

var ackTemplate = template.Must(template.New("ack").Parse(`<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font:18px/1.5 sans-serif;margin:1.5em;max-width:36em}h1{font-size:22px}.ok{color:#060}.no{color:#b00}
dt{color:#555;font-size:15px}dd{margin:0 0 .5em}button{font-size:20px;padding:.6em 1.4em;background:#b00;color:#fff;border:0;border-radius:6px}</style></head><body>
<h1 class="{{.Class}}">{{.Title}}</h1>
{{with .Alert}}<dl>
<dt>报警 Alarm</dt><dd>{{.NameZH}}{{if ne .NameZH .Name}}<br>{{.Name}}{{end}}</dd>
<dt>优先级 Priority</dt><dd>{{$.Priority}}</dd>
<dt>位置 Where</dt><dd>{{.Location}}</dd>
<dt>开始 Since</dt><dd>{{$.Since}}</dd>
<dt>状态 State</dt><dd>{{$.State}}{{if .AckedBy}}（{{.AckedBy}}）{{end}}</dd>
{{if $.For}}<dt>此链接发给 Link for</dt><dd>{{$.For}}{{if $.Expires}}，有效至 {{$.Expires}}{{end}}</dd>{{end}}
</dl>{{end}}
<p>{{.Detail}}</p>
{{if .Form}}<form method="post" action="{{.Action}}">
<input type="hidden" name="by" value="{{.By}}"><input type="hidden" name="exp" value="{{.Exp}}"><input type="hidden" name="sig" value="{{.Sig}}">
<button type="submit">确认报警，我来处理 I'm on it</button></form>
<p style="font-size:15px;color:#555">确认后升级通知停止，并以您的名义记录（含来源 IP）。Acknowledging stops the escalation and is recorded in your name, with your IP address.</p>{{end}}
</body></html>`))

var priorityZH = map[string]string{"critical": "紧急 critical", "high": "高 high", "medium": "中 medium", "low": "低 low"}
var stateZH = map[alerts.AlertState]string{alerts.Firing: "报警中，等待确认 firing", alerts.Acked: "已确认 acknowledged",
	alerts.Resolved: "已恢复 resolved", alerts.Inhibited: "未发送 not sent", alerts.Closed: "已关闭 closed"}

type ackView struct {
	Title, Class, Detail   string
	Alert                  *alerts.Alert
	Priority, Since, State string
	For, Expires           string
	Form                   bool
	Action, By, Exp, Sig   string
}

func (x *alertsAPI) render(w http.ResponseWriter, status int, v ackView) {
	if v.Alert != nil {
		if v.Alert.NameZH == "" {
			v.Alert.NameZH = v.Alert.Name
		}
		v.Priority = priorityZH[string(v.Alert.Priority)]
		v.Since = v.Alert.Since.In(x.loc).Format("2006-01-02 15:04:05")
		v.State = stateZH[v.Alert.State]
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the page's URL holds the signature
	h.Set("X-Robots-Tag", "noindex")
	w.WriteHeader(status)
	_ = ackTemplate.Execute(w, v)
}

// linkError is the page for a link that cannot be used.
func (x *alertsAPI) linkError(w http.ResponseWriter, err error, al *alerts.Alert) {
	switch {
	case errors.Is(err, alerts.ErrBadSignature):
		x.render(w, http.StatusForbidden, ackView{Title: "链接无效 Link refused", Class: "no", Detail: "此链接无效（被修改或不是本系统发出）。This link is not valid (it was changed or is not ours)."})
	case errors.Is(err, alerts.ErrLinkExpired):
		x.render(w, http.StatusForbidden, ackView{Title: "链接已过期 Link expired", Class: "no", Detail: "此链接已过期，请在值班台确认。This link has expired; acknowledge in the console."})
	case errors.Is(err, alerts.ErrLinkUsed):
		x.render(w, http.StatusConflict, ackView{Title: "链接已使用 Link already used", Class: "no", Alert: al,
			Detail: "此链接已使用过，每个链接只能使用一次；如需操作请在值班台进行。This link was used already: each link works once. Use the console."})
	case errors.Is(err, alerts.ErrNotFound):
		x.render(w, http.StatusNotFound, ackView{Title: "未找到 Not found", Class: "no", Detail: "没有这条报警。There is no such alert."})
	default:
		x.log.Error("acknowledgement link failed", "err", err)
		x.render(w, http.StatusInternalServerError, ackView{Title: "错误 Error", Class: "no", Detail: "系统错误，请在值班台确认。Something went wrong; acknowledge in the console."})
	}
}

// ackPage is what opening the link in a message shows: what, where, since
// when and for whom, with a button. It changes nothing, so link previews,
// mail scanners and HEAD requests cannot acknowledge.
func (x *alertsAPI) ackPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query() // other parameters (chat apps append their own) are ignored
	l := alerts.Link{AlertID: r.PathValue("id"), Person: q.Get("by"), Exp: q.Get("exp"), Sig: q.Get("sig")}
	v, err := x.links.CheckLink(r.Context(), l)
	if err != nil {
		x.linkError(w, err, nil)
		return
	}
	page := ackView{Alert: v.Alert, For: v.PersonName, Expires: v.Expires.In(x.loc).Format("01-02 15:04"),
		Action: r.URL.EscapedPath(), By: l.Person, Exp: l.Exp, Sig: l.Sig}
	switch {
	case !v.UsedAt.IsZero():
		page.Title, page.Class = "链接已使用 Link already used", "no"
		page.Detail = "此链接已于 " + v.UsedAt.In(x.loc).Format("01-02 15:04:05") + " 使用过，每个链接只能使用一次。This link was used at that time; each link works once."
	case v.Alert.State == alerts.Firing:
		page.Title, page.Form = "确认这条报警？ Acknowledge this alarm?", true
		page.Detail = "点击下方按钮确认由您处理。Press the button to take it."
	default:
		page.Title, page.Class = "无需确认 Nothing to acknowledge", "ok"
		page.Detail = "这条报警当前不需要确认。This alert is not waiting for acknowledgement."
	}
	x.render(w, http.StatusOK, page)
}

// ack is the POST from the confirmation page: the signed parameters,
// form-encoded. The signature is the credential (no session); the link then
// stops working.
func (x *alertsAPI) ack(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "the acknowledgement is a form with by, exp and sig")
		return
	}
	f := r.PostForm
	l := alerts.Link{AlertID: r.PathValue("id"), Person: f.Get("by"), Exp: f.Get("exp"), Sig: f.Get("sig")}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	al, err := x.links.AckByLink(r.Context(), l, ip)
	if err != nil {
		x.linkError(w, err, al)
		return
	}
	access.AuditAs(r, l.Person) // the audit log records the acknowledgement as the person the link was for
	page := ackView{Alert: al}
	if al.State == alerts.Acked {
		page.Title, page.Class, page.Detail = "已确认 Acknowledged", "ok", "升级已停止，已记录为您处理。Escalation stopped; recorded in your name."
	} else {
		page.Title, page.Class, page.Detail = "无需确认 Nothing to acknowledge", "ok", "这条报警当前不需要确认。This alert is not waiting for acknowledgement."
	}
	x.render(w, http.StatusOK, page)
}
