package workorder

import (
	"context"
	"sort"
	"sync"
	"time"
)

// KPIs are the service figures the property-service plans set targets for:
// 100 % of reports handled, 95 % call-backs, equipment in good order ≥ 98 %.
type KPIs struct {
	From                 time.Time          `json:"from"`
	To                   time.Time          `json:"to"`
	WorkOrders           int                `json:"workorders"` // created in the period, cancelled excluded
	Cancelled            int                `json:"cancelled"`  // created in the period and cancelled (each with its reason in the history)
	Drills               int                `json:"drills"`     // opened by drills: never counted
	Handled              int                `json:"handled"`    // of those, resolved or further
	HandlingRate         *float64           `json:"handling_rate"`
	ResponseOnTimeRate   *float64           `json:"response_on_time_rate"`   // accepted by the response deadline
	ResolutionOnTimeRate *float64           `json:"resolution_on_time_rate"` // resolved by the resolution deadline
	CallbackRate         *float64           `json:"callback_rate"`           // call-back done, of those resolved
	MeanTimeToRespond    *Seconds           `json:"mean_time_to_respond"`
	MeanTimeToResolve    *Seconds           `json:"mean_time_to_resolve"`
	Availability         map[string]float64 `json:"availability"` // per asset kind: share of time without an active critical or high alarm
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
	s := Seconds((sum / time.Duration(len(ds))).Seconds())
	return &s
}

// Reports computes the KPIs and the daily review from the stored work
// orders (and the engine's alarm history, for availability).
type Reports struct {
	store interface {
		WorkOrders(ctx context.Context, f Filter) ([]*WorkOrder, error)
	}
	avail Availability
	now   func() time.Time
	loc   *time.Location

	mu        sync.Mutex // one month-to-date computation at a time
	mtd       *KPIs
	mtdAt     time.Time
	mtdMaxAge time.Duration
}

// NewReports builds the reports; avail may be nil (KPIs then carry no
// availability).
func NewReports(store Store, avail Availability, now func() time.Time) *Reports {
	return &Reports{store: store, avail: avail, now: now, loc: time.Local, mtdMaxAge: 30 * time.Second}
}

// MonthToDate is this month's KPIs so far, as every screen shows them on
// connecting: computed at most every 30 seconds however many screens
// connect (a reconnect storm costs one computation), never older.
func (s *Reports) MonthToDate(ctx context.Context) (*KPIs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.mtd != nil && now.Sub(s.mtdAt) < s.mtdMaxAge && now.Month() == s.mtdAt.Month() {
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

// KPIs computes the figures for work orders created and alarm time in [from, to).
func (s *Reports) KPIs(ctx context.Context, from, to time.Time) (*KPIs, error) {
	ws, err := s.store.WorkOrders(ctx, Filter{CreatedAfter: from, CreatedBefore: to})
	if err != nil {
		return nil, err
	}
	k := &KPIs{From: from, To: to, Availability: map[string]float64{}}
	var accepted, acceptedOnTime, resolved, resolvedOnTime, callbacks int
	var respond, resolve []time.Duration
	for _, w := range ws {
		if w.Drill {
			k.Drills++
			continue
		}
		if w.Status == Cancelled {
			k.Cancelled++
			continue
		}
		k.WorkOrders++
		if !w.ResolvedAt.IsZero() || w.Status == Closed {
			k.Handled++
		}
		if !w.AcceptedAt.IsZero() {
			accepted++
			respond = append(respond, w.AcceptedAt.Sub(w.Created))
			if !w.AcceptedAt.After(w.ResponseDue) {
				acceptedOnTime++
			}
		}
		if !w.ResolvedAt.IsZero() {
			resolved++
			resolve = append(resolve, w.ResolvedAt.Sub(w.Created))
			if !w.ResolvedAt.After(w.ResolutionDue) {
				resolvedOnTime++
			}
			if !w.CallbackAt.IsZero() {
				callbacks++
			}
		}
	}
	k.HandlingRate = ratio(k.Handled, k.WorkOrders)
	k.ResponseOnTimeRate = ratio(acceptedOnTime, accepted)
	k.ResolutionOnTimeRate = ratio(resolvedOnTime, resolved)
	k.CallbackRate = ratio(callbacks, resolved)
	k.MeanTimeToRespond, k.MeanTimeToResolve = mean(respond), mean(resolve)

	if s.avail != nil {
		if k.Availability, err = s.avail.Availability(ctx, from, to); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// ReviewItem is one open order in the daily review.
type ReviewItem struct {
	WorkOrder
	Age       Seconds `json:"age"`
	SLAStatus string  `json:"sla_status"` // ok, due_soon (within 25 % of its resolution time), breached
}

// Review lists open work orders for the daily review, breached first, then
// by resolution deadline.
func (s *Reports) Review(ctx context.Context) ([]ReviewItem, error) {
	ws, err := s.store.WorkOrders(ctx, Filter{Open: true})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]ReviewItem, 0, len(ws))
	for _, w := range ws {
		it := ReviewItem{WorkOrder: *w, Age: Seconds(now.Sub(w.Created).Seconds()), SLAStatus: "ok"}
		switch {
		case w.ResponseBreached || w.ResolutionBreached || now.After(w.ResolutionDue):
			it.SLAStatus = "breached"
		case w.ResolutionDue.Sub(now) < w.ResolutionDue.Sub(w.Created)/4:
			it.SLAStatus = "due_soon"
		}
		out = append(out, it)
	}
	order := map[string]int{"breached": 0, "due_soon": 1, "ok": 2}
	sort.SliceStable(out, func(i, j int) bool {
		if order[out[i].SLAStatus] != order[out[j].SLAStatus] {
			return order[out[i].SLAStatus] < order[out[j].SLAStatus]
		}
		return out[i].ResolutionDue.Before(out[j].ResolutionDue)
	})
	return out, nil
}
