package rules

import (
	"context"
	"sort"
	"time"
)

// KPIs are the service figures the property-service plans set targets for:
// 100 % of reports handled, 95 % call-backs, equipment in good order ≥ 98 %.
type KPIs struct {
	From                 time.Time          `json:"from"`
	To                   time.Time          `json:"to"`
	WorkOrders           int                `json:"workorders"` // created in the period, cancelled excluded
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

// KPIs computes the figures for work orders created and alarm time in [from, to).
func (e *Engine) KPIs(ctx context.Context, from, to time.Time) (*KPIs, error) {
	ws, err := e.store.WorkOrders(ctx, WorkOrderFilter{CreatedAfter: from, CreatedBefore: to})
	if err != nil {
		return nil, err
	}
	k := &KPIs{From: from, To: to, Availability: map[string]float64{}}
	var accepted, acceptedOnTime, resolved, resolvedOnTime, callbacks int
	var respond, resolve []time.Duration
	for _, w := range ws {
		if w.Status == Cancelled {
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

	// Availability: replay every transition up to `to`, and count, per asset,
	// the time within [from, to) in which any of its critical or high alarms
	// was active (shown or not).
	tr, err := e.store.TransitionsBetween(ctx, time.Time{}, to)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	faultAlarm := map[string]string{} // alarm id → asset, for critical/high rules
	kindAssets := map[string][]string{}
	for _, in := range e.insts {
		if in.rule.Priority == Critical || in.rule.Priority == High {
			faultAlarm[in.alarm.ID] = in.asset.ID
		}
	}
	for _, a := range e.assets {
		kindAssets[string(a.Kind)] = append(kindAssets[string(a.Kind)], a.ID)
	}
	e.mu.Unlock()
	down := map[string]time.Duration{}
	activeSince := map[string]time.Time{}    // alarm id → since
	assetActive := map[string]int{}          // asset → number of active fault alarms
	assetDownSince := map[string]time.Time{} // asset → since
	clip := func(t time.Time) time.Time {
		if t.Before(from) {
			return from
		}
		return t
	}
	faulty := func(s AlarmState) bool {
		return s == StateUnacked || s == StateAcked || s == StateSuppressed || s == StateOutOfService
	}
	for _, t := range tr {
		asset, ok := faultAlarm[t.AlarmID]
		if !ok || faulty(t.From) == faulty(t.To) {
			continue
		}
		if faulty(t.To) {
			activeSince[t.AlarmID] = t.At
			if assetActive[asset] == 0 {
				assetDownSince[asset] = t.At
			}
			assetActive[asset]++
		} else if _, was := activeSince[t.AlarmID]; was {
			delete(activeSince, t.AlarmID)
			assetActive[asset]--
			if assetActive[asset] == 0 && t.At.After(from) {
				down[asset] += t.At.Sub(clip(assetDownSince[asset]))
			}
		}
	}
	for asset, n := range assetActive {
		if n > 0 {
			down[asset] += to.Sub(clip(assetDownSince[asset]))
		}
	}
	period := to.Sub(from)
	kinds := make([]string, 0, len(kindAssets))
	for kind := range kindAssets {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		var total time.Duration
		for _, a := range kindAssets[kind] {
			total += down[a]
		}
		k.Availability[kind] = 1 - float64(total)/float64(period*time.Duration(len(kindAssets[kind])))
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
func (e *Engine) Review(ctx context.Context) ([]ReviewItem, error) {
	ws, err := e.store.WorkOrders(ctx, WorkOrderFilter{Open: true})
	if err != nil {
		return nil, err
	}
	now := e.now()
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
