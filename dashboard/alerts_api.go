package dashboard

import (
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/propgate/gateway/alerts"
)

// MountAlerts adds on-call, notification and acknowledgement-link endpoints.
func (a *API) MountAlerts(r *alerts.Router) {
	x := &alertsAPI{r: r}
	a.mux.HandleFunc("GET /api/v1/oncall", x.oncall)
	a.mux.HandleFunc("GET /api/v1/notifications", x.notifications)
	a.mux.HandleFunc("GET /api/v1/alerts", x.alerts)
	a.mux.HandleFunc("GET /api/v1/alerts/{id}/ack", x.ackLink)
}

type alertsAPI struct{ r *alerts.Router }

func (x *alertsAPI) oncall(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, x.r.OnCallNow())
}

func limit(w http.ResponseWriter, r *http.Request) (int, bool) {
	if !checkQuery(w, r, "limit") {
		return 0, false
	}
	n := 200
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 5000 {
			writeError(w, http.StatusBadRequest, "limit must be 1 .. 5000")
			return 0, false
		}
		n = v
	}
	return n, true
}

func (x *alertsAPI) notifications(w http.ResponseWriter, r *http.Request) {
	n, ok := limit(w, r)
	if !ok {
		return
	}
	atts, err := x.r.Store().Attempts(r.Context(), n)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if atts == nil {
		atts = []*alerts.Attempt{}
	}
	writeJSON(w, http.StatusOK, atts)
}

func (x *alertsAPI) alerts(w http.ResponseWriter, r *http.Request) {
	n, ok := limit(w, r)
	if !ok {
		return
	}
	as, err := x.r.Store().Alerts(r.Context(), n)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if as == nil {
		as = []*alerts.Alert{}
	}
	writeJSON(w, http.StatusOK, as)
}

var ackPage = template.Must(template.New("ack").Parse(`<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{{.Title}}</title>
<style>body{font:18px/1.5 sans-serif;margin:1.5em}h1{font-size:22px}.ok{color:#060}.no{color:#b00}</style></head><body>
<h1 class="{{.Class}}">{{.Title}}</h1>{{if .Alert}}<p>{{.Alert.Name}}<br>{{.Alert.Location}}<br>{{.Alert.Priority}} · {{.Alert.State}}{{if .Alert.AckedBy}} · {{.Alert.AckedBy}}{{end}}</p>{{end}}
<p>{{.Detail}}</p></body></html>`))

// ackLink is the signed link in a message: it works without a login, from
// a phone, and says what was acknowledged.
func (x *alertsAPI) ackLink(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a, err := x.r.AckByLink(r.PathValue("id"), q.Get("by"), q.Get("exp"), q.Get("sig"))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := map[string]any{"Alert": a}
	switch {
	case err == nil:
		data["Title"], data["Class"], data["Detail"] = "已确认 Acknowledged", "ok", "Escalation stopped. 升级已停止。"
	case errors.Is(err, alerts.ErrBadSignature), errors.Is(err, alerts.ErrLinkExpired):
		w.WriteHeader(http.StatusForbidden)
		data["Title"], data["Class"], data["Detail"] = "链接无效 Link refused", "no", err.Error()
	case errors.Is(err, alerts.ErrNotFound):
		w.WriteHeader(http.StatusNotFound)
		data["Title"], data["Class"], data["Detail"] = "未找到 Not found", "no", err.Error()
	default:
		w.WriteHeader(http.StatusInternalServerError)
		data["Title"], data["Class"], data["Detail"] = "错误 Error", "no", err.Error()
	}
	_ = ackPage.Execute(w, data)
}

// demoReceiver is the webhook receiver the demo sends its alerts to, so a
// newcomer sees the messages without any outside account.
type demoReceiver struct {
	mu   sync.Mutex
	msgs []demoMessage
}

type demoMessage struct {
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// MountDemoReceiver adds POST/GET /demo/receiver (the last 200 messages).
func (a *API) MountDemoReceiver() {
	d := &demoReceiver{}
	a.mux.HandleFunc("POST /demo/receiver", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !json.Valid(b) {
			writeError(w, http.StatusBadRequest, "the demo receiver takes JSON")
			return
		}
		d.mu.Lock()
		d.msgs = append(d.msgs, demoMessage{At: time.Now(), Body: b})
		if len(d.msgs) > 200 {
			d.msgs = d.msgs[len(d.msgs)-200:]
		}
		d.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	a.mux.HandleFunc("GET /demo/receiver", func(w http.ResponseWriter, _ *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		out := make([]demoMessage, len(d.msgs))
		for i := range d.msgs {
			out[i] = d.msgs[len(d.msgs)-1-i] // newest first
		}
		writeJSON(w, http.StatusOK, out)
	})
}
