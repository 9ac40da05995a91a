package rules

import (
	"context"
	"sort"
	"time"
)

// Availability is, per asset kind, the share of [from, to) in which the
// kind's assets had no active critical or high alarm (shown or not: a
// shelved or suppressed fault is still a fault). It reads each alarm's
// state at from and the transitions within the period, both indexed range
// queries, never the whole history.
func (e *Engine) Availability(ctx context.Context, from, to time.Time) (map[string]float64, error) {
	at, err := e.store.StatesAt(ctx, from)
	if err != nil {
		return nil, err
	}
	tr, err := e.store.TransitionsBetween(ctx, from, to)
	if err != nil {
		return nil, err
	}
	faultAlarm := map[string]string{} // alarm id → asset, for critical/high rules
	kindAssets := map[string][]string{}
	e.mu.Lock()
	for _, in := range e.insts {
		if in.rule.Priority == Critical || in.rule.Priority == High {
			faultAlarm[in.alarm.ID] = in.asset.ID
		}
	}
	for _, a := range e.assets {
		kindAssets[string(a.Kind)] = append(kindAssets[string(a.Kind)], a.ID)
	}
	e.mu.Unlock()

	faulty := func(s AlarmState) bool {
		return s == StateUnacked || s == StateAcked || s == StateSuppressed || s == StateOutOfService
	}
	down := map[string]time.Duration{}
	active := map[string]bool{}              // alarm id → faulty now
	assetActive := map[string]int{}          // asset → number of faulty alarms
	assetDownSince := map[string]time.Time{} // asset → since
	raise := func(id, asset string, t time.Time) {
		active[id] = true
		if assetActive[asset] == 0 {
			assetDownSince[asset] = t
		}
		assetActive[asset]++
	}
	for id, st := range at {
		if asset, ok := faultAlarm[id]; ok && faulty(st) {
			raise(id, asset, from)
		}
	}
	for _, t := range tr {
		asset, ok := faultAlarm[t.AlarmID]
		if !ok || faulty(t.From) == faulty(t.To) {
			continue
		}
		if faulty(t.To) {
			if !active[t.AlarmID] {
				raise(t.AlarmID, asset, t.At)
			}
		} else if active[t.AlarmID] {
			delete(active, t.AlarmID)
			assetActive[asset]--
			if assetActive[asset] == 0 {
				down[asset] += t.At.Sub(assetDownSince[asset])
			}
		}
	}
	for asset, n := range assetActive {
		if n > 0 {
			down[asset] += to.Sub(assetDownSince[asset])
		}
	}
	period := to.Sub(from)
	kinds := make([]string, 0, len(kindAssets))
	for kind := range kindAssets {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	out := make(map[string]float64, len(kinds))
	for _, kind := range kinds {
		var total time.Duration
		for _, a := range kindAssets[kind] {
			total += down[a]
		}
		out[kind] = 1 - float64(total)/float64(period*time.Duration(len(kindAssets[kind])))
	}
	return out, nil
}
