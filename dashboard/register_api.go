package dashboard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/register"
)

// The duty room's register endpoints (issue #13): the asset register and
// contacts directory, inspection rounds, preventive maintenance.

// RegisterBook is the asset register and the contacts (register.Service).
type RegisterBook interface {
	Entries() []register.Entry
	Entry(asset string) (register.Entry, error)
	Put(ctx context.Context, e register.Entry, by string) (register.Entry, error)
	Import(ctx context.Context, r io.Reader, dry bool, by string) (*register.ImportResult, error)
	Contacts() []register.Contact
	Contact(id string) (register.Contact, error)
	PutContact(ctx context.Context, c register.Contact, by string) (register.Contact, error)
	DeleteContact(ctx context.Context, id string, version int, by string) error
	Resolve(ids []string, asset string) []register.Contact
}

// InspectionDesk is the inspection rounds (inspection.Service).
type InspectionDesk interface {
	Routes() []inspection.Route
	Rounds(ctx context.Context, f inspection.RoundFilter) ([]*inspection.Round, error)
	Round(ctx context.Context, id int64) (*inspection.Round, error)
	Start(ctx context.Context, route, by string) (*inspection.Round, error)
	Submit(ctx context.Context, id int64, e inspection.Entry, by string) (*inspection.Round, error)
	Close(ctx context.Context, id int64, by, note string) (*inspection.Round, error)
	Checkpoint(ctx context.Context, route, cp string) (*inspection.Prefill, error)
	ParseCode(code string) (route, checkpoint string, err error)
	Code(route, checkpoint string) string
	Photo(ctx context.Context, id int64, cp, item string) (string, []byte, error)
}

// MaintenancePlans are the PM plans (maintenance.Service).
type MaintenancePlans interface {
	Plans() []maintenance.Plan
	Items(ctx context.Context, plan string, since time.Time, limit int) ([]*maintenance.Item, error)
	Counts(ctx context.Context, from, to time.Time) (*maintenance.Counts, error)
}

// RegisterPorts is everything the register endpoints need; nil parts are not served.
type RegisterPorts struct {
	Register    RegisterBook
	Inspections InspectionDesk
	Maintenance MaintenancePlans
	Incidents   IncidentReader // for the contacts of an incident's steps
	PublicURL   string         // how phones reach the gateway (the QR codes' links)
}

// MountRegister adds the register, contacts, inspection and maintenance
// endpoints.
func (a *API) MountRegister(d RegisterPorts) {
	x := &registerAPI{d: d}
	if d.Register != nil {
		a.mux.HandleFunc("GET /api/v1/register", x.entries)
		a.mux.HandleFunc("GET /api/v1/assets/{id}/register", x.entry)
		a.mux.HandleFunc("PUT /api/v1/assets/{id}/register", x.put)
		a.mux.HandleFunc("POST /api/v1/register/import", x.importCSV)
		a.mux.HandleFunc("GET /api/v1/contacts", x.contacts)
		a.mux.HandleFunc("GET /api/v1/contacts/{id}", x.contact)
		a.mux.HandleFunc("POST /api/v1/contacts", x.addContact)
		a.mux.HandleFunc("PUT /api/v1/contacts/{id}", x.putContact)
		a.mux.HandleFunc("DELETE /api/v1/contacts/{id}", x.deleteContact)
		if d.Incidents != nil {
			a.mux.HandleFunc("GET /api/v1/incidents/{id}/contacts", x.incidentContacts)
		}
	}
	if d.Inspections != nil {
		a.mux.HandleFunc("GET /api/v1/inspections", x.rounds)
		a.mux.HandleFunc("POST /api/v1/inspections", x.start)
		a.mux.HandleFunc("GET /api/v1/inspections/checkpoint", x.checkpoint)
		a.mux.HandleFunc("GET /api/v1/inspections/codes", x.codes)
		a.mux.HandleFunc("GET /api/v1/inspections/{id}", x.round)
		a.mux.HandleFunc("POST /api/v1/inspections/{id}/results", x.submit)
		a.mux.HandleFunc("POST /api/v1/inspections/{id}/close", x.closeRound)
		a.mux.HandleFunc("GET /api/v1/inspections/{id}/photos/{checkpoint}/{item}", x.photo)
	}
	if d.Maintenance != nil {
		a.mux.HandleFunc("GET /api/v1/maintenance", x.maintenance)
		a.mux.HandleFunc("GET /api/v1/maintenance/counts", x.counts)
	}
}

type registerAPI struct{ d RegisterPorts }

// registerError maps the services' errors to statuses.
func registerError(w http.ResponseWriter, err error) {
	var fe *cfgerr.FieldError
	var ie *register.ImportError
	switch {
	case errors.As(err, &ie):
		httpjson.Write(w, http.StatusBadRequest, map[string]any{"error": ie.Error(), "rows": ie.Rows})
	case errors.As(err, &fe):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, register.ErrNotFound), errors.Is(err, inspection.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, inspection.ErrInvalid), errors.Is(err, inspection.ErrBadCode):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, register.ErrConflict), errors.Is(err, register.ErrInUse), errors.Is(err, inspection.ErrConflict), errors.Is(err, inspection.ErrClosed):
		httpjson.Error(w, http.StatusConflict, err.Error())
	default:
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
	}
}

func (x *registerAPI) entries(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	httpjson.Write(w, http.StatusOK, x.d.Register.Entries())
}

func (x *registerAPI) entry(w http.ResponseWriter, r *http.Request) {
	e, err := x.d.Register.Entry(r.PathValue("id"))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, e)
}

func (x *registerAPI) put(w http.ResponseWriter, r *http.Request) {
	var e register.Entry
	if !httpjson.Decode(w, r, &e) {
		return
	}
	if e.Asset != "" && e.Asset != r.PathValue("id") {
		httpjson.Error(w, http.StatusBadRequest, "asset in the body is not the one in the path")
		return
	}
	e.Asset = r.PathValue("id")
	if _, err := x.d.Register.Entry(e.Asset); err != nil {
		registerError(w, err)
		return
	}
	out, err := x.d.Register.Put(r.Context(), e, access.Actor(r))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}

// ImportRequest is the body of POST /api/v1/register/import: the CSV file's
// text (the console reads the file; cross-site forms cannot post JSON).
type ImportRequest struct {
	CSV    string `json:"csv"`
	DryRun bool   `json:"dry_run"`
}

func (x *registerAPI) importCSV(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 3*register.MaxImportBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "body: "+err.Error()+`; send {"csv": "<the file's text>", "dry_run": false}`)
		return
	}
	res, err := x.d.Register.Import(r.Context(), strings.NewReader(req.CSV), req.DryRun, access.Actor(r))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

func (x *registerAPI) contacts(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	httpjson.Write(w, http.StatusOK, x.d.Register.Contacts())
}

func (x *registerAPI) contact(w http.ResponseWriter, r *http.Request) {
	c, err := x.d.Register.Contact(r.PathValue("id"))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}

// addContact is POST /api/v1/contacts: a new directory entry (admins).
func (x *registerAPI) addContact(w http.ResponseWriter, r *http.Request) {
	var c register.Contact
	if !httpjson.Decode(w, r, &c) {
		return
	}
	c.Version, c.Deleted = 0, false
	out, err := x.d.Register.PutContact(r.Context(), c, access.Actor(r))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, out)
}

// putContact is PUT /api/v1/contacts/{id}: a change, with the version read.
func (x *registerAPI) putContact(w http.ResponseWriter, r *http.Request) {
	var c register.Contact
	if !httpjson.Decode(w, r, &c) {
		return
	}
	if c.ID != "" && c.ID != r.PathValue("id") {
		httpjson.Error(w, http.StatusBadRequest, "id in the body is not the one in the path (a contact's id does not change: add a new one and delete this)")
		return
	}
	if c.Version < 1 {
		httpjson.Error(w, http.StatusBadRequest, "version is required: the version you read (GET /api/v1/contacts/{id}); new contacts are POSTed to /api/v1/contacts")
		return
	}
	c.ID, c.Deleted = r.PathValue("id"), false
	out, err := x.d.Register.PutContact(r.Context(), c, access.Actor(r))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}

// deleteContact is DELETE /api/v1/contacts/{id}?version=N.
func (x *registerAPI) deleteContact(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "version") {
		return
	}
	v, err := strconv.Atoi(r.URL.Query().Get("version"))
	if err != nil || v < 1 {
		httpjson.Error(w, http.StatusBadRequest, "version is required: ?version=<the version you read>")
		return
	}
	if err := x.d.Register.DeleteContact(r.Context(), r.PathValue("id"), v, access.Actor(r)); err != nil {
		registerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// StepContacts are the resolved contacts of one playbook step.
type StepContacts struct {
	Step     string             `json:"step"`
	Title    string             `json:"title"`
	Contacts []register.Contact `json:"contacts"`
}

func (x *registerAPI) incidentContacts(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "incident id must be a number")
		return
	}
	in, err := x.d.Incidents.Incident(r.Context(), id)
	if err != nil {
		httpjson.Error(w, http.StatusNotFound, err.Error())
		return
	}
	out := []StepContacts{}
	if pb, ok := x.d.Incidents.Playbook(in.Playbook); ok {
		for _, st := range pb.Steps {
			if len(st.Contacts) == 0 {
				continue
			}
			title := st.TitleZH
			if title == "" {
				title = st.Title
			}
			cs := x.d.Register.Resolve(st.Contacts, in.Asset)
			if cs == nil {
				cs = []register.Contact{}
			}
			out = append(out, StepContacts{Step: st.ID, Title: title, Contacts: cs})
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}

// Inspections is GET /api/v1/inspections: the routes and the rounds.
type Inspections struct {
	Routes []inspection.Route  `json:"routes"`
	Rounds []*inspection.Round `json:"rounds"`
}

func (x *registerAPI) rounds(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "route", "status", "since", "limit") {
		return
	}
	q := r.URL.Query()
	f := inspection.RoundFilter{Route: q.Get("route"), Status: q.Get("status"), Limit: 100}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "since is not an RFC 3339 time, e.g. 2026-11-01T00:00:00+08:00")
			return
		}
		f.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			httpjson.Error(w, http.StatusBadRequest, "limit is 1 to 1000")
			return
		}
		f.Limit = n
	}
	rs, err := x.d.Inspections.Rounds(r.Context(), f)
	if err != nil {
		registerError(w, err)
		return
	}
	if !staff(r) {
		for i, rd := range rs {
			v := rd.ForViewer()
			rs[i] = &v
		}
	}
	httpjson.Write(w, http.StatusOK, Inspections{Routes: x.d.Inspections.Routes(), Rounds: rs})
}

// StartRound is the body of POST /api/v1/inspections: an extra round.
type StartRound struct {
	Route string `json:"route"`
}

func (x *registerAPI) start(w http.ResponseWriter, r *http.Request) {
	var req StartRound
	if !httpjson.Decode(w, r, &req) {
		return
	}
	rd, err := x.d.Inspections.Start(r.Context(), req.Route, access.Actor(r))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, rd)
}

func roundID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "round id must be a number")
		return 0, false
	}
	return id, true
}

func (x *registerAPI) round(w http.ResponseWriter, r *http.Request) {
	id, ok := roundID(w, r)
	if !ok {
		return
	}
	rd, err := x.d.Inspections.Round(r.Context(), id)
	if err != nil {
		registerError(w, err)
		return
	}
	if !staff(r) {
		v := rd.ForViewer()
		rd = &v
	}
	httpjson.Write(w, http.StatusOK, rd)
}

func (x *registerAPI) submit(w http.ResponseWriter, r *http.Request) {
	id, ok := roundID(w, r)
	if !ok {
		return
	}
	var e inspection.Entry
	if !httpjson.Decode(w, r, &e) {
		return
	}
	rd, err := x.d.Inspections.Submit(r.Context(), id, e, access.Actor(r))
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, rd)
}

// CloseRound is the body of POST /api/v1/inspections/{id}/close.
type CloseRound struct {
	Note string `json:"note"`
}

func (x *registerAPI) closeRound(w http.ResponseWriter, r *http.Request) {
	id, ok := roundID(w, r)
	if !ok {
		return
	}
	var req CloseRound
	if !httpjson.Decode(w, r, &req) {
		return
	}
	rd, err := x.d.Inspections.Close(r.Context(), id, access.Actor(r), req.Note)
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, rd)
}

// checkpoint opens a checkpoint by its scanned code (?code=) or, in the
// console, by route and checkpoint: the items, the live readings that
// verify them, and the route's open round.
func (x *registerAPI) checkpoint(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "code", "route", "checkpoint") {
		return
	}
	q := r.URL.Query()
	route, cp := q.Get("route"), q.Get("checkpoint")
	if code := q.Get("code"); code != "" {
		var err error
		if route, cp, err = x.d.Inspections.ParseCode(code); err != nil {
			registerError(w, err)
			return
		}
	}
	p, err := x.d.Inspections.Checkpoint(r.Context(), route, cp)
	if err != nil {
		registerError(w, err)
		return
	}
	if p.Round != nil && !staff(r) {
		v := p.Round.ForViewer()
		p.Round = &v
	}
	httpjson.Write(w, http.StatusOK, p)
}

// CheckpointCode is one checkpoint's QR code, for printing.
type CheckpointCode struct {
	Route      string `json:"route"`
	RouteName  string `json:"route_name"`
	Checkpoint string `json:"checkpoint"`
	Name       string `json:"name"`
	Location   string `json:"location,omitempty"`
	Code       string `json:"code"`
	URL        string `json:"url"`
	PNG        string `json:"png"` // data:image/png;base64,…
}

// codes lists every checkpoint's QR code (operators print them; the codes
// are what proves an inspector was there, so they are not for viewers).
func (x *registerAPI) codes(w http.ResponseWriter, r *http.Request) {
	out := []CheckpointCode{}
	base := strings.TrimSuffix(x.d.PublicURL, "/")
	for _, rt := range x.d.Inspections.Routes() {
		for _, cp := range rt.Checkpoints {
			code := x.d.Inspections.Code(rt.ID, cp.ID)
			u := base + "/console/inspections?code=" + code
			png, err := qrcode.Encode(u, qrcode.Medium, 256)
			if err != nil {
				registerError(w, err)
				return
			}
			out = append(out, CheckpointCode{Route: rt.ID, RouteName: rt.Name, Checkpoint: cp.ID, Name: cp.Name, Location: cp.Location, Code: code, URL: u,
				PNG: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)})
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (x *registerAPI) photo(w http.ResponseWriter, r *http.Request) {
	id, ok := roundID(w, r)
	if !ok {
		return
	}
	mime, data, err := x.d.Inspections.Photo(r.Context(), id, r.PathValue("checkpoint"), r.PathValue("item"))
	if err != nil {
		registerError(w, err)
		return
	}
	w.Header().Set("Content-Type", mime)
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(data)
}

// Maintenance is GET /api/v1/maintenance: the plans and their items.
type Maintenance struct {
	Plans []maintenance.Plan  `json:"plans"`
	Items []*maintenance.Item `json:"items"`
}

func (x *registerAPI) maintenance(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "plan", "since") {
		return
	}
	since := time.Now().AddDate(0, -3, 0)
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "since is not an RFC 3339 time, e.g. 2026-11-01T00:00:00+08:00")
			return
		}
		since = t
	}
	its, err := x.d.Maintenance.Items(r.Context(), r.URL.Query().Get("plan"), since, 500)
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, Maintenance{Plans: x.d.Maintenance.Plans(), Items: its})
}

func (x *registerAPI) counts(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "from", "to") {
		return
	}
	q := r.URL.Query()
	from, err1 := time.Parse(time.RFC3339, q.Get("from"))
	to, err2 := time.Parse(time.RFC3339, q.Get("to"))
	if err1 != nil || err2 != nil || !to.After(from) {
		httpjson.Error(w, http.StatusBadRequest, "from and to are RFC 3339 times, from before to, e.g. from=2026-11-01T00:00:00+08:00&to=2026-12-01T00:00:00+08:00")
		return
	}
	c, err := x.d.Maintenance.Counts(r.Context(), from, to)
	if err != nil {
		registerError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}
