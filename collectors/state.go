package collectors

import (
	"sort"
	"sync"
	"sync/atomic"
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

// Subscription delivers every point applied to the state cache. Delivery is
// non-blocking: a subscriber that does not keep up loses points, which are
// counted in Dropped, and must resynchronise from State.Snapshot.
type Subscription struct {
	C       <-chan Point
	c       chan Point
	dropped atomic.Uint64
	state   *State
}

// Dropped reports how many points this subscriber missed because its buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery; C is closed.
func (s *Subscription) Close() { s.state.unsubscribe(s) }

// State is the live state cache: the latest value and quality of every asset
// field. The rules engine and the dashboard read and subscribe to it.
type State struct {
	mu      sync.RWMutex
	assets  map[string]*assetEntry
	order   []string
	subs    map[*Subscription]struct{}
	changed map[fieldKey]struct{} // since the last Changes; nil until TrackChanges
}

type fieldKey struct{ asset, field string }

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
	if s.changed == nil {
		s.changed = map[fieldKey]struct{}{}
	}
}

// Changes returns the latest state of every field changed since the last
// call, and forgets them.
func (s *State) Changes() []FieldChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.changed) == 0 {
		return nil
	}
	out := make([]FieldChange, 0, len(s.changed))
	for k := range s.changed {
		out = append(out, FieldChange{Asset: k.asset, Field: k.field, FieldState: s.assets[k.asset].fields[k.field]})
	}
	clear(s.changed)
	return out
}

type assetEntry struct {
	asset  Asset
	fields map[string]FieldState
}

// NewState builds a cache for the given assets. Points for other assets are
// rejected by Apply.
func NewState(assets []Asset) *State {
	s := &State{assets: make(map[string]*assetEntry, len(assets)), subs: map[*Subscription]struct{}{}}
	for _, a := range assets {
		s.assets[a.ID] = &assetEntry{asset: a, fields: map[string]FieldState{}}
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

// Apply records points in the cache and fans them out to subscribers. It fills
// in each point's Kind from the asset declaration and reports how many points
// it accepted; points for undeclared assets are left out and reported in
// rejected (their indexes in pts).
func (s *State) Apply(pts []Point) (accepted int, rejected []int) {
	s.mu.Lock()
	for i := range pts {
		e, ok := s.assets[pts[i].Asset]
		if !ok {
			rejected = append(rejected, i)
			continue
		}
		pts[i].Kind = e.asset.Kind
		fs := FieldState{Value: pts[i].Value, Unit: pts[i].Unit, Quality: pts[i].Quality, Time: pts[i].Time}
		if fs.Value.Type == ValueNone {
			// A bad read keeps the last value so operators can see what it was.
			fs.Value = e.fields[pts[i].Field].Value
		}
		e.fields[pts[i].Field] = fs
		if s.changed != nil {
			s.changed[fieldKey{pts[i].Asset, pts[i].Field}] = struct{}{}
		}
		accepted++
	}
	subs := make([]*Subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	if len(subs) == 0 {
		return accepted, rejected
	}
	next := 0
	for i := range pts {
		if next < len(rejected) && rejected[next] == i {
			next++
			continue
		}
		for _, sub := range subs {
			select {
			case sub.c <- pts[i]:
			default:
				sub.dropped.Add(1)
			}
		}
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
	f, ok := e.fields[field]
	return f, ok
}

// Snapshot copies the whole cache, assets in declaration order.
func (s *State) Snapshot() []AssetState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]AssetState, 0, len(s.order))
	for _, id := range s.order {
		e := s.assets[id]
		fields := make(map[string]FieldState, len(e.fields))
		for k, v := range e.fields {
			fields[k] = v
		}
		out = append(out, AssetState{Asset: e.asset, Fields: fields})
	}
	return out
}

// Subscribe registers a subscriber with a bounded buffer.
func (s *State) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Point, buffer)
	sub := &Subscription{C: c, c: c, state: s}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub
}

func (s *State) unsubscribe(sub *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.c)
	}
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
		names := make([]string, 0, len(e.fields))
		for name, f := range e.fields {
			if f.Quality == QualityGood && now.Sub(f.Time) > e.asset.StaleAfter {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			f := e.fields[name]
			out = append(out, Point{Asset: id, Kind: e.asset.Kind, Field: name, Unit: f.Unit, Quality: QualityStale, Time: now})
		}
	}
	return out
}
