package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

// MountRules adds the alarm, work-order and KPI endpoints.
func (a *API) MountRules(d Rules) {
	a.rules = &d
	r := &rulesAPI{d: d}
	a.mux.HandleFunc("GET /api/v1/alarms", r.alarms)
	a.mux.HandleFunc("GET /api/v1/alarms/{id}", r.alarm)
	a.mux.HandleFunc("POST /api/v1/alarms/{id}/ack", r.ack)
	a.mux.HandleFunc("POST /api/v1/alarms/{id}/shelve", r.shelve)
	a.mux.HandleFunc("POST /api/v1/alarms/{id}/unshelve", r.unshelve)
	a.mux.HandleFunc("POST /api/v1/alarms/{id}/out-of-service", r.outOfService)
	a.mux.HandleFunc("GET /api/v1/workorders", r.workorders)
	a.mux.HandleFunc("POST /api/v1/workorders", r.createWorkOrder)
	a.mux.HandleFunc("GET /api/v1/workorders/review", r.review)
	a.mux.HandleFunc("GET /api/v1/workorders/{id}", r.workorder)
	a.mux.HandleFunc("PATCH /api/v1/workorders/{id}", r.updateWorkOrder)
	a.mux.HandleFunc("POST /api/v1/workorders/{id}/transition", r.transition)
	a.mux.HandleFunc("POST /api/v1/workorders/{id}/callback", r.callback) // operator: customer service
	a.mux.HandleFunc("GET /api/v1/kpis", r.kpis)
}

type rulesAPI struct{ d Rules }

func checkQuery(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for key := range r.URL.Query() {
		ok := false
		for _, a := range allowed {
			ok = ok || key == a
		}
		if !ok {
			httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %s; the parameters are %s", key, strings.Join(allowed, ", ")))
			return false
		}
	}
	return true
}

var alarmStates = map[string]func(rules.AlarmState) bool{
	"active":                  rules.AlarmState.Active,
	"all":                     func(rules.AlarmState) bool { return true },
	"not_normal":              func(s rules.AlarmState) bool { return s != rules.StateNormal },
	"unacknowledged":          func(s rules.AlarmState) bool { return s == rules.StateUnacked },
	"acknowledged":            func(s rules.AlarmState) bool { return s == rules.StateAcked },
	"returned_unacknowledged": func(s rules.AlarmState) bool { return s == rules.StateRTNUnacked },
	"shelved":                 func(s rules.AlarmState) bool { return s == rules.StateShelved },
	"out_of_service":          func(s rules.AlarmState) bool { return s == rules.StateOutOfService },
	"suppressed":              func(s rules.AlarmState) bool { return s == rules.StateSuppressed },
	"normal":                  func(s rules.AlarmState) bool { return s == rules.StateNormal },
}

func (x *rulesAPI) alarms(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "state", "priority", "asset", "rule") {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "not_normal"
	}
	match, ok := alarmStates[state]
	if !ok {
		httpjson.Error(w, http.StatusBadRequest, "state "+state+" is not one of active, all, not_normal, unacknowledged, acknowledged, returned_unacknowledged, shelved, out_of_service, suppressed, normal")
		return
	}
	out := x.d.Alarms.Alarms(func(a *rules.Alarm) bool {
		return match(a.State) && (q.Get("priority") == "" || string(a.Priority) == q.Get("priority")) &&
			(q.Get("asset") == "" || a.Asset == q.Get("asset")) && (q.Get("rule") == "" || a.Rule == q.Get("rule"))
	})
	if out == nil {
		out = []rules.Alarm{}
	}
	if !staff(r) { // the wall token: who acknowledged, not what they wrote
		for i := range out {
			out[i] = out[i].ForViewer()
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}

type alarmDetail struct {
	rules.Alarm
	History []rules.Transition `json:"history"`
}

func (x *rulesAPI) alarm(w http.ResponseWriter, r *http.Request) {
	a, ok := x.d.Alarms.Alarm(r.PathValue("id"))
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no alarm "+r.PathValue("id"))
		return
	}
	h, err := x.d.History.AlarmHistory(r.Context(), a.ID)
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !staff(r) {
		a = a.ForViewer()
		for i := range h {
			h[i] = h[i].ForViewer()
		}
	}
	httpjson.Write(w, http.StatusOK, alarmDetail{Alarm: a, History: h})
}

// AlarmAction is the body of ack, shelve, unshelve and out-of-service.
type AlarmAction struct {
	Note    string `json:"note"`
	By      string `json:"by"`
	Minutes int    `json:"minutes"` // shelve: 1 .. 10080 (a week)
	On      *bool  `json:"on"`      // out-of-service: true takes it out, false returns it
}

// badRequest is a body that decodes but does not make sense: a 400.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// alarmAction decodes an AlarmAction, runs one operation on the alarm the
// path names as the acting user, and answers: 400 for a bad body, 404 for
// an unknown alarm, 409 when the action does not apply.
func (x *rulesAPI) alarmAction(w http.ResponseWriter, r *http.Request, do func(id, by string, b AlarmAction) (rules.Alarm, error)) {
	var b AlarmAction
	if !httpjson.Decode(w, r, &b) {
		return
	}
	id := r.PathValue("id")
	a, err := do(id, access.Actor(r), b)
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, rules.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "no alarm "+id)
	case err != nil:
		httpjson.Error(w, http.StatusConflict, err.Error())
	default:
		httpjson.Write(w, http.StatusOK, a)
	}
}

func (x *rulesAPI) ack(w http.ResponseWriter, r *http.Request) {
	x.alarmAction(w, r, func(id, by string, b AlarmAction) (rules.Alarm, error) { return x.d.AlarmActions.Ack(id, by, b.Note) })
}

func (x *rulesAPI) shelve(w http.ResponseWriter, r *http.Request) {
	x.alarmAction(w, r, func(id, by string, b AlarmAction) (rules.Alarm, error) {
		if b.Minutes < 1 || b.Minutes > 10080 {
			return rules.Alarm{}, badRequest(fmt.Sprintf("minutes %d is out of range; shelving needs a time limit of 1 to 10080 minutes", b.Minutes))
		}
		return x.d.AlarmActions.Shelve(id, time.Duration(b.Minutes)*time.Minute, by, b.Note)
	})
}

func (x *rulesAPI) unshelve(w http.ResponseWriter, r *http.Request) {
	x.alarmAction(w, r, func(id, by string, b AlarmAction) (rules.Alarm, error) {
		return x.d.AlarmActions.Unshelve(id, by, b.Note)
	})
}

func (x *rulesAPI) outOfService(w http.ResponseWriter, r *http.Request) {
	x.alarmAction(w, r, func(id, by string, b AlarmAction) (rules.Alarm, error) {
		if b.On == nil {
			return rules.Alarm{}, badRequest(`"on" is required: true takes the alarm out of service, false returns it`)
		}
		return x.d.AlarmActions.SetOutOfService(id, *b.On, by, b.Note)
	})
}

func (x *rulesAPI) workorders(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "status", "asset", "category", "limit") {
		return
	}
	q := r.URL.Query()
	f := workorder.Filter{Asset: q.Get("asset"), Category: q.Get("category"), Limit: 500}
	switch s := q.Get("status"); s {
	case "", "all":
	case "open":
		f.Open = true
	default:
		f.Status = workorder.Status(s)
		if !f.Status.Valid() {
			httpjson.Error(w, http.StatusBadRequest, "status "+s+" is not open, all, or a work-order status")
			return
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 5000 {
			httpjson.Error(w, http.StatusBadRequest, "limit must be 1 .. 5000")
			return
		}
		f.Limit = n
	}
	ws, err := x.d.Orders.WorkOrders(r.Context(), f)
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if ws == nil {
		ws = []*workorder.WorkOrder{}
	}
	if !staff(r) {
		for i, wo := range ws {
			v := wo.ForViewer()
			ws[i] = &v
		}
	}
	httpjson.Write(w, http.StatusOK, ws)
}

// NewWorkOrder is the body of POST /api/v1/workorders.
type NewWorkOrder struct {
	Category    string         `json:"category"`
	Asset       string         `json:"asset"`
	Location    string         `json:"location"`
	Priority    rules.Priority `json:"priority"`
	Description string         `json:"description"`
	Reporter    string         `json:"reporter"` // who reported it (a resident, the front desk); the one logged in opens it
	// The report register (报事报修/投诉登记).
	Type             workorder.Type `json:"type"`    // repair (default), complaint, help, suggestion, fault, pm
	Room             string         `json:"room"`    // room or unit
	Channel          string         `json:"channel"` // phone (default), front_desk, wechat, monitoring_center, gateway
	CallerName       string         `json:"caller_name"`
	CallerPhone      string         `json:"caller_phone"`
	FirstResponsible string         `json:"first_responsible"` // 首问责任人; default: the one logged in
}

func (x *rulesAPI) createWorkOrder(w http.ResponseWriter, r *http.Request) {
	var b NewWorkOrder
	if !httpjson.Decode(w, r, &b) {
		return
	}
	var missing []string
	for name, v := range map[string]string{"category": b.Category, "description": b.Description} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		httpjson.Error(w, http.StatusBadRequest, strings.Join(missing, " and ")+" required")
		return
	}
	if b.Priority == "" {
		b.Priority = rules.Medium
	}
	if b.Asset == "" && b.Location == "" && b.Room == "" {
		httpjson.Error(w, http.StatusBadRequest, "asset, location or room required: the engineer must know where to go")
		return
	}
	switch b.Priority {
	case rules.Critical, rules.High, rules.Medium, rules.Low:
	default:
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("priority %q is not critical, high, medium or low", b.Priority))
		return
	}
	wo, err := x.d.WorkOrders.Create(r.Context(), workorder.WorkOrder{Category: b.Category, Asset: b.Asset, Location: b.Location, Priority: b.Priority,
		Description: b.Description, Reporter: strings.TrimSpace(b.Reporter), Type: b.Type, Room: strings.TrimSpace(b.Room), Channel: b.Channel,
		CallerName: strings.TrimSpace(b.CallerName), CallerPhone: strings.TrimSpace(b.CallerPhone), FirstResponsible: strings.TrimSpace(b.FirstResponsible)}, access.Actor(r))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	httpjson.Write(w, http.StatusCreated, wo)
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		httpjson.Error(w, http.StatusBadRequest, "work-order id "+r.PathValue("id")+" is not a positive number")
		return 0, false
	}
	return id, true
}

type workOrderDetail struct {
	*workorder.WorkOrder
	History []workorder.HistoryEntry `json:"history"`
}

func (x *rulesAPI) workorder(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	wo, h, err := x.d.Orders.WorkOrder(r.Context(), id)
	if x.woError(w, err, id) {
		return
	}
	if !staff(r) {
		v := wo.ForViewer()
		wo = &v
		for i := range h {
			h[i].Note = ""
		}
	}
	httpjson.Write(w, http.StatusOK, workOrderDetail{WorkOrder: wo, History: h})
}

func (x *rulesAPI) woError(w http.ResponseWriter, err error, id int64) bool {
	var te *workorder.TransitionError
	switch {
	case err == nil:
		return false
	case errors.Is(err, rules.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no work order %d", id))
	case errors.Is(err, errOperatorOnly):
		httpjson.Error(w, http.StatusForbidden, err.Error())
	case errors.As(err, &te), errors.Is(err, workorder.ErrConflict), errors.Is(err, workorder.ErrComplaintSteps):
		httpjson.Error(w, http.StatusConflict, err.Error())
	default:
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	}
	return true
}

// UpdateBody is the body of PATCH /api/v1/workorders/{id}.
type UpdateBody struct {
	workorder.Update
	By string `json:"by"` // ignored: the acting person is the one logged in
}

func (x *rulesAPI) updateWorkOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b UpdateBody
	if !httpjson.Decode(w, r, &b) {
		return
	}
	if b.Priority != nil {
		if err := x.operatorFor(r, id, func(cur *workorder.WorkOrder) bool { return b.Priority.Rank() > cur.Priority.Rank() }); x.woError(w, err, id) {
			return
		}
	}
	wo, err := x.d.WorkOrders.Update(r.Context(), id, b.Update, access.Actor(r))
	if x.woError(w, err, id) {
		return
	}
	httpjson.Write(w, http.StatusOK, wo)
}

// TransitionBody is the body of POST /api/v1/workorders/{id}/transition.
type TransitionBody struct {
	To   workorder.Status `json:"to"`
	Note string           `json:"note"`
	By   string           `json:"by"` // ignored: the acting person is the one logged in
}

func (x *rulesAPI) transition(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b TransitionBody
	if !httpjson.Decode(w, r, &b) {
		return
	}
	if b.To == "" {
		httpjson.Error(w, http.StatusBadRequest, `"to" is required: the status to move to`)
		return
	}
	if b.To == workorder.Cancelled || b.To == workorder.Closed {
		// Cancelling, and closing a resident's order without its call-back,
		// take it out of the KPIs' reach: the duty room decides.
		skipsCallback := func(cur *workorder.WorkOrder) bool {
			return b.To == workorder.Cancelled || (cur.Status == workorder.Resolved && cur.Type.FromResident())
		}
		if err := x.operatorFor(r, id, skipsCallback); x.woError(w, err, id) {
			return
		}
	}
	wo, err := x.d.WorkOrders.Transition(r.Context(), id, b.To, access.Actor(r), b.Note)
	if x.woError(w, err, id) {
		return
	}
	httpjson.Write(w, http.StatusOK, wo)
}

// CallbackBody is the body of POST /api/v1/workorders/{id}/callback.
type CallbackBody struct {
	Outcome string `json:"outcome"` // satisfied (满意), fairly_satisfied (基本满意), unsatisfied (不满意: reopens)
	Note    string `json:"note"`    // required when unsatisfied
}

// callback records a call-back. Customer service makes call-backs: an
// operator-level user (the route's default role for a POST); engineers,
// who did the repair, may not mark their own work as satisfactory.
func (x *rulesAPI) callback(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b CallbackBody
	if !httpjson.Decode(w, r, &b) {
		return
	}
	wo, err := x.d.WorkOrders.Callback(r.Context(), id, b.Outcome, strings.TrimSpace(b.Note), access.Actor(r))
	if x.woError(w, err, id) {
		return
	}
	httpjson.Write(w, http.StatusOK, wo)
}

func (x *rulesAPI) review(w http.ResponseWriter, r *http.Request) {
	items, err := x.d.Reports.Review(r.Context())
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !staff(r) {
		for i := range items {
			items[i].WorkOrder = items[i].WorkOrder.ForViewer()
		}
	}
	httpjson.Write(w, http.StatusOK, items)
}

func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02", s, time.Local)
}

func (x *rulesAPI) kpis(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "from", "to") {
		return
	}
	now := time.Now()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.Local) // this month
	to := now
	var err error
	if s := r.URL.Query().Get("from"); s != "" {
		if from, err = parseDay(s); err != nil {
			httpjson.Error(w, http.StatusBadRequest, "from "+s+" is not a date (2026-11-01) or RFC 3339 time")
			return
		}
	}
	if s := r.URL.Query().Get("to"); s != "" {
		if to, err = parseDay(s); err != nil {
			httpjson.Error(w, http.StatusBadRequest, "to "+s+" is not a date (2026-11-30) or RFC 3339 time")
			return
		}
	}
	if !to.After(from) {
		httpjson.Error(w, http.StatusBadRequest, "to must be after from")
		return
	}
	if to.Sub(from) > maxRange { // the figures read day by day: a century would hold the reads for minutes
		httpjson.Error(w, http.StatusBadRequest, "the period is longer than a year; ask for a year or less")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	k, err := x.d.Reports.KPIs(ctx, from, to)
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, k)
}

// errOperatorOnly: cancelling a work order, or lowering its priority, takes
// it out of the KPIs' reach; only the duty room (operator, admin) may.
var errOperatorOnly = errors.New("only an operator may cancel a work order, close one without its call-back, or lower its priority")

// operatorFor refuses the change to work order id when restricted says it
// is restricted and the caller is logged in below operator.
func (x *rulesAPI) operatorFor(r *http.Request, id int64, restricted func(*workorder.WorkOrder) bool) error {
	p, ok := access.PrincipalOf(r)
	if !ok || p.Role >= access.Operator {
		return nil
	}
	cur, _, err := x.d.Orders.WorkOrder(r.Context(), id)
	if err != nil {
		return err
	}
	if restricted(cur) {
		return errOperatorOnly
	}
	return nil
}
