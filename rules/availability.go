package rules

import (
	"cmp"
	"context"
	"slices"
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
// the alarm history.
type Equipment struct {
	e *Engine
	h FaultHistory
}

// NewEquipment builds the figure's source.
func NewEquipment(e *Engine, h FaultHistory) *Equipment { return &Equipment{e: e, h: h} }

func inFault(s AlarmState) bool { return s != StateNormal && s != StateRTNUnacked && s != "" }

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
	var at map[string]AlarmState
	var tr []Transition
	if len(ids) > 0 {
		var err error
		if at, err = q.h.StatesAt(ctx, from); err != nil {
			return nil, err
		}
		if tr, err = q.h.TransitionsOf(ctx, ids, from, to); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(tr, func(a, b Transition) int { return a.At.Compare(b.At) })

	down := map[string]time.Duration{}
	faults := map[string]int{}
	active := map[string]bool{}              // alarm → in a device fault
	assetActive := map[string]int{}          // asset → alarms in a fault
	assetDownSince := map[string]time.Time{} // asset → since
	raise := func(id, asset string, t time.Time, onset bool) {
		active[id] = true
		if assetActive[asset] == 0 {
			assetDownSince[asset] = t
			if onset {
				faults[asset]++
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
				Down: down[a.ID].Seconds(), Running: assetActive[a.ID] > 0})
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
