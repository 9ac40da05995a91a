package workorder

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/propgate/gateway/rules"
)

// KPI is one figure the site is judged by, with its target: Met says
// whether the value reaches it (at least the target for a rate, at most
// for a time). Value and Met are null when there is nothing to measure
// (no data is not 0 % or 100 %).
type KPI struct {
	Value  *float64 `json:"value"`
	Target float64  `json:"target"`
	Met    *bool    `json:"met"`
	Unit   string   `json:"unit"` // "ratio" (0..1) or "seconds"
	Of     int      `json:"of"`   // how many the value is over (orders, or assets for good order)
}

func rateKPI(n, d int, target float64) KPI {
	k := KPI{Target: target, Unit: "ratio", Of: d}
	if d > 0 {
		v := float64(n) / float64(d)
		met := v >= target-1e-9
		k.Value, k.Met = &v, &met
	}
	return k
}

func secondsKPI(ds []time.Duration, target time.Duration) KPI {
	k := KPI{Target: target.Seconds(), Unit: "seconds", Of: len(ds)}
	if m := mean(ds); m != nil {
		v := float64(*m)
		met := v <= k.Target+1e-9
		k.Value, k.Met = &v, &met
	}
	return k
}

// CallbackStats are the call-backs of resident orders created in the period.
type CallbackStats struct {
	Due             int `json:"due"`              // resolved orders whose call-back is done, skipped or past its deadline
	Done            int `json:"done"`             // called back (any outcome)
	Late            int `json:"late"`             // called back after the deadline
	Satisfied       int `json:"satisfied"`        // 满意
	FairlySatisfied int `json:"fairly_satisfied"` // 基本满意
	Unsatisfied     int `json:"unsatisfied"`      // 不满意 (each reopened the order)
	Skipped         int `json:"skipped"`          // closed without a call-back (with the reason in the history)
	Overdue         int `json:"overdue"`          // still waiting, past the deadline
	Awaiting        int `json:"awaiting"`         // waiting, within the deadline
}

// KPIs are the service figures the property-service plans set targets for
// (002, 003): 100 % of reports handled, 95 % call-backs, equipment in good
// order ≥ 98 %, the emergency team on site within 3 minutes.
type KPIs struct {
	From                 time.Time     `json:"from"`
	To                   time.Time     `json:"to"`
	WorkOrders           int           `json:"workorders"`         // created in the period, cancelled and drills excluded
	Cancelled            int           `json:"cancelled"`          // created in the period and cancelled (each with its reason in the history)
	CancelledBreached    int           `json:"cancelled_breached"` // of those, cancelled after a deadline had passed
	Drills               int           `json:"drills"`             // opened by drills: never counted
	Handled              int           `json:"handled"`            // resolved or further
	ByType               map[Type]int  `json:"by_type"`
	HandlingRate         KPI           `json:"handling_rate"`           // 处理率
	ResponseOnTimeRate   KPI           `json:"response_on_time_rate"`   // accepted by the response deadline
	ResolutionOnTimeRate KPI           `json:"resolution_on_time_rate"` // 维修及时率: resolved within the category's time from acceptance
	ArrivalOnTimeRate    KPI           `json:"arrival_on_time_rate"`    // emergencies with someone on site in time (3 min, fire 2)
	MeanTimeToArrive     KPI           `json:"mean_time_to_arrive"`     // emergencies: creation to on site
	CallbackRate         KPI           `json:"callback_rate"`           // 回访率
	GoodOrder            KPI           `json:"good_order"`              // 设备完好率
	ReworkRate           *float64      `json:"rework_rate"`             // 返修率: handled orders reopened after resolution
	MeanTimeToRespond    *Seconds      `json:"mean_time_to_respond"`
	MeanTimeToResolve    *Seconds      `json:"mean_time_to_resolve"`
	Callbacks            CallbackStats `json:"callbacks"`
	// Availability is equipment in good order per asset kind.
	Availability map[string]float64 `json:"availability"`
	// Equipment is the good-order detail (per asset); not in the JSON.
	Equipment *rules.GoodOrder `json:"-"`
}

// Seconds is a duration in JSON as seconds.
type Seconds float64

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil // no data, not 0 % or 100 %
	}
	r := float64(n) / float64(d)
	return &r
}

func mean(ds []time.Duration) *Seconds {
	if len(ds) == 0 {
		return nil
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	s := Seconds(math.Round((sum/time.Duration(len(ds))).Seconds()*1000) / 1000)
	return &s
}

// Counts reports whether an order counts in the figures: drills never do.
func Counts(w *WorkOrder) bool { return !w.Drill }

// Handled reports whether an order was resolved (or further).
func Handled(w *WorkOrder) bool {
	return !w.ResolvedAt.IsZero() || w.Status == Closed || w.Status == CallbackDone
}

// ResolutionLate reports whether an order was, or at now is, late against
// its resolution deadline.
func ResolutionLate(w *WorkOrder, now time.Time) bool {
	if w.ResolvedLate {
		return true
	}
	if !w.ResolvedAt.IsZero() {
		return w.ResolutionBreached || w.ResolvedAt.After(w.ResolutionDue)
	}
	return w.ResolutionBreached || (w.Status.Open() && now.After(w.ResolutionDue))
}

// ResponseLate reports whether an order was, or at now is, late against
// its response deadline.
func ResponseLate(w *WorkOrder, now time.Time) bool {
	if !w.AcceptedAt.IsZero() {
		return w.AcceptedAt.After(w.ResponseDue)
	}
	return w.ResponseBreached || (w.Status.Open() && now.After(w.ResponseDue))
}

// ArrivalLate reports whether an emergency's team was, or at now is, late.
func ArrivalLate(w *WorkOrder, now time.Time) bool {
	if w.ArrivalDue.IsZero() {
		return false
	}
	if !w.OnSiteAt.IsZero() {
		return w.OnSiteAt.After(w.ArrivalDue)
	}
	return w.ArrivalBreached || (w.Status.Open() && now.After(w.ArrivalDue))
}

// Compute derives the work-order figures from the orders created in
// [from, to), judged at now (an open order past its deadline is late);
// good may be nil (no equipment figure).
func Compute(ws []*WorkOrder, from, to, now time.Time, t Targets, good *rules.GoodOrder) *KPIs {
	t.SetDefaults()
	if now.After(to) {
		now = to
	}
	k := &KPIs{From: from, To: to, ByType: map[Type]int{}, Availability: map[string]float64{}, Equipment: good}
	var accepted, acceptedOnTime, resolveJudged, resolvedOnTime, arrivalJudged, arrivedOnTime, reworked int
	var respond, resolve, arrive []time.Duration
	for _, w := range ws {
		if !Counts(w) {
			k.Drills++
			continue
		}
		if w.Status == Cancelled {
			k.Cancelled++
			if w.ResponseBreached || w.ResolutionBreached || w.ArrivalBreached {
				k.CancelledBreached++
			}
			continue
		}
		k.WorkOrders++
		typ := w.Type
		if typ == "" {
			typ = Repair
			if w.Source == "rule" {
				typ = Fault
			}
		}
		k.ByType[typ]++
		if Handled(w) {
			k.Handled++
			if w.Reworks > 0 {
				reworked++
			}
		}
		if !w.AcceptedAt.IsZero() || ResponseLate(w, now) {
			accepted++
			if !ResponseLate(w, now) {
				acceptedOnTime++
			}
			if !w.AcceptedAt.IsZero() {
				respond = append(respond, w.AcceptedAt.Sub(w.Created))
			}
		}
		if !w.ResolvedAt.IsZero() || ResolutionLate(w, now) {
			resolveJudged++
			if !ResolutionLate(w, now) {
				resolvedOnTime++
			}
			if !w.ResolvedAt.IsZero() {
				resolve = append(resolve, w.ResolvedAt.Sub(w.Created))
			}
		}
		if !w.ArrivalDue.IsZero() && (!w.OnSiteAt.IsZero() || ArrivalLate(w, now)) {
			arrivalJudged++
			if !ArrivalLate(w, now) {
				arrivedOnTime++
			}
			if !w.OnSiteAt.IsZero() {
				arrive = append(arrive, w.OnSiteAt.Sub(w.Created))
			}
		}
		if typ.FromResident() {
			callbackStats(&k.Callbacks, w, now)
		}
	}
	k.HandlingRate = rateKPI(k.Handled, k.WorkOrders, t.Handling)
	k.ResponseOnTimeRate = rateKPI(acceptedOnTime, accepted, t.OnTime)
	k.ResolutionOnTimeRate = rateKPI(resolvedOnTime, resolveJudged, t.OnTime)
	k.ArrivalOnTimeRate = rateKPI(arrivedOnTime, arrivalJudged, t.Arrival)
	k.MeanTimeToArrive = secondsKPI(arrive, t.OnSite)
	k.CallbackRate = rateKPI(k.Callbacks.Done, k.Callbacks.Due, t.Callback)
	k.ReworkRate = ratio(reworked, k.Handled)
	k.MeanTimeToRespond, k.MeanTimeToResolve = mean(respond), mean(resolve)
	k.GoodOrder = KPI{Target: t.GoodOrder, Unit: "ratio"}
	if good != nil {
		k.Availability = good.Kinds
		if good.Overall != nil {
			v := *good.Overall
			met := v >= t.GoodOrder-1e-9
			k.GoodOrder.Value, k.GoodOrder.Met = &v, &met
		}
		k.GoodOrder.Of = len(good.Kinds)
	}
	return k
}

// callbackStats counts one resident order's call-back.
func callbackStats(c *CallbackStats, w *WorkOrder, now time.Time) {
	for _, cb := range w.Callbacks {
		switch cb.Outcome {
		case Satisfied:
			c.Satisfied++
		case FairlySatisfied:
			c.FairlySatisfied++
		case Unsatisfied:
			c.Unsatisfied++
		}
	}
	switch {
	case len(w.Callbacks) > 0:
		c.Due++
		c.Done++
		if w.Callbacks[0].Late {
			c.Late++
		}
	case w.CallbackSkipped:
		c.Due++
		c.Skipped++
	case w.Status == Resolved && !w.CallbackDue.IsZero() && now.After(w.CallbackDue):
		c.Due++
		c.Overdue++
	case w.Status == Resolved:
		c.Awaiting++
	}
}

// GoodOrderSource is the equipment side of the KPIs (rules.Equipment).
type GoodOrderSource interface {
	GoodOrder(ctx context.Context, from, to time.Time) (*rules.GoodOrder, error)
}

// Reports computes the KPIs and the daily review from the stored work
// orders (and the alarm history, for equipment in good order).
type Reports struct {
	store interface {
		WorkOrders(ctx context.Context, f Filter) ([]*WorkOrder, error)
	}
	equip   GoodOrderSource
	targets Targets
	now     func() time.Time
	loc     *time.Location

	mu        sync.Mutex // one month-to-date computation at a time
	mtd       *KPIs
	mtdAt     time.Time
	mtdMaxAge time.Duration

	cacheMu sync.Mutex
	orders  map[int64]*WorkOrder // decoded orders (read-only), re-read when their version changes
}

// VersionedOrders lets the figures re-read only the orders that changed
// since they were last read (the store): a month of 10,000 orders is then
// one index scan of ids and versions, not 10,000 documents decoded.
type VersionedOrders interface {
	// WorkOrderVersions is the id and version of each order created in [from, to).
	WorkOrderVersions(ctx context.Context, from, to time.Time) (map[int64]int, error)
	WorkOrdersByID(ctx context.Context, ids []int64) ([]*WorkOrder, error)
}

// maxCachedOrders bounds the decoded orders kept between requests.
const maxCachedOrders = 200_000

// WorkOrders reads orders as the store does; an order list by creation
// time alone (the KPIs, the monthly report) comes from the decoded orders
// kept since the last request, re-reading only those created or changed
// since. The orders returned are shared: callers must not change them.
func (s *Reports) WorkOrders(ctx context.Context, f Filter) ([]*WorkOrder, error) {
	vs, ok := s.store.(VersionedOrders)
	if !ok || f != (Filter{CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore}) || f.CreatedAfter.IsZero() || f.CreatedBefore.IsZero() {
		return s.store.WorkOrders(ctx, f)
	}
	versions, err := vs.WorkOrderVersions(ctx, f.CreatedAfter, f.CreatedBefore)
	if err != nil {
		return nil, err
	}
	out := make([]*WorkOrder, 0, len(versions))
	var stale []int64
	s.cacheMu.Lock()
	for id, v := range versions {
		if w, ok := s.orders[id]; ok && w.Version == v {
			out = append(out, w)
		} else {
			stale = append(stale, id)
		}
	}
	s.cacheMu.Unlock()
	if len(stale) > 0 {
		var fresh []*WorkOrder
		if len(stale) > len(versions)/2 { // most of them (the first request): one range read
			fresh, err = s.store.WorkOrders(ctx, f)
			out = out[:0]
		} else {
			fresh, err = vs.WorkOrdersByID(ctx, stale)
		}
		if err != nil {
			return nil, err
		}
		s.cacheMu.Lock()
		if s.orders == nil || len(s.orders)+len(fresh) > maxCachedOrders {
			s.orders = make(map[int64]*WorkOrder, len(versions))
			for _, w := range out {
				s.orders[w.ID] = w
			}
		}
		for _, w := range fresh {
			s.orders[w.ID] = w
		}
		s.cacheMu.Unlock()
		out = append(out, fresh...)
	}
	slices.SortFunc(out, func(a, b *WorkOrder) int { return cmp.Compare(b.ID, a.ID) }) // as the store: newest first
	return out, nil
}

// NewReports builds the reports; equip may be nil (KPIs then carry no
// equipment figure). cfg gives the targets and the calendar's time zone
// (months begin at its midnight).
func NewReports(store Store, equip GoodOrderSource, cfg Config, now func() time.Time) *Reports {
	cfg.SetDefaults()
	return &Reports{store: store, equip: equip, targets: cfg.Targets, now: now, loc: cfg.Calendar.Location(), mtdMaxAge: 30 * time.Second}
}

// Location is the time zone months and days are counted in.
func (s *Reports) Location() *time.Location { return s.loc }

// Targets are the site's targets.
func (s *Reports) Targets() Targets { return s.targets }

// MonthToDate is this month's KPIs so far, as every screen shows them on
// connecting: computed at most every 30 seconds however many screens
// connect (a reconnect storm costs one computation), never older.
func (s *Reports) MonthToDate(ctx context.Context) (*KPIs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.mtd != nil && now.Sub(s.mtdAt) < s.mtdMaxAge && now.In(s.loc).Month() == s.mtdAt.In(s.loc).Month() {
		return s.mtd, nil
	}
	local := now.In(s.loc)
	k, err := s.KPIs(ctx, time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, s.loc), now)
	if err != nil {
		return nil, err
	}
	s.mtd, s.mtdAt = k, now
	return k, nil
}

// KPIs computes the figures for work orders created and equipment time in
// [from, to).
func (s *Reports) KPIs(ctx context.Context, from, to time.Time) (*KPIs, error) {
	ws, err := s.WorkOrders(ctx, Filter{CreatedAfter: from, CreatedBefore: to})
	if err != nil {
		return nil, err
	}
	var good *rules.GoodOrder
	if s.equip != nil {
		end := to
		if now := s.now(); now.Before(end) {
			end = now
		}
		if end.After(from) {
			if good, err = s.equip.GoodOrder(ctx, from, end); err != nil {
				return nil, err
			}
		}
	}
	return Compute(ws, from, to, s.now(), s.targets, good), nil
}

// ReviewItem is one open order in the daily review.
type ReviewItem struct {
	WorkOrder
	Age         Seconds `json:"age"`
	SLAStatus   string  `json:"sla_status"`  // breached, callback_overdue, due_soon, awaiting_callback, ok, done
	Responsible string  `json:"responsible"` // the assignee, else the first-responsible person
}

// ReviewOrder is the review's order of statuses, most urgent first.
var ReviewOrder = map[string]int{"breached": 0, "callback_overdue": 1, "due_soon": 2, "awaiting_callback": 3, "ok": 4, "done": 5}

// reviewStatus is an open order's place in the review at now. An order
// resolved on time is not "breached" while it waits for its call-back.
func reviewStatus(w *WorkOrder, now time.Time) string {
	switch w.Status {
	case Resolved:
		if !w.CallbackDue.IsZero() && now.After(w.CallbackDue) {
			return "callback_overdue"
		}
		if w.Type.FromResident() || w.Type == "" {
			return "awaiting_callback"
		}
		return "done"
	case CallbackDone:
		return "done"
	}
	switch {
	case w.ResponseBreached || w.ResolutionBreached || w.ArrivalBreached || now.After(w.ResolutionDue) ||
		(w.AcceptedAt.IsZero() && now.After(w.ResponseDue)) || ArrivalLate(w, now):
		return "breached"
	case w.ResolutionDue.Sub(now) < w.ResolutionDue.Sub(w.Created)/4:
		return "due_soon"
	}
	return "ok"
}

// Review lists open work orders for the daily review (投诉日盘点), breached
// first, then call-backs overdue, then by resolution deadline.
func (s *Reports) Review(ctx context.Context) ([]ReviewItem, error) {
	ws, err := s.store.WorkOrders(ctx, Filter{Open: true})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]ReviewItem, 0, len(ws))
	for _, w := range ws {
		if w.Drill {
			continue
		}
		it := ReviewItem{WorkOrder: *w, Age: Seconds(now.Sub(w.Created).Seconds()), SLAStatus: reviewStatus(w, now), Responsible: w.Assignee}
		if it.Responsible == "" {
			it.Responsible = w.FirstResponsible
		}
		out = append(out, it)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if ReviewOrder[out[i].SLAStatus] != ReviewOrder[out[j].SLAStatus] {
			return ReviewOrder[out[i].SLAStatus] < ReviewOrder[out[j].SLAStatus]
		}
		return out[i].ResolutionDue.Before(out[j].ResolutionDue)
	})
	return out, nil
}
