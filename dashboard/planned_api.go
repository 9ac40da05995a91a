package dashboard

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/planned"
)

// PlannedWorks are the planned water/power stops and maintenance
// (rules/planned.Service).
type PlannedWorks interface {
	Create(ctx context.Context, req planned.Request, by string) (*planned.Work, error)
	Announce(ctx context.Context, id int64, at time.Time, by string) (*planned.Work, error)
	Cancel(ctx context.Context, id int64, by, note string) (*planned.Work, error)
	Finish(ctx context.Context, id int64, by, note string) (*planned.Work, error)
	Work(ctx context.Context, id int64) (*planned.Work, error)
	Works(ctx context.Context, open bool) ([]*planned.Work, error)
	Notice(ctx context.Context, id int64) (planned.Notice, error)
}

// MountPlannedWorks adds the planned-works endpoints: operators create and
// change them, engineers and above read them with their notice, the wall
// lists them without the people (contacts, who entered them).
func (a *API) MountPlannedWorks(p PlannedWorks) {
	x := &plannedAPI{p: p}
	a.mux.HandleFunc("GET /api/v1/planned-works", x.list)
	a.mux.HandleFunc("POST /api/v1/planned-works", x.create)
	a.mux.HandleFunc("GET /api/v1/planned-works/{id}", x.get)
	a.mux.HandleFunc("GET /api/v1/planned-works/{id}/notice", x.notice)
	a.mux.HandleFunc("POST /api/v1/planned-works/{id}/announce", x.announce)
	a.mux.HandleFunc("POST /api/v1/planned-works/{id}/cancel", x.cancel)
	a.mux.HandleFunc("POST /api/v1/planned-works/{id}/finish", x.finish)
}

type plannedAPI struct{ p PlannedWorks }

func (x *plannedAPI) list(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "status") {
		return
	}
	s := r.URL.Query().Get("status")
	if s != "" && s != "open" && s != "all" {
		httpjson.Error(w, http.StatusBadRequest, "status "+s+" is not open or all")
		return
	}
	ws, err := x.p.Works(r.Context(), s == "open")
	if x.fail(w, err) {
		return
	}
	if ws == nil {
		ws = []*planned.Work{}
	}
	if !staff(r) {
		for i, wk := range ws {
			ws[i] = wk.ForViewer()
		}
	}
	httpjson.Write(w, http.StatusOK, ws)
}

func (x *plannedAPI) create(w http.ResponseWriter, r *http.Request) {
	var req planned.Request
	if !httpjson.Decode(w, r, &req) {
		return
	}
	wk, err := x.p.Create(r.Context(), req, access.Actor(r))
	if x.fail(w, err) {
		return
	}
	httpjson.Write(w, http.StatusCreated, wk)
}

func (x *plannedAPI) id(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		httpjson.Error(w, http.StatusBadRequest, "planned-work id "+r.PathValue("id")+" is not a positive number")
		return 0, false
	}
	return id, true
}

func (x *plannedAPI) get(w http.ResponseWriter, r *http.Request) {
	id, ok := x.id(w, r)
	if !ok {
		return
	}
	wk, err := x.p.Work(r.Context(), id)
	if !x.fail(w, err) {
		httpjson.Write(w, http.StatusOK, wk)
	}
}

// notice is the residents' notice: JSON (with the copy-able text), or
// ?format=text, or ?format=html for the printable page.
func (x *plannedAPI) notice(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "format") {
		return
	}
	id, ok := x.id(w, r)
	if !ok {
		return
	}
	n, err := x.p.Notice(r.Context(), id)
	if x.fail(w, err) {
		return
	}
	switch r.URL.Query().Get("format") {
	case "", "json":
		httpjson.Write(w, http.StatusOK, n)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(n.Text))
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(planned.NoticeHTML(n))
	default:
		httpjson.Error(w, http.StatusBadRequest, "format "+r.URL.Query().Get("format")+" is not json, text or html")
	}
}

// PlannedWorkChange is the body of announce (at: when residents were
// told, default now), cancel and finish (note).
type PlannedWorkChange struct {
	At   time.Time `json:"at"`
	Note string    `json:"note"`
}

func (x *plannedAPI) change(w http.ResponseWriter, r *http.Request, do func(id int64, b PlannedWorkChange) (*planned.Work, error)) {
	id, ok := x.id(w, r)
	if !ok {
		return
	}
	var b PlannedWorkChange
	if !httpjson.Decode(w, r, &b) {
		return
	}
	wk, err := do(id, b)
	if !x.fail(w, err) {
		httpjson.Write(w, http.StatusOK, wk)
	}
}

func (x *plannedAPI) announce(w http.ResponseWriter, r *http.Request) {
	x.change(w, r, func(id int64, b PlannedWorkChange) (*planned.Work, error) {
		return x.p.Announce(r.Context(), id, b.At, access.Actor(r))
	})
}

func (x *plannedAPI) cancel(w http.ResponseWriter, r *http.Request) {
	x.change(w, r, func(id int64, b PlannedWorkChange) (*planned.Work, error) {
		return x.p.Cancel(r.Context(), id, access.Actor(r), b.Note)
	})
}

func (x *plannedAPI) finish(w http.ResponseWriter, r *http.Request) {
	x.change(w, r, func(id int64, b PlannedWorkChange) (*planned.Work, error) {
		return x.p.Finish(r.Context(), id, access.Actor(r), b.Note)
	})
}

func (x *plannedAPI) fail(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, rules.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "no such planned work")
	case errors.Is(err, planned.ErrInvalid):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	default:
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
	}
	return true
}
