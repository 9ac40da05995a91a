package dashboard

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/playbook/report"
)

// MountIncidents adds the playbook and incident endpoints.
func (a *API) MountIncidents(d Incidents) {
	a.incidents = &d
	x := &incidentsAPI{d: d}
	a.mux.HandleFunc("GET /api/v1/playbooks", x.playbooks)
	a.mux.HandleFunc("GET /api/v1/incidents", x.list)
	a.mux.HandleFunc("POST /api/v1/incidents", x.start)
	a.mux.HandleFunc("GET /api/v1/incidents/{id}", x.get)
	a.mux.HandleFunc("POST /api/v1/incidents/{id}/steps/{step}/complete", x.complete)
	a.mux.HandleFunc("POST /api/v1/incidents/{id}/steps/{step}/skip", x.skip)
	a.mux.HandleFunc("POST /api/v1/incidents/{id}/steps/{step}/confirm", x.confirm)
	a.mux.HandleFunc("POST /api/v1/incidents/{id}/evidence", x.evidence)
	a.mux.HandleFunc("POST /api/v1/incidents/{id}/close", x.close)
	a.mux.HandleFunc("GET /api/v1/incidents/{id}/report", x.report)
}

type incidentsAPI struct{ d Incidents }

func (x *incidentsAPI) playbooks(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, x.d.Read.Playbooks())
}

func (x *incidentsAPI) list(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "status") {
		return
	}
	s := r.URL.Query().Get("status")
	if s != "" && s != "open" && s != "all" {
		httpjson.Error(w, http.StatusBadRequest, "status "+s+" is not open or all")
		return
	}
	ins, err := x.d.Read.Incidents(r.Context(), s == "open")
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if ins == nil {
		ins = []*playbook.Incident{}
	}
	if !staff(r) {
		for i, in := range ins {
			ins[i] = in.ForViewer()
		}
	}
	httpjson.Write(w, http.StatusOK, ins)
}

// staff: logged in as engineer or above. Everyone else (the wall token)
// reads incidents without what people wrote in them (residents' names and
// phone numbers among it), and work orders without who reported them.
func staff(r *http.Request) bool {
	p, ok := access.PrincipalOf(r)
	return ok && p.Role >= access.Engineer
}

// StartIncident is the body of POST /api/v1/incidents.
type StartIncident struct {
	Playbook string `json:"playbook"`
	Drill    bool   `json:"drill"`
	Asset    string `json:"asset"`
	By       string `json:"by"`
}

func (x *incidentsAPI) start(w http.ResponseWriter, r *http.Request) {
	var b StartIncident
	if !httpjson.Decode(w, r, &b) {
		return
	}
	if b.Playbook == "" {
		httpjson.Error(w, http.StatusBadRequest, `"playbook" is required: the id of a playbook (GET /api/v1/playbooks)`)
		return
	}
	in, err := x.d.Act.Start(r.Context(), b.Playbook, b.Asset, b.Drill, access.Actor(r))
	if x.fail(w, err) {
		return
	}
	httpjson.Write(w, http.StatusCreated, in)
}

func (x *incidentsAPI) fail(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, rules.ErrNotFound), errors.Is(err, playbook.ErrNoStep):
		httpjson.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, playbook.ErrIncidentClosed), errors.Is(err, playbook.ErrStepsOpen), errors.Is(err, playbook.ErrStepFinished),
		errors.Is(err, playbook.ErrNothingToConfirm):
		httpjson.Error(w, http.StatusConflict, err.Error())
	default:
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	}
	return true
}

func incidentID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		httpjson.Error(w, http.StatusBadRequest, "incident id "+r.PathValue("id")+" is not a positive number")
		return 0, false
	}
	return id, true
}

// load reads the incident the path names, answering 400 or 404 itself.
func (x *incidentsAPI) load(w http.ResponseWriter, r *http.Request) (*playbook.Incident, bool) {
	id, ok := incidentID(w, r)
	if !ok {
		return nil, false
	}
	in, err := x.d.Read.Incident(r.Context(), id)
	if errors.Is(err, rules.ErrNotFound) {
		httpjson.Error(w, http.StatusNotFound, "no incident "+r.PathValue("id"))
		return nil, false
	}
	if err == nil && !staff(r) {
		in = in.ForViewer()
	}
	return in, !x.fail(w, err)
}

func (x *incidentsAPI) get(w http.ResponseWriter, r *http.Request) {
	if in, ok := x.load(w, r); ok {
		httpjson.Write(w, http.StatusOK, in)
	}
}

// StepAction is the body of complete, skip, evidence and close.
type StepAction struct {
	Note string `json:"note"`
	Text string `json:"text"` // evidence
	By   string `json:"by"`
}

// act decodes a StepAction body and runs one incident operation.
func (x *incidentsAPI) act(w http.ResponseWriter, r *http.Request, do func(id int64, b StepAction) (*playbook.Incident, error)) {
	id, ok := incidentID(w, r)
	if !ok {
		return
	}
	var b StepAction
	if !httpjson.Decode(w, r, &b) {
		return
	}
	b.By = access.Actor(r)
	in, err := do(id, b)
	if x.fail(w, err) {
		return
	}
	httpjson.Write(w, http.StatusOK, in)
}

func (x *incidentsAPI) complete(w http.ResponseWriter, r *http.Request) {
	x.act(w, r, func(id int64, b StepAction) (*playbook.Incident, error) {
		return x.d.Steps.Complete(r.Context(), id, r.PathValue("step"), b.By, b.Note)
	})
}

func (x *incidentsAPI) skip(w http.ResponseWriter, r *http.Request) {
	x.act(w, r, func(id int64, b StepAction) (*playbook.Incident, error) {
		return x.d.Steps.Skip(r.Context(), id, r.PathValue("step"), b.By, b.Note)
	})
}

// confirm is a person's go-ahead for the equipment writes a step waits for
// (operator: they change what residents get).
func (x *incidentsAPI) confirm(w http.ResponseWriter, r *http.Request) {
	x.act(w, r, func(id int64, b StepAction) (*playbook.Incident, error) {
		return x.d.Steps.Confirm(r.Context(), id, r.PathValue("step"), b.By, b.Note)
	})
}

func (x *incidentsAPI) evidence(w http.ResponseWriter, r *http.Request) {
	x.act(w, r, func(id int64, b StepAction) (*playbook.Incident, error) {
		return x.d.Act.AddEvidence(r.Context(), id, b.By, b.Text)
	})
}

func (x *incidentsAPI) close(w http.ResponseWriter, r *http.Request) {
	x.act(w, r, func(id int64, b StepAction) (*playbook.Incident, error) {
		return x.d.Act.Close(r.Context(), id, b.By, b.Note)
	})
}

func (x *incidentsAPI) report(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "format") {
		return
	}
	in, ok := x.load(w, r)
	if !ok {
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "markdown", "md":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = w.Write([]byte(report.Markdown(x.playbook(in), in)))
	case "html":
		page, err := report.HTML(x.playbook(in), in)
		if err != nil {
			httpjson.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	default:
		httpjson.Error(w, http.StatusBadRequest, "format "+f+" is not markdown or html")
	}
}

func (x *incidentsAPI) playbook(in *playbook.Incident) *playbook.Playbook {
	p, _ := x.d.Read.Playbook(in.Playbook)
	return p
}
