package collectors

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// FieldState is the latest known value of one asset field.
type FieldState struct {
	Value   Value     `json:"value"`
	Unit    string    `json:"unit,omitempty"`
	Quality Quality   `json:"quality"`
	Time    time.Time `json:"time"`
}

// AssetState is an asset with the latest state of each of its fields.
type AssetState struct {
	Asset
	Fields map[string]FieldState `json:"fields"`
}

// State is the live state cache: the latest value and quality of every asset
// field. The rules engine and the dashboard read it.
//
// Each asset's fields live in a slice, found through a small per-asset
// index by name; changes for the screens are a list of those slots (each
// at most once, marked dirty), so Apply and Changes hash nothing beyond
// the asset id and the field name.
type State struct {
	mu        sync.RWMutex
	assets    map[string]*assetEntry
	order     []string
	maxFields int
	tracking  bool       // TrackChanges was called
	changed   []fieldRef // dirty slots since the last Changes
}

type fieldRef struct {
	e    *assetEntry
	slot int32
}

// FieldChange is one field's latest state, as returned by Changes.
type FieldChange struct {
	Asset string `json:"asset"`
	Field string `json:"field"`
	FieldState
}

// TrackChanges makes Apply remember which fields changed, for Changes: a
// screen that refreshes ten times a second needs the latest values, not
// every point (and costs nothing per point when nobody tracks).
func (s *State) TrackChanges() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracking = true
}

// Changes returns the latest state of every field changed since the last
// call (in the order they first changed), and forgets them.
func (s *State) Changes() []FieldChange { return s.AppendChanges(nil) }

// AppendChanges is Changes appending to dst (nil when nothing changed and
// dst is nil), so a caller that flushes often can reuse one slice.
func (s *State) AppendChanges(dst []FieldChange) []FieldChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.changed) == 0 {
		return dst
	}
	dst = slices.Grow(dst, len(s.changed))
	for _, r := range s.changed {
		f := &r.e.fields[r.slot]
		f.dirty = false
		dst = append(dst, FieldChange{Asset: r.e.asset.ID, Field: f.name, FieldState: f.st})
	}
	clear(s.changed) // drop the references
	s.changed = s.changed[:0]
	return dst
}

type assetEntry struct {
	asset   Asset
	fieldIx map[string]int32 // name → index in fields
	fields  []fieldSlot
}

type fieldSlot struct {
	name  string
	st    FieldState
	dirty bool // in State.changed
}

// NewState builds a cache for the given assets. Points for other assets are
// rejected by Apply, and so are new fields beyond DefaultMaxFields per asset
// (see SetMaxFields).
func NewState(assets []Asset) *State {
	s := &State{assets: make(map[string]*assetEntry, len(assets)), maxFields: DefaultMaxFields}
	for _, a := range assets {
		s.assets[a.ID] = &assetEntry{asset: a, fieldIx: map[string]int32{}}
		s.order = append(s.order, a.ID)
	}
	return s
}

// Asset returns the declared asset.
func (s *State) Asset(id string) (Asset, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.assets[id]
	if !ok {
		return Asset{}, false
	}
	return e.asset, true
}

// Reasons a point is refused by State.Apply, used as the reason label of
// gateway_points_dropped_total.
const (
	ReasonUnknownAsset  = "unknown_asset"   // the asset is not declared
	ReasonTooManyFields = "too_many_fields" // the asset already holds MaxFields fields
)

// DefaultMaxFields is how many distinct fields one asset may hold in the
// cache unless SetMaxFields says otherwise. It is a backstop against field
// names taken from outside input (MQTT topic levels); the collectors apply
// their own, tighter limits first.
const DefaultMaxFields = 1024

// Rejected is a point State.Apply left out: its index in pts and why.
type Rejected struct {
	Index  int
	Reason string // ReasonUnknownAsset or ReasonTooManyFields
}

// SetMaxFields bounds the distinct fields of every asset (n < 1 restores
// DefaultMaxFields). Fields already held are kept.
func (s *State) SetMaxFields(n int) {
	if n < 1 {
		n = DefaultMaxFields
	}
	s.mu.Lock()
	s.maxFields = n
	s.mu.Unlock()
}

// Apply records points in the cache. It fills in each point's Kind from the
// asset declaration and reports how many points it accepted; points for
// undeclared assets, and points that would add a field to an asset already
// holding the maximum, are left out and reported in rejected (in index order).
func (s *State) Apply(pts []Point) (accepted int, rejected []Rejected) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *assetEntry
	for i := range pts {
		p := &pts[i]
		if e == nil || e.asset.ID != p.Asset {
			var ok bool
			if e, ok = s.assets[p.Asset]; !ok {
				rejected = append(rejected, Rejected{i, ReasonUnknownAsset})
				continue
			}
		}
		slot, known := e.fieldIx[p.Field]
		if !known {
			if len(e.fields) >= s.maxFields {
				rejected = append(rejected, Rejected{i, ReasonTooManyFields})
				continue
			}
			slot = int32(len(e.fields))
			e.fieldIx[p.Field] = slot
			e.fields = append(e.fields, fieldSlot{name: p.Field})
		}
		p.Kind = e.asset.Kind
		f := &e.fields[slot]
		v := p.Value
		if v.Type == ValueNone {
			// A bad read keeps the last value so operators can see what it was.
			v = f.st.Value
		}
		f.st = FieldState{Value: v, Unit: p.Unit, Quality: p.Quality, Time: p.Time}
		if s.tracking && !f.dirty {
			f.dirty = true
			s.changed = append(s.changed, fieldRef{e, slot})
		}
		accepted++
	}
	return accepted, rejected
}

// Get returns one field's latest state.
func (s *State) Get(asset, field string) (FieldState, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.assets[asset]
	if !ok {
		return FieldState{}, false
	}
	slot, ok := e.fieldIx[field]
	if !ok {
		return FieldState{}, false
	}
	return e.fields[slot].st, true
}

// Snapshot copies the whole cache, assets in declaration order.
func (s *State) Snapshot() []AssetState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]AssetState, 0, len(s.order))
	for _, id := range s.order {
		e := s.assets[id]
		fields := make(map[string]FieldState, len(e.fields))
		for _, f := range e.fields {
			fields[f.name] = f.st
		}
		out = append(out, AssetState{Asset: e.asset, Fields: fields})
	}
	return out
}

// StalePoints returns a stale-quality point for every good field that has not
// been refreshed within its asset's StaleAfter at time now. The caller
// publishes them (so they reach subscribers and storage like any reading).
func (s *State) StalePoints(now time.Time) []Point {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Point
	for _, id := range s.order {
		e := s.assets[id]
		if e.asset.StaleAfter <= 0 {
			continue
		}
		var stale []*fieldSlot
		for i := range e.fields {
			if f := &e.fields[i]; f.st.Quality == QualityGood && now.Sub(f.st.Time) > e.asset.StaleAfter {
				stale = append(stale, f)
			}
		}
		sort.Slice(stale, func(i, j int) bool { return stale[i].name < stale[j].name })
		for _, f := range stale {
			out = append(out, Point{Asset: id, Kind: e.asset.Kind, Field: f.name, Unit: f.st.Unit, Quality: QualityStale, Time: now})
		}
	}
	return out
}
