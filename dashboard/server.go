package dashboard

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"regexp"
	"sort"
	"time"

	"github.com/gorilla/websocket"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// AuthConfig is the dashboard: section of the gateway's config; access owns it.
type AuthConfig = access.Config

//go:embed web
var webFS embed.FS

// consolePage is a console page's name: web/console-<name>.html.
var consolePage = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// MountDashboard adds the wall display (GET /), the operator console
// (GET /console), their assets, the websocket (GET /ws) and, with auth,
// login, logout, the current user and the audit log.
func (a *API) MountDashboard(hub *Hub, auth *access.Auth) {
	a.auth = auth
	static, _ := fs.Sub(webFS, "web")
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := fs.ReadFile(static, name)
			if err != nil {
				httpjson.Error(w, http.StatusInternalServerError, err.Error())
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(b)
		}
	}
	a.mux.HandleFunc("GET /{$}", page("wall.html"))
	a.mux.HandleFunc("GET /console", page("console.html"))
	// Further console pages (duty log, planned works, register…), one file
	// each: web/console-<page>.html. Like the console, the page itself is
	// public; everything it shows comes from the API behind a login.
	a.mux.HandleFunc("GET /console/{page}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("page")
		if !consolePage.MatchString(name) {
			httpjson.Error(w, http.StatusNotFound, "no console page "+name)
			return
		}
		if _, err := fs.Stat(static, "console-"+name+".html"); err != nil {
			httpjson.Error(w, http.StatusNotFound, "no console page "+name)
			return
		}
		page("console-"+name+".html")(w, r)
	})
	a.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	// The message catalogue (internal/i18n), for every screen: load it before app.js.
	catalogue := i18n.JS()
	a.mux.HandleFunc("GET /static/i18n.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(catalogue)
	})
	// CheckOrigin: without auth, the gateway's own origin only.
	up := &websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096, CheckOrigin: auth.CheckOrigin}
	a.mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) { hub.ServeWS(up, w, r) })
	if auth != nil {
		auth.Mount(a.mux)
	}
}

// MountCenterScreens serves the monitoring center's pages: the multi-site
// wall at / (its data needs the wall token or a login), the static files,
// the catalogue, and the login.
func (a *API) MountCenterScreens(auth *access.Auth) {
	a.auth = auth
	static, _ := fs.Sub(webFS, "web")
	a.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(static, "center-wall.html")
		if err != nil {
			httpjson.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	})
	a.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	catalogue := i18n.JS()
	a.mux.HandleFunc("GET /static/i18n.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(catalogue)
	})
	if auth != nil {
		auth.Mount(a.mux)
	}
}

// OnDuty says who is on call now, per team (the alerts Router).
type OnDuty interface {
	OnCallNow() []alerts.OnCall
}

// WallDuty is one team's person on call as the wall shows it: names only
// (no ids, no contacts), with the playbook roles the team fills, so a screen
// can say who is on an incident's step.
type WallDuty struct {
	Team     string    `json:"team"`
	TeamName string    `json:"team_name"`
	Name     string    `json:"name"`
	Until    time.Time `json:"until"`
	Roles    []string  `json:"roles,omitempty"`
}

// ShowOnDuty puts who is on call now (今日值班) into the screens' snapshot;
// roles maps playbook roles to teams (alerts.roles).
func (a *API) ShowOnDuty(o OnDuty, roles map[string]string) {
	a.onDuty = o
	a.roleTeams = roles
}

// Snapshot builds what a screen starts from.
func (a *API) Snapshot(ctx context.Context) (*Snapshot, error) {
	s := &Snapshot{Type: "snapshot", Site: a.deps.Site, SiteName: a.deps.SiteName, Demo: a.deps.Demo, OnDuty: []WallDuty{}, Time: time.Now(), Assets: []AssetView{}, Alarms: []rules.Alarm{},
		Incidents: []*playbook.Incident{}, WorkOrders: []*workorder.WorkOrder{}}
	for _, as := range a.deps.State.Snapshot() {
		s.Assets = append(s.Assets, view(as))
	}
	if a.rules != nil {
		if al := a.rules.Alarms.Alarms(func(x *rules.Alarm) bool { return x.State != rules.StateNormal }); al != nil {
			s.Alarms = al
		}
		ws, err := a.rules.Orders.WorkOrders(ctx, workorder.Filter{Open: true, Limit: 200})
		if err != nil {
			return nil, err
		}
		if ws != nil {
			s.WorkOrders = ws
		}
		k, err := a.rules.Reports.MonthToDate(ctx)
		if err == nil {
			s.KPIs = k
		}
	}
	if s.SiteName == "" {
		s.SiteName = s.Site
	}
	if a.onDuty != nil {
		for _, o := range a.onDuty.OnCallNow() {
			v := WallDuty{Team: o.Team, TeamName: o.TeamName, Name: o.Name, Until: o.Until}
			for role, team := range a.roleTeams {
				if team == o.Team {
					v.Roles = append(v.Roles, role)
				}
			}
			sort.Strings(v.Roles)
			s.OnDuty = append(s.OnDuty, v)
		}
	}
	if a.incidents != nil {
		ins, err := a.incidents.Read.Incidents(ctx, true)
		if err != nil {
			return nil, err
		}
		if ins != nil {
			s.Incidents = ins
		}
	}
	return s, nil
}
