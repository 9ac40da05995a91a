package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// CenterStore is the monitoring center's records of every site (the
// center store, internal/store/postgres).
type CenterStore interface {
	Sites(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]replication.Site, error)
	Records(ctx context.Context, kind, site string, states []string, limit int) ([]replication.Record, error)
	Command(ctx context.Context, id string) (replication.CommandStatus, error)
	Commands(ctx context.Context, site string, limit int) ([]replication.CommandStatus, error)
}

// CommandIssuer sends a command down to a site (replication.Commander).
type CommandIssuer interface {
	Issue(ctx context.Context, c replication.Command) (replication.Command, error)
}

// Center is what MountCenter needs.
type Center struct {
	Store        CenterStore
	Commands     CommandIssuer
	Sites        []replication.SiteInfo
	OfflineAfter time.Duration
	Wait         time.Duration // how long an action waits for the site's answer; default 5s
	Now          func() time.Time
	Log          *slog.Logger
}

// MountCenter adds the monitoring center's endpoints: GET /api/v1/sites,
// the actions sent down to a site (/api/v1/sites/{site}/…) and the
// commands' results. With screens (gateway center), also the cross-site
// lists GET /api/v1/alarms, /workorders, /incidents (?site=…) and the
// multi-site wall at /. Every answer and action is limited to the user's
// sites (dashboard.users[].sites).
func (a *API) MountCenter(c Center, screens bool) {
	if c.Wait <= 0 {
		c.Wait = 5 * time.Second
	}
	x := &centerAPI{c: c}
	a.mux.HandleFunc("GET /api/v1/sites", x.sites)
	a.mux.HandleFunc("POST /api/v1/sites/{site}/alarms/{id}/ack", x.ack)
	a.mux.HandleFunc("POST /api/v1/sites/{site}/workorders/{id}/transition", x.transition)
	a.mux.HandleFunc("POST /api/v1/sites/{site}/incidents/{id}/steps/{step}/complete", x.completeStep)
	a.mux.HandleFunc("GET /api/v1/sites/{site}/commands", x.commands)
	a.mux.HandleFunc("GET /api/v1/commands/{id}", x.command)
	if !screens {
		return
	}
	a.mux.HandleFunc("GET /api/v1/alarms", x.list(replication.KindAlarm))
	a.mux.HandleFunc("GET /api/v1/workorders", x.list(replication.KindWorkOrder))
	a.mux.HandleFunc("GET /api/v1/incidents", x.list(replication.KindIncident))
	a.mux.HandleFunc("POST /api/v1/alarms/{id}/ack", x.ack) // ?site=…: the site's own API's shape
}

type centerAPI struct {
	c Center

	mu         sync.Mutex // one computation of the breaches at a time
	breachesAt time.Time
	byBreach   map[string]int // the overview's SLA breaches (center_kpi_api.go)
}

// scope is the request's principal's site filter (everything without a
// dashboard: section: the API is then read-only anyway).
func scope(r *http.Request) access.Principal {
	p, _ := access.PrincipalOf(r)
	return p
}

// CenterSite is one site on the center's overview.
type CenterSite struct {
	replication.Site
	Name   string `json:"name,omitempty"`
	Region string `json:"region,omitempty"`
	URL    string `json:"url,omitempty"`
	// SLABreaches: open work orders past a deadline now (centerkpi.Breached).
	SLABreaches int `json:"sla_breaches"`
}

func (x *centerAPI) sites(w http.ResponseWriter, r *http.Request) {
	sites, err := x.c.Store.Sites(r.Context(), x.c.Now(), x.c.OfflineAfter)
	if err != nil {
		x.c.Log.Error("sites overview", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
		return
	}
	breaches, err := x.breaches(r.Context())
	if err != nil {
		x.c.Log.Error("sites overview: open work orders", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
		return
	}
	p := scope(r)
	out := []CenterSite{}
	for _, s := range sites {
		if !p.SeesSite(s.Site) {
			continue
		}
		cs := CenterSite{Site: s, SLABreaches: breaches[s.Site]}
		for _, info := range x.c.Sites {
			if info.ID == s.Site {
				cs.Name, cs.Region, cs.URL = info.Name, info.Region, info.URL
			}
		}
		out = append(out, cs)
	}
	httpjson.Write(w, http.StatusOK, out)
}

// states are the record states each list's status filter means.
var centerStates = map[string]map[string][]string{
	replication.KindAlarm: {"active": {"unacknowledged", "acknowledged"}, "not_normal": {"unacknowledged", "acknowledged", "returned_unacknowledged", "shelved", "out_of_service", "suppressed"},
		"unacknowledged": {"unacknowledged"}, "acknowledged": {"acknowledged"}, "all": nil},
	replication.KindWorkOrder: {"open": {"opened", "dispatched", "accepted", "on_site", "in_progress"}, "all": nil},
	replication.KindIncident:  {"open": {"open"}, "all": nil},
}

func (x *centerAPI) list(kind string) http.HandlerFunc {
	param, def := "status", "open"
	if kind == replication.KindAlarm {
		param, def = "state", "not_normal"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !checkQuery(w, r, "site", param) {
			return
		}
		site, p := r.URL.Query().Get("site"), scope(r)
		if site != "" && !p.SeesSite(site) {
			httpjson.Error(w, http.StatusForbidden, "该站点不在您的管辖范围 / site "+site+" is not among your sites")
			return
		}
		f := r.URL.Query().Get(param)
		if f == "" {
			f = def
		}
		states, ok := centerStates[kind][f]
		if !ok {
			httpjson.Error(w, http.StatusBadRequest, param+" "+f+" is not one the center knows")
			return
		}
		recs, err := x.c.Store.Records(r.Context(), kind, site, states, 5000)
		if err != nil {
			x.c.Log.Error("center records", "kind", kind, "err", err)
			httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
			return
		}
		out := []map[string]any{}
		for _, rec := range recs {
			if !p.SeesSite(rec.Site) {
				continue
			}
			raw := rec.Doc
			if !staff(r) { // the wall token: what the site's own wall gets
				raw = recordForViewer(kind, raw)
			}
			var doc map[string]any
			if json.Unmarshal(raw, &doc) != nil || doc == nil {
				doc = map[string]any{}
			}
			doc["site"] = rec.Site // the record as the site's API shows it, and where it is
			out = append(out, doc)
		}
		httpjson.Write(w, http.StatusOK, out)
	}
}

// CenterAction is the body of an action sent down to a site.
type CenterAction struct {
	Note string `json:"note"`
	To   string `json:"to"` // transition: the work order's new status
}

func (x *centerAPI) ack(w http.ResponseWriter, r *http.Request) {
	var b CenterAction
	if !httpjson.Decode(w, r, &b) {
		return
	}
	x.issue(w, r, replication.Command{Action: replication.ActionAckAlarm, Key: r.PathValue("id"), Note: b.Note})
}

func (x *centerAPI) transition(w http.ResponseWriter, r *http.Request) {
	var b CenterAction
	if !httpjson.Decode(w, r, &b) {
		return
	}
	if b.To == "" {
		httpjson.Error(w, http.StatusBadRequest, `"to" is required: the status to move to`)
		return
	}
	x.issue(w, r, replication.Command{Action: replication.ActionTransition, Key: r.PathValue("id"), To: b.To, Note: b.Note})
}

func (x *centerAPI) completeStep(w http.ResponseWriter, r *http.Request) {
	var b CenterAction
	if !httpjson.Decode(w, r, &b) {
		return
	}
	x.issue(w, r, replication.Command{Action: replication.ActionCompleteStep, Key: r.PathValue("id"), Step: r.PathValue("step"), Note: b.Note})
}

// issue sends c down to the request's site as the request's user and
// waits (a few seconds) for the site's answer: 200 applied, 409 refused
// or expired (with the site's reason), 202 still on its way.
func (x *centerAPI) issue(w http.ResponseWriter, r *http.Request, c replication.Command) {
	site := r.PathValue("site")
	if site == "" {
		site = r.URL.Query().Get("site")
	}
	p := scope(r)
	switch {
	case site == "" || !replication.ValidSite(site):
		httpjson.Error(w, http.StatusBadRequest, "which site? /api/v1/sites/{site}/… or ?site=…")
		return
	case !p.SeesSite(site):
		httpjson.Error(w, http.StatusForbidden, "该站点不在您的管辖范围 / site "+site+" is not among your sites")
		return
	case !replication.RoleAllows(p.Role.String(), c.Action):
		httpjson.Error(w, http.StatusForbidden, "权限不足 / "+p.Role.String()+" may not do this")
		return
	}
	c.Site, c.By, c.Role = site, p.Username, p.Role.String()
	c, err := x.c.Commands.Issue(r.Context(), c)
	if err != nil {
		x.c.Log.Error("center command", "err", err)
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	deadline := time.Now().Add(x.c.Wait)
	for {
		cs, err := x.c.Store.Command(r.Context(), c.ID)
		switch {
		case err != nil:
			x.c.Log.Error("center command", "id", c.ID, "err", err)
			httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
			return
		case cs.Status == replication.ResultApplied:
			httpjson.Write(w, http.StatusOK, cs)
			return
		case cs.Status != "pending":
			httpjson.Write(w, http.StatusConflict, map[string]any{"error": "站点拒绝 / the site refused: " + cs.Reason, "command": cs})
			return
		case time.Now().After(deadline) || r.Context().Err() != nil:
			httpjson.Write(w, http.StatusAccepted, cs) // on its way: GET /api/v1/commands/{id}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (x *centerAPI) commands(w http.ResponseWriter, r *http.Request) {
	site := r.PathValue("site")
	if !scope(r).SeesSite(site) {
		httpjson.Error(w, http.StatusForbidden, "该站点不在您的管辖范围 / site "+site+" is not among your sites")
		return
	}
	cs, err := x.c.Store.Commands(r.Context(), site, 200)
	if err != nil {
		x.c.Log.Error("center commands", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
		return
	}
	httpjson.Write(w, http.StatusOK, cs)
}

func (x *centerAPI) command(w http.ResponseWriter, r *http.Request) {
	cs, err := x.c.Store.Command(r.Context(), r.PathValue("id"))
	if errors.Is(err, rules.ErrNotFound) || (err == nil && !scope(r).SeesSite(cs.Site)) {
		httpjson.Error(w, http.StatusNotFound, "no command "+r.PathValue("id"))
		return
	}
	if err != nil {
		x.c.Log.Error("center command", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
		return
	}
	httpjson.Write(w, http.StatusOK, cs)
}

// recordForViewer is a replicated record as the site's own API shows it to the
// wall token (ForViewer of its type: no callers' names and numbers, notes
// or what people wrote); a record that does not decode shows as empty.
func recordForViewer(kind string, raw []byte) []byte {
	var v any
	switch kind {
	case replication.KindAlarm:
		var a rules.Alarm
		if json.Unmarshal(raw, &a) != nil {
			return []byte("{}")
		}
		v = a.ForViewer()
	case replication.KindWorkOrder:
		var w workorder.WorkOrder
		if json.Unmarshal(raw, &w) != nil {
			return []byte("{}")
		}
		v = w.ForViewer()
	case replication.KindIncident:
		var in playbook.Incident
		if json.Unmarshal(raw, &in) != nil {
			return []byte("{}")
		}
		v = in.ForViewer()
	default:
		return []byte("{}")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("{}")
	}
	return b
}
