package rules

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Equipment in good order (设备完好率) as the trade means it: the share of
// equipment that is not in a *device* fault. A device fault is an alarm of
// a rule marked `fault: true`: the controller or sensor itself is broken or
// cannot be trusted (communication lost, a controller's fault code, a
// sensor gone silent), in any state that is not normal (active,
// acknowledged, shelved, suppressed, or out of service while it is
// repaired). A process alarm (water detected, pressure low, a fire alarm)
// says the equipment is working: the sensor reporting a leak is in good
// order. The figure is over time: asset-time not in a device fault over all
// asset-time in the period, per asset kind and over the site.

// FaultHistory reads what the figure needs from the alarm store: each
// alarm's state at a time, and the transitions of given alarms in a period
// (an indexed range per alarm, never the whole history).
type FaultHistory interface {
	StatesAt(ctx context.Context, t time.Time) (map[string]AlarmState, error)
	TransitionsOf(ctx context.Context, alarmIDs []string, from, to time.Time) ([]Transition, error)
}

// GoodOrder is equipment in good order over a period.
type GoodOrder struct {
	Overall *float64           `json:"overall"` // nil without assets
	Kinds   map[string]float64 `json:"kinds"`   // per asset kind
	Assets  []AssetFaults      `json:"assets"`  // assets with a device fault in the period, most down time first
}

// AssetFaults is one asset's device faults in a period.
type AssetFaults struct {
	Asset   string  `json:"asset"`
	Name    string  `json:"name"`
	Kind    string  `json:"kind"`
	Faults  int     `json:"faults"`       // device faults that began in the period
	Down    float64 `json:"down_seconds"` // time in a device fault
	Alarms  int     `json:"alarms"`       // alarm activations of any kind (filled by callers that count them)
	Running bool    `json:"in_fault"`     // still in a fault at the period's end
}

// Equipment computes equipment in good order from the engine's rules and
// the alarm history. Whole days that are over are kept once computed (a
// day's history does not change once it is over).
type Equipment struct {
	e   *Engine
	h   FaultHistory
	loc *time.Location

	mu   sync.Mutex
	days map[int64]*faultSpan // closed days, by start (Unix seconds)
}

// NewEquipment builds the figure's source; days begin at midnight in the
// engine's local time zone unless InZone says otherwise.
func NewEquipment(e *Engine, h FaultHistory) *Equipment {
	return &Equipment{e: e, h: h, loc: time.Local, days: map[int64]*faultSpan{}}
}

// InZone sets the time zone whose midnights split the cached days.
func (q *Equipment) InZone(loc *time.Location) *Equipment {
	if loc != nil {
		q.loc = loc
	}
	return q
}

func inFault(s AlarmState) bool { return s != StateNormal && s != StateRTNUnacked && s != "" }

// faultSpan is the device faults in a stretch of time, per asset.
type faultSpan struct {
	down    map[string]time.Duration
	onsets  map[string]int
	running map[string]bool // assets still in a fault at the end
}

// span computes [from, to) from the store: the fault alarms' states at
// from and their transitions in the stretch.
func (q *Equipment) span(ctx context.Context, faultAlarm map[string]string, ids []string, from, to time.Time) (*faultSpan, error) {
	sp := &faultSpan{down: map[string]time.Duration{}, onsets: map[string]int{}, running: map[string]bool{}}
	if len(ids) == 0 {
		return sp, nil
	}
	at, err := q.h.StatesAt(ctx, from)
	if err != nil {
		return nil, err
	}
	tr, err := q.h.TransitionsOf(ctx, ids, from, to)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(tr, func(a, b Transition) int { return a.At.Compare(b.At) })
	active := map[string]bool{}              // alarm → in a device fault
	assetActive := map[string]int{}          // asset → alarms in a fault
	assetDownSince := map[string]time.Time{} // asset → since
	raise := func(id, asset string, t time.Time, onset bool) {
		active[id] = true
		if assetActive[asset] == 0 {
			assetDownSince[asset] = t
			if onset {
				sp.onsets[asset]++
			}
		}
		assetActive[asset]++
	}
	for _, id := range ids {
		if inFault(at[id]) {
			raise(id, faultAlarm[id], from, false)
		}
	}
	for _, t := range tr {
		asset, ok := faultAlarm[t.AlarmID]
		if !ok {
			continue
		}
		switch f := inFault(t.To); {
		case f && !active[t.AlarmID]:
			raise(t.AlarmID, asset, t.At, true)
		case !f && active[t.AlarmID]:
			delete(active, t.AlarmID)
			assetActive[asset]--
			if assetActive[asset] == 0 {
				sp.down[asset] += t.At.Sub(assetDownSince[asset])
			}
		}
	}
	for asset, n := range assetActive {
		if n > 0 {
			sp.down[asset] += to.Sub(assetDownSince[asset])
			sp.running[asset] = true
		}
	}
	return sp, nil
}

// maxCachedFaultDays bounds the cache.
const maxCachedFaultDays = 400

// GoodOrder computes the figure for [from, to).
func (q *Equipment) GoodOrder(ctx context.Context, from, to time.Time) (*GoodOrder, error) {
	faultAlarm := map[string]string{} // alarm id → asset
	q.e.mu.Lock()
	for _, in := range q.e.insts {
		if in.rule.Fault {
			faultAlarm[in.alarm.ID] = in.asset.ID
		}
	}
	assets := q.e.assets
	now := q.e.now()
	q.e.mu.Unlock()
	out := &GoodOrder{Kinds: map[string]float64{}, Assets: []AssetFaults{}}
	if len(assets) == 0 || !to.After(from) {
		return out, nil
	}
	ids := make([]string, 0, len(faultAlarm))
	for id := range faultAlarm {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	down := map[string]time.Duration{}
	faults := map[string]int{}
	var running map[string]bool
	closed := now.Add(-time.Minute)
	for t := from; t.Before(to); {
		l := t.In(q.loc)
		dayStart := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, q.loc)
		next := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, q.loc)
		end := next
		if to.Before(end) {
			end = to
		}
		var sp *faultSpan
		cacheable := t.Equal(dayStart) && end.Equal(next) && !next.After(closed)
		if cacheable {
			q.mu.Lock()
			sp = q.days[t.Unix()]
			q.mu.Unlock()
		}
		if sp == nil {
			var err error
			if sp, err = q.span(ctx, faultAlarm, ids, t, end); err != nil {
				return nil, err
			}
			if cacheable {
				q.mu.Lock()
				if len(q.days) >= maxCachedFaultDays {
					oldest := int64(math.MaxInt64)
					for k := range q.days {
						oldest = min(oldest, k)
					}
					delete(q.days, oldest)
				}
				q.days[t.Unix()] = sp
				q.mu.Unlock()
			}
		}
		for a, d := range sp.down {
			down[a] += d
		}
		for a, n := range sp.onsets {
			faults[a] += n
		}
		running = sp.running
		t = end
	}

	period := to.Sub(from)
	kindTotal, kindDown := map[string]time.Duration{}, map[string]time.Duration{}
	var total, totalDown time.Duration
	for _, a := range assets {
		k := string(a.Kind)
		kindTotal[k] += period
		kindDown[k] += down[a.ID]
		total += period
		totalDown += down[a.ID]
		if down[a.ID] > 0 || faults[a.ID] > 0 {
			out.Assets = append(out.Assets, AssetFaults{Asset: a.ID, Name: a.Name, Kind: k, Faults: faults[a.ID],
				Down: down[a.ID].Seconds(), Running: running[a.ID]})
		}
	}
	for k, t := range kindTotal {
		out.Kinds[k] = 1 - float64(kindDown[k])/float64(t)
	}
	v := 1 - float64(totalDown)/float64(total)
	out.Overall = &v
	slices.SortStableFunc(out.Assets, func(a, b AssetFaults) int {
		return cmp.Or(cmp.Compare(b.Down, a.Down), cmp.Compare(b.Faults, a.Faults), cmp.Compare(a.Asset, b.Asset))
	})
	return out, nil
}
