package rules

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
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
// (an indexed range per alarm, never the whole history; AlarmID, To and At
// are all the figure reads of them).
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
// the alarm history. Whole days that are over are computed once: kept in
// memory, and in the store when the history also keeps days (DayRollups),
// so a month is read from its days' rows and only today from the
// transitions.
type Equipment struct {
	e   *Engine
	h   FaultHistory
	loc *time.Location

	mu    sync.Mutex
	scope string               // the fault alarms the cached days were computed for
	days  map[int64]*faultSpan // closed days, by start (Unix seconds)
	today todaySoFar           // the current day up to a minute ago
	drops uint64               // the store's RollupsDropped when the days in memory were checked
}

// todaySoFar is the current day's figures from its midnight up to end
// (at least a minute ago: transitions are written as they happen), so a
// request reads only the transitions since the last one.
type todaySoFar struct {
	scope      string
	start, end time.Time
	sp         *faultSpan
}

// join is a followed by b (b starts where a ends, from a's end states).
func join(a, b *faultSpan) *faultSpan {
	out := &faultSpan{Down: maps.Clone(a.Down), Onsets: maps.Clone(a.Onsets), Running: b.Running, Active: b.Active}
	for k, d := range b.Down {
		out.Down[k] += d
	}
	for k, n := range b.Onsets {
		out.Onsets[k] += n
	}
	return out
}

// live computes a piece of the current day [start, end) that begins at its
// midnight: the part up to closed extends the day so far, kept; the rest
// is read each time.
func (q *Equipment) live(ctx context.Context, scope string, faultAlarm map[string]string, ids []string, start, end, closed time.Time, startStates []string) (*faultSpan, error) {
	q.mu.Lock()
	so := q.today
	q.mu.Unlock()
	if so.scope != scope || !so.start.Equal(start) || so.end.After(end) {
		so = todaySoFar{scope: scope, start: start, end: start}
	}
	upTo := closed
	if end.Before(upTo) {
		upTo = end
	}
	if upTo.After(so.end) {
		var from []string
		if so.sp != nil {
			from = so.sp.Active
		} else {
			from = startStates
		}
		more, err := q.span(ctx, faultAlarm, ids, so.end, upTo, from)
		if err != nil {
			return nil, err
		}
		if so.sp != nil {
			more = join(so.sp, more)
		}
		so.sp, so.end = more, upTo
		q.mu.Lock()
		if q.today.end.Before(so.end) || !q.today.start.Equal(so.start) || q.today.scope != scope {
			q.today = so
		}
		q.mu.Unlock()
	}
	if so.sp == nil {
		return q.span(ctx, faultAlarm, ids, start, end, startStates)
	}
	if !end.After(so.end) {
		return so.sp, nil
	}
	rest, err := q.span(ctx, faultAlarm, ids, so.end, end, so.sp.Active)
	if err != nil {
		return nil, err
	}
	return join(so.sp, rest), nil
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
	Down    map[string]time.Duration `json:"down"`    // asset → time in a fault
	Onsets  map[string]int           `json:"onsets"`  // asset → faults that began
	Running map[string]bool          `json:"running"` // assets still in a fault at the end
	Active  []string                 `json:"active"`  // fault alarms in a fault at the end (the next day starts from them)
}

// span computes [from, to) from the store: the fault alarms' transitions
// in the stretch, from their states at from (start, when the day before is
// known; else read from the store).
func (q *Equipment) span(ctx context.Context, faultAlarm map[string]string, ids []string, from, to time.Time, start []string) (*faultSpan, error) {
	sp := &faultSpan{Down: map[string]time.Duration{}, Onsets: map[string]int{}, Running: map[string]bool{}, Active: []string{}}
	if len(ids) == 0 {
		return sp, nil
	}
	if start == nil {
		at, err := q.h.StatesAt(ctx, from)
		if err != nil {
			return nil, err
		}
		start = []string{}
		for _, id := range ids {
			if inFault(at[id]) {
				start = append(start, id)
			}
		}
	}
	tr, err := q.h.TransitionsOf(ctx, ids, from, to)
	if err != nil {
		return nil, err
	}
	// In time order across alarms (the store gives each alarm's in order):
	// sort positions, not the transitions themselves.
	ord := make([]int32, len(tr))
	for i := range ord {
		ord[i] = int32(i)
	}
	slices.SortFunc(ord, func(a, b int32) int { return cmp.Or(tr[a].At.Compare(tr[b].At), cmp.Compare(a, b)) })
	active := map[string]bool{}              // alarm → in a device fault
	assetActive := map[string]int{}          // asset → alarms in a fault
	assetDownSince := map[string]time.Time{} // asset → since
	raise := func(id, asset string, t time.Time, onset bool) {
		active[id] = true
		if assetActive[asset] == 0 {
			assetDownSince[asset] = t
			if onset {
				sp.Onsets[asset]++
			}
		}
		assetActive[asset]++
	}
	for _, id := range start {
		if asset, ok := faultAlarm[id]; ok && !active[id] {
			raise(id, asset, from, false)
		}
	}
	for _, i := range ord {
		t := &tr[i]
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
				sp.Down[asset] += t.At.Sub(assetDownSince[asset])
			}
		}
	}
	for asset, n := range assetActive {
		if n > 0 {
			sp.Down[asset] += to.Sub(assetDownSince[asset])
			sp.Running[asset] = true
		}
	}
	for id := range active {
		sp.Active = append(sp.Active, id)
	}
	slices.Sort(sp.Active)
	return sp, nil
}

// maxCachedFaultDays bounds the cache.
const maxCachedFaultDays = 400

// cached is a closed day from memory (nil if not there).
func (q *Equipment) cached(scope string, start time.Time) *faultSpan {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.scope != scope {
		return nil
	}
	return q.days[start.Unix()]
}

// keep puts a closed day in memory.
func (q *Equipment) keep(scope string, start time.Time, sp *faultSpan) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.scope != scope { // the fault rules changed: the days computed for the old ones go
		q.scope, q.days = scope, map[int64]*faultSpan{}
	}
	if len(q.days) >= maxCachedFaultDays {
		oldest := int64(math.MaxInt64)
		for k := range q.days {
			oldest = min(oldest, k)
		}
		delete(q.days, oldest)
	}
	q.days[start.Unix()] = sp
}

// GoodOrder computes the figure for [from, to).
func (q *Equipment) GoodOrder(ctx context.Context, from, to time.Time) (*GoodOrder, error) {
	faultAlarm := map[string]string{} // alarm id → asset
	q.e.mu.Lock()
	for i := range q.e.set.insts {
		in := &q.e.set.insts[i]
		if in.rule.Fault {
			faultAlarm[in.alarm.ID] = in.asset.ID
		}
	}
	assets := q.e.set.assets
	now := q.e.now()
	q.e.mu.Unlock()
	out := &GoodOrder{Kinds: map[string]float64{}, Assets: []AssetFaults{}}
	if len(assets) == 0 || !to.After(from) {
		return out, nil
	}
	ids := make([]string, 0, len(faultAlarm))
	parts := make([]string, 0, len(faultAlarm))
	for id := range faultAlarm {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		parts = append(parts, id+"="+faultAlarm[id])
	}
	scope := RollupScope(parts)
	kind := "good_order/v1/" + scope
	keeper, _ := q.h.(DayRollups)
	var kept map[int64]Rollup // the store's days, read once when memory lacks one
	if keeper != nil {
		q.mu.Lock()
		if d := keeper.RollupsDropped(); d != q.drops { // a late transition: what memory holds may be out of date
			q.drops, q.days, q.today = d, map[int64]*faultSpan{}, todaySoFar{}
		}
		q.mu.Unlock()
	}

	down := map[string]time.Duration{}
	faults := map[string]int{}
	var running map[string]bool
	var prev *faultSpan             // the piece before: its end states start the next
	closed := now.Add(-time.Minute) // transitions are written as they happen
	err := Days(from, to, closed, q.loc, func(start, end time.Time, whole bool) error {
		var sp *faultSpan
		if whole {
			sp = q.cached(scope, start)
			if sp == nil && keeper != nil {
				if kept == nil {
					var err error
					if kept, err = keeper.Rollups(ctx, kind, start, to); err != nil {
						return err
					}
				}
				if r, ok := kept[start.UnixMilli()]; ok && r.End.Equal(end) {
					var k faultSpan
					if json.Unmarshal(r.Doc, &k) == nil && k.Down != nil {
						sp = &k
						q.keep(scope, start, sp)
					}
				}
			}
		}
		if sp == nil {
			var mark int64
			if whole && keeper != nil {
				var err error
				if mark, err = keeper.RollupMark(ctx, start, end); err != nil {
					return err
				}
			}
			var startStates []string
			if prev != nil {
				startStates = prev.Active
			}
			var err error
			l := start.In(q.loc)
			if !whole && start.Equal(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, q.loc)) && end.After(closed) { // today
				sp, err = q.live(ctx, scope, faultAlarm, ids, start, end, closed, startStates)
			} else {
				sp, err = q.span(ctx, faultAlarm, ids, start, end, startStates)
			}
			if err != nil {
				return err
			}
			if whole {
				q.keep(scope, start, sp)
				if keeper != nil {
					doc, err := json.Marshal(sp)
					if err != nil {
						return err
					}
					if err := keeper.SaveRollup(ctx, kind, start, end, mark, doc); err != nil {
						return err
					}
				}
			}
		}
		for a, d := range sp.Down {
			down[a] += d
		}
		for a, n := range sp.Onsets {
			faults[a] += n
		}
		running, prev = sp.Running, sp
		return nil
	})
	if err != nil {
		return nil, err
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
