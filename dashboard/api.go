// Package dashboard owns the gateway's HTTP API and screens: assets, simulator,
// alarms, work orders, incidents, alerts, wall display, console, websocket hub.
//
// Who may call what lives in dashboard/access (roles, logins, sessions, the
// route-role guard, the audit log): every handler depends on it and none may
// bypass it, so it is a package of its own with a small surface (Guard,
// PrincipalOf, Actor, AuditAs). The JSON helpers both share are in
// dashboard/httpjson; the demo's webhook target is dashboard/demoreceiver.
package dashboard

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
)

// Scenarios is the simulator as the API sees it.
type Scenarios interface {
	Inject(name, target string) error
	Clear(name string) error
	Active() map[string]string
}

// Deps are what the API serves.
type Deps struct {
	State     *collectors.State
	Gatherer  prometheus.Gatherer
	Scenarios Scenarios // nil when the simulator is off
	Log       *slog.Logger
	Site      string
	SiteName  string // what screens call the site (site_name); default Site
	Demo      bool   // the config says demo: true; screens say so
}

// API is the HTTP API. Mark it ready once collection runs.
type API struct {
	deps      Deps
	ready     atomic.Bool
	mux       *http.ServeMux
	auth      *access.Auth // nil: no dashboard: section; the API is read-only (access.Guard)
	rules     *Rules       // nil until MountRules
	incidents *Incidents   // nil until MountIncidents
	onDuty    OnDuty       // nil until ShowOnDuty
	roleTeams map[string]string
	config    ConfigStatus          // nil until ShowConfig
	health    map[string]func() any // more to show in /healthz (AddHealth)
}

// ConfigStatus says which config runs and how the last reload went: the
// "config" of /healthz (a refused reload's file:line errors among it).
type ConfigStatus interface {
	ConfigStatus() any
}

// ShowConfig adds the config's status to /healthz; call it before serving.
func (a *API) ShowConfig(s ConfigStatus) { a.config = s }

// NewAPI builds the handlers.
func NewAPI(d Deps) *API {
	a := &API{deps: d, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(d.Log.Handler(), slog.LevelError)}))
	a.mux.HandleFunc("GET /api/v1/assets", a.assets)
	a.mux.HandleFunc("GET /api/v1/assets/{id}", a.asset)
	a.mux.HandleFunc("GET /api/v1/simulator/scenarios", a.scenarios)
	a.mux.HandleFunc("POST /api/v1/simulator/scenarios/{name}", a.inject)
	a.mux.HandleFunc("DELETE /api/v1/simulator/scenarios/{name}", a.clear)
	return a
}

// SetReady marks collection as running (or not).
func (a *API) SetReady(ok bool) { a.ready.Store(ok) }

// Handler returns the root handler: security headers on every response,
// then the access control. Without Auth (no dashboard: section) nothing
// that changes state is served.
func (a *API) Handler() http.Handler {
	return securityHeaders(access.Guard(a.auth, a.mux))
}

// UseAuth puts the API behind auth (MountDashboard does it too).
func (a *API) UseAuth(auth *access.Auth) { a.auth = auth }

// csp allows only the gateway's own scripts, styles, images and websocket;
// no page may frame the console (clickjacking its buttons).
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the wall token may be in the page's URL
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// AddHealth shows f's answer under name in /healthz (before serving).
func (a *API) AddHealth(name string, f func() any) {
	if a.health == nil {
		a.health = map[string]func() any{}
	}
	a.health[name] = f
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	if !a.ready.Load() {
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		return
	}
	out := map[string]any{"status": "ok"}
	if a.config != nil {
		out["config"] = a.config.ConfigStatus()
	}
	for name, f := range a.health {
		out[name] = f()
	}
	httpjson.Write(w, http.StatusOK, out)
}

// AssetView is one asset in /api/v1/assets.
type AssetView struct {
	ID       string                           `json:"id"`
	Kind     collectors.AssetKind             `json:"kind"`
	Name     string                           `json:"name,omitempty"`
	Building string                           `json:"building,omitempty"`
	Floor    string                           `json:"floor,omitempty"`
	Location string                           `json:"location,omitempty"`
	Fields   map[string]collectors.FieldState `json:"fields"`
}

func view(s collectors.AssetState) AssetView {
	return AssetView{ID: s.ID, Kind: s.Kind, Name: s.Name, Building: s.Building, Floor: s.Floor, Location: s.Location, Fields: s.Fields}
}

func (a *API) assets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for key := range q {
		if key != "kind" && key != "building" {
			httpjson.Error(w, http.StatusBadRequest, "unknown query parameter "+key+"; the filters are kind and building")
			return
		}
	}
	out := []AssetView{}
	for _, s := range a.deps.State.Snapshot() {
		if k := q.Get("kind"); k != "" && string(s.Kind) != k {
			continue
		}
		if b := q.Get("building"); b != "" && s.Building != b {
			continue
		}
		out = append(out, view(s))
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (a *API) asset(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, s := range a.deps.State.Snapshot() {
		if s.ID == id {
			httpjson.Write(w, http.StatusOK, view(s))
			return
		}
	}
	httpjson.Error(w, http.StatusNotFound, "no asset "+id)
}

// ScenarioRequest is the optional body of a scenario injection.
type ScenarioRequest struct {
	Target string `json:"target,omitempty"` // asset the scenario hits; default: the first that fits
}

func (a *API) scenarioDeps(w http.ResponseWriter) bool {
	if a.deps.Scenarios == nil {
		httpjson.Error(w, http.StatusNotFound, "the simulator is not enabled in this gateway's config (simulator.enabled)")
		return false
	}
	return true
}

func (a *API) scenarios(w http.ResponseWriter, _ *http.Request) {
	if !a.scenarioDeps(w) {
		return
	}
	active := a.deps.Scenarios.Active()
	type item struct {
		Name   string `json:"name"`
		Target string `json:"target,omitempty"`
	}
	out := []item{}
	for name, target := range active {
		out = append(out, item{name, target})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	httpjson.Write(w, http.StatusOK, out)
}

func (a *API) inject(w http.ResponseWriter, r *http.Request) {
	if !a.scenarioDeps(w) {
		return
	}
	var req ScenarioRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			httpjson.Error(w, http.StatusBadRequest, "body: "+err.Error()+`; expected {"target": "<asset id>"} or no body`)
			return
		}
	}
	if req.Target != "" {
		if _, ok := a.deps.State.Asset(req.Target); !ok {
			httpjson.Error(w, http.StatusBadRequest, "target "+req.Target+" is not a declared asset")
			return
		}
	}
	if err := a.deps.Scenarios.Inject(r.PathValue("name"), req.Target); err != nil {
		httpjson.Error(w, statusOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"scenario": r.PathValue("name"), "status": "active", "target": req.Target})
}

func (a *API) clear(w http.ResponseWriter, r *http.Request) {
	if !a.scenarioDeps(w) {
		return
	}
	if err := a.deps.Scenarios.Clear(r.PathValue("name")); err != nil {
		httpjson.Error(w, statusOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"scenario": r.PathValue("name"), "status": "cleared"})
}

func statusOf(err error) int {
	if strings.HasPrefix(err.Error(), "unknown scenario") {
		return http.StatusNotFound
	}
	return http.StatusConflict // the simulator is not running
}
