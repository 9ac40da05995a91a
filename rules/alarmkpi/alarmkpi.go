// Package alarmkpi measures the health of the alarm system itself, as
// ISA-18.2 and EEMUA 191 ask: how many alarms an operator is given per ten
// minutes and per day, the floods (more than ten in ten minutes), the few
// alarms that make most of the noise (bad actors), chattering and stale
// alarms, what is shelved or out of service, and whether the priorities are
// spread about 80/15/5.
package alarmkpi

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/propgate/gateway/rules"
)

// EventKind is what an alarm-history row says for these figures.
type EventKind uint8

// Event kinds.
const (
	Annunciated  EventKind = iota // fired: became unacknowledged from normal (or returned-unacknowledged)
	Shelved                       // an operator shelved it
	OutOfService                  // taken out of service
)

// Events reads the alarm history (the store): fn is called for each event
// in [from, to), in time order. The alarm id is only valid during the call.
type Events interface {
	AlarmEvents(ctx context.Context, from, to time.Time, fn func(alarm []byte, at time.Time, kind EventKind)) error
}

// Alarms are the alarms as they are now (the engine): names, priorities,
// and which stand, are shelved or out of service.
type Alarms interface {
	Alarms(filter func(*rules.Alarm) bool) []rules.Alarm
}

// Config sets the figures' thresholds.
type Config struct {
	Operators   int           `yaml:"operators"`    // operator positions sharing the alarms (per-operator rates); default 1
	FloodAlarms int           `yaml:"flood_alarms"` // more than this in ten minutes per operator is a flood; default 10
	StaleAfter  time.Duration `yaml:"stale_after"`  // standing longer than this is stale; default 24h
}

// SetDefaults fills unset values with EEMUA 191's.
func (c *Config) SetDefaults() {
	if c.Operators <= 0 {
		c.Operators = 1
	}
	if c.FloodAlarms <= 0 {
		c.FloodAlarms = 10
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = 24 * time.Hour
	}
}

// Figure is one figure against its benchmark (met: at most the benchmark).
type Figure struct {
	Value  float64 `json:"value"`
	Target float64 `json:"target"`
	Met    bool    `json:"met"`
}

func atMost(v, target float64) Figure { return Figure{Value: v, Target: target, Met: v <= target+1e-9} }

// Day is one day's annunciations.
type Day struct {
	Date        string  `json:"date"`
	Alarms      int     `json:"alarms"`
	PerOperator float64 `json:"per_operator"`
}

// Flood is a run of ten-minute periods each over the flood threshold.
type Flood struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Alarms int       `json:"alarms"`
	Peak   int       `json:"peak"` // most in one ten-minute period
}

// AlarmCount is one alarm's share of the annunciations.
type AlarmCount struct {
	Alarm    string         `json:"alarm"`
	Rule     string         `json:"rule"`
	Asset    string         `json:"asset"`
	Name     string         `json:"name"`
	NameZH   string         `json:"name_zh,omitempty"`
	Priority rules.Priority `json:"priority"`
	Category string         `json:"category,omitempty"`
	Count    int            `json:"count"`
	Share    float64        `json:"share"`
	Episodes int            `json:"chatter_episodes,omitempty"` // chattering: times it fired 3 times within a minute
}

// Standing is an alarm standing (active) since a time.
type Standing struct {
	Alarm    string         `json:"alarm"`
	Name     string         `json:"name"`
	NameZH   string         `json:"name_zh,omitempty"`
	Priority rules.Priority `json:"priority"`
	Since    time.Time      `json:"since"`
	Hours    float64        `json:"hours"`
}

// PriorityShare is one priority's share of the annunciations against the
// 80/15/5 distribution (critical 5 %, high 15 %, medium and low 80 %).
type PriorityShare struct {
	Priority string  `json:"priority"` // critical, high, "medium+low"
	Alarms   int     `json:"alarms"`
	Share    float64 `json:"share"`
	Target   float64 `json:"target"`
}

// Report is the alarm system's health over a period.
type Report struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Operators int       `json:"operators"`
	Alarms    int       `json:"alarms"` // annunciations in the period
	// EEMUA 191: ≤ 144 a day per operator is very likely acceptable (288
	// manageable); ≤ 1 per ten minutes on average; < 1 % of the time in flood.
	PerDayPerOperator   Figure          `json:"per_day_per_operator"`
	Per10MinPerOperator Figure          `json:"per_10min_per_operator"`
	Max10Min            int             `json:"max_10min"` // most alarms in one ten-minute period (all operators)
	FloodTimeShare      Figure          `json:"flood_time_share"`
	Days                []Day           `json:"days"`
	Floods              []Flood         `json:"floods"`
	BadActors           []AlarmCount    `json:"bad_actors"`      // the ten most frequent
	BadActorShare       float64         `json:"bad_actor_share"` // of all annunciations, the top ten's
	Chattering          []AlarmCount    `json:"chattering"`      // fired ChatterCount times within ChatterWindow
	Stale               []Standing      `json:"stale"`           // standing longer than stale_after, as of StaleAsOf
	StaleAsOf           time.Time       `json:"stale_as_of"`     // now, or the period's end if earlier
	ShelvedNow          int             `json:"shelved_now"`     // shelved at the time of the report
	OutOfServiceNow     int             `json:"out_of_service_now"`
	ShelvedInPeriod     int             `json:"shelved_in_period"` // times an alarm was shelved in the period
	OutOfServiceInPer   int             `json:"out_of_service_in_period"`
	Priorities          []PriorityShare `json:"priorities"`
	// PerAlarm is every alarm's count, most first (for reports by type).
	PerAlarm []AlarmCount `json:"-"`
}

// Health computes the report.
type Health struct {
	cfg    Config
	events Events
	alarms Alarms
	now    func() time.Time
	loc    *time.Location

	mu    sync.Mutex
	days  map[int64]*agg // closed days' firings, by the day's start (Unix seconds)
	today soFar          // the current day up to a minute ago
	drops uint64         // the store's RollupsDropped when the days in memory were checked
}

// soFar is the current day's firings from its midnight up to end (at least
// a minute ago: transitions are written as they happen), so a request
// reads only the transitions since the last one.
type soFar struct {
	start, end time.Time
	g          *agg
}

// New builds the health report's source; loc is the site's time zone (days).
func New(cfg Config, events Events, alarms Alarms, loc *time.Location, now func() time.Time) *Health {
	cfg.SetDefaults()
	if loc == nil {
		loc = time.Local
	}
	return &Health{cfg: cfg, events: events, alarms: alarms, now: now, loc: loc, days: map[int64]*agg{}}
}

const tenMin = 10 * time.Minute

// acc is one alarm's firings in a stretch of time.
type acc struct {
	count, episodes int
	first, last     [2]int64 // its first two and last two firings (ms; none: -1<<62)
}

const never = -1 << 62

// agg is the firings in [start, end): per ten-minute bucket from start, per
// alarm, and the shelvings and outs of service.
type agg struct {
	start, end   time.Time
	buckets      []int
	per          map[string]*acc
	alarms       int
	shelved, oos int
}

// collect reads [from, to) from the store; buckets count from the ten
// minutes from is in.
func (h *Health) collect(ctx context.Context, from, to time.Time) (*agg, error) {
	base := from.Truncate(tenMin)
	g := &agg{start: base, end: to, buckets: make([]int, int((to.Sub(base)+tenMin-1)/tenMin)), per: map[string]*acc{}}
	window := rules.ChatterWindow.Milliseconds()
	err := h.events.AlarmEvents(ctx, from, to, func(alarm []byte, at time.Time, kind EventKind) {
		switch kind {
		case Shelved:
			g.shelved++
			return
		case OutOfService:
			g.oos++
			return
		}
		g.alarms++
		if i := int(at.Sub(base) / tenMin); i >= 0 && i < len(g.buckets) {
			g.buckets[i]++
		}
		a := g.per[string(alarm)] // no allocation for the lookup
		if a == nil {
			a = &acc{first: [2]int64{never, never}, last: [2]int64{never, never}}
			g.per[string(alarm)] = a
		}
		ms := at.UnixMilli()
		if ms-a.last[0] <= window { // this and the two before within the window
			a.episodes++
		}
		if a.count < 2 {
			a.first[a.count] = ms
		}
		a.count++
		a.last[0], a.last[1] = a.last[1], ms
	})
	return g, err
}

// merge appends the later stretch n to g (n begins where g ends): counts
// add up, and an alarm's first firings in n are checked for chattering
// against its last ones in g, so the result is as if read in one go.
func (g *agg) merge(n *agg) {
	off := int(n.start.Sub(g.start) / tenMin)
	if need := off + len(n.buckets); need > len(g.buckets) {
		g.buckets = append(g.buckets, make([]int, need-len(g.buckets))...)
	}
	for i, c := range n.buckets {
		g.buckets[off+i] += c
	}
	g.alarms, g.shelved, g.oos, g.end = g.alarms+n.alarms, g.shelved+n.shelved, g.oos+n.oos, n.end
	window := rules.ChatterWindow.Milliseconds()
	for id, b := range n.per {
		a := g.per[id]
		if a == nil {
			c := *b
			g.per[id] = &c
			continue
		}
		last := a.last
		eps := b.episodes
		for i := 0; i < min(2, b.count); i++ { // the firings n counted without their predecessors in g
			if b.first[i]-last[0] <= window {
				eps++
			}
			last[0], last[1] = last[1], b.first[i]
		}
		if a.count < 2 {
			for i := 0; a.count+i < 2 && i < b.count; i++ {
				a.first[a.count+i] = b.first[i]
			}
		}
		a.count += b.count
		a.episodes += eps
		if b.count >= 2 {
			a.last = b.last
		} else {
			a.last = last
		}
	}
}

// maxCachedDays bounds the cache of closed days' firings.
const maxCachedDays = 400

// rollupKind names the kept days' figures in the store (DayRollups).
const rollupKind = "alarm_health/v1"

// keptDay is a closed day's firings as the store keeps them.
type keptDay struct {
	Start   int64               `json:"start"` // Unix ms of the first ten-minute bucket
	Buckets []int               `json:"buckets"`
	Per     map[string][6]int64 `json:"per"` // alarm → count, chattering episodes, first two and last two firings (ms)
	Alarms  int                 `json:"alarms"`
	Shelved int                 `json:"shelved"`
	OOS     int                 `json:"oos"`
}

func (g *agg) kept() keptDay {
	k := keptDay{Start: g.start.UnixMilli(), Buckets: g.buckets, Per: make(map[string][6]int64, len(g.per)), Alarms: g.alarms, Shelved: g.shelved, OOS: g.oos}
	for id, a := range g.per {
		k.Per[id] = [6]int64{int64(a.count), int64(a.episodes), a.first[0], a.first[1], a.last[0], a.last[1]}
	}
	return k
}

func (k keptDay) agg(end time.Time) *agg {
	g := &agg{start: time.UnixMilli(k.Start), end: end, buckets: k.Buckets, per: make(map[string]*acc, len(k.Per)), alarms: k.Alarms, shelved: k.Shelved, oos: k.OOS}
	for id, v := range k.Per {
		g.per[id] = &acc{count: int(v[0]), episodes: int(v[1]), first: [2]int64{v[2], v[3]}, last: [2]int64{v[4], v[5]}}
	}
	return g
}

// day is one closed day's firings: from memory, else from the days the
// store keeps (kept, read once per report), else from the transitions (and
// then kept in both).
func (h *Health) day(ctx context.Context, start, end time.Time, kept func() (map[int64]rules.Rollup, error)) (*agg, error) {
	key := start.Unix()
	h.mu.Lock()
	g, ok := h.days[key]
	h.mu.Unlock()
	if ok {
		return g, nil
	}
	keeper, _ := h.events.(rules.DayRollups)
	if keeper != nil {
		days, err := kept()
		if err != nil {
			return nil, err
		}
		if r, ok := days[start.UnixMilli()]; ok && r.End.Equal(end) {
			var k keptDay
			if json.Unmarshal(r.Doc, &k) == nil && k.Per != nil && len(k.Buckets) > 0 {
				g = k.agg(end)
			}
		}
	}
	if g == nil {
		var mark int64
		if keeper != nil {
			var err error
			if mark, err = keeper.RollupMark(ctx, start, end); err != nil {
				return nil, err
			}
		}
		var err error
		if g, err = h.collect(ctx, start, end); err != nil {
			return nil, err
		}
		if keeper != nil {
			doc, err := json.Marshal(g.kept())
			if err != nil {
				return nil, err
			}
			if err := keeper.SaveRollup(ctx, rollupKind, start, end, mark, doc); err != nil {
				return nil, err
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.days) >= maxCachedDays { // forget the oldest
		oldest := int64(math.MaxInt64)
		for k := range h.days {
			oldest = min(oldest, k)
		}
		delete(h.days, oldest)
	}
	h.days[key] = g
	return g, nil
}

func (g *agg) clone() *agg {
	c := *g
	c.buckets = slices.Clone(g.buckets)
	c.per = make(map[string]*acc, len(g.per))
	for id, a := range g.per {
		x := *a
		c.per[id] = &x
	}
	return &c
}

// live reads a piece of the current day [start, end) that begins at its
// midnight: the part up to closed extends the day so far, kept; the rest
// is read each time.
func (h *Health) live(ctx context.Context, start, end, closed time.Time) (*agg, error) {
	h.mu.Lock()
	so := h.today
	h.mu.Unlock()
	if !so.start.Equal(start) || so.end.After(end) {
		so = soFar{start: start, end: start}
	}
	upTo := closed
	if end.Before(upTo) {
		upTo = end
	}
	if upTo.After(so.end) {
		more, err := h.collect(ctx, so.end, upTo)
		if err != nil {
			return nil, err
		}
		if so.g != nil {
			c := so.g.clone()
			c.merge(more)
			more = c
		}
		so.g, so.end = more, upTo
		h.mu.Lock()
		if !h.today.start.Equal(so.start) || h.today.end.Before(so.end) {
			h.today = so
		}
		h.mu.Unlock()
	}
	if so.g == nil {
		return h.collect(ctx, start, end)
	}
	if !end.After(so.end) {
		return so.g, nil
	}
	rest, err := h.collect(ctx, so.end, end)
	if err != nil {
		return nil, err
	}
	c := so.g.clone()
	c.merge(rest)
	return c, nil
}

// firings reads [from, to): whole days that are over come from the cache
// or the store's kept days (a day's history does not change once it is
// over), the rest from the transitions.
func (h *Health) firings(ctx context.Context, from, to time.Time) (*agg, error) {
	start := from.Truncate(tenMin)
	total := &agg{start: start, end: start, per: map[string]*acc{}}
	if keeper, ok := h.events.(rules.DayRollups); ok {
		h.mu.Lock()
		if d := keeper.RollupsDropped(); d != h.drops { // a late transition: what memory holds may be out of date
			h.drops, h.days, h.today = d, map[int64]*agg{}, soFar{}
		}
		h.mu.Unlock()
	}
	var kept map[int64]rules.Rollup
	keptOnce := func() (map[int64]rules.Rollup, error) {
		if kept != nil {
			return kept, nil
		}
		var err error
		kept, err = h.events.(rules.DayRollups).Rollups(ctx, rollupKind, from, to)
		return kept, err
	}
	closed := h.now().Add(-time.Minute) // transitions are written as they happen
	err := rules.Days(from, to, closed, h.loc, func(t, end time.Time, whole bool) error {
		var g *agg
		var err error
		l := t.In(h.loc)
		switch {
		case whole:
			g, err = h.day(ctx, t, end, keptOnce)
		case t.Equal(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, h.loc)) && end.After(closed): // today
			g, err = h.live(ctx, t, end, closed)
		default:
			g, err = h.collect(ctx, t, end)
		}
		if err != nil {
			return err
		}
		total.merge(g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return total, nil
}

// Report computes the figures for [from, to).
func (h *Health) Report(ctx context.Context, from, to time.Time) (*Report, error) {
	meta := map[string]rules.Alarm{}
	for _, a := range h.alarms.Alarms(func(*rules.Alarm) bool { return true }) {
		meta[a.ID] = a
	}
	r := &Report{From: from, To: to, Operators: h.cfg.Operators}
	g, err := h.firings(ctx, from, to)
	if err != nil {
		return nil, err
	}
	start, buckets, per := g.start, g.buckets, g.per
	r.Alarms, r.ShelvedInPeriod, r.OutOfServiceInPer = g.alarms, g.shelved, g.oos
	ops := float64(h.cfg.Operators)

	// Per ten minutes, floods, per day.
	flood := h.cfg.FloodAlarms * h.cfg.Operators
	var inFlood time.Duration
	days := map[string]int{}
	var order []string
	for i, n := range buckets {
		t := start.Add(time.Duration(i) * tenMin)
		d := t.In(h.loc).Format(time.DateOnly)
		if _, ok := days[d]; !ok {
			order = append(order, d)
		}
		days[d] += n
		r.Max10Min = max(r.Max10Min, n)
		if n > flood {
			inFlood += tenMin
			if k := len(r.Floods) - 1; k >= 0 && r.Floods[k].End.Equal(t) {
				r.Floods[k].End, r.Floods[k].Alarms, r.Floods[k].Peak = t.Add(tenMin), r.Floods[k].Alarms+n, max(r.Floods[k].Peak, n)
			} else {
				r.Floods = append(r.Floods, Flood{Start: t, End: t.Add(tenMin), Alarms: n, Peak: n})
			}
		}
	}
	for _, d := range order {
		r.Days = append(r.Days, Day{Date: d, Alarms: days[d], PerOperator: float64(days[d]) / ops})
	}
	period := to.Sub(from)
	if period > 0 {
		r.PerDayPerOperator = atMost(float64(r.Alarms)/ops/(period.Hours()/24), 144)
		r.Per10MinPerOperator = atMost(float64(r.Alarms)/ops/(float64(period)/float64(tenMin)), 1)
		r.FloodTimeShare = atMost(min(float64(inFlood)/float64(period), 1), 0.01)
	}

	// Bad actors and chattering.
	counts := make([]AlarmCount, 0, len(per))
	for id, a := range per {
		m := meta[id]
		c := AlarmCount{Alarm: id, Rule: m.Rule, Asset: m.Asset, Name: m.Name, NameZH: m.NameZH, Priority: m.Priority, Category: m.Category, Count: a.count, Episodes: a.episodes}
		if r.Alarms > 0 {
			c.Share = float64(a.count) / float64(r.Alarms)
		}
		counts = append(counts, c)
	}
	slices.SortFunc(counts, func(a, b AlarmCount) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Alarm, b.Alarm)) })
	r.PerAlarm = counts
	r.BadActors = counts[:min(10, len(counts))]
	for _, c := range r.BadActors {
		r.BadActorShare += c.Share
	}
	r.Chattering = []AlarmCount{}
	for _, c := range counts {
		if c.Episodes > 0 {
			r.Chattering = append(r.Chattering, c)
		}
	}
	slices.SortStableFunc(r.Chattering, func(a, b AlarmCount) int { return cmp.Compare(b.Episodes, a.Episodes) })

	// Priorities against 80/15/5.
	byPrio := map[string]int{}
	for _, c := range counts {
		p := string(c.Priority)
		if p != string(rules.Critical) && p != string(rules.High) {
			p = "medium+low"
		}
		byPrio[p] += c.Count
	}
	for _, p := range []struct {
		name   string
		target float64
	}{{string(rules.Critical), 0.05}, {string(rules.High), 0.15}, {"medium+low", 0.80}} {
		s := PriorityShare{Priority: p.name, Alarms: byPrio[p.name], Target: p.target}
		if r.Alarms > 0 {
			s.Share = float64(s.Alarms) / float64(r.Alarms)
		}
		r.Priorities = append(r.Priorities, s)
	}

	// Standing, shelved and out of service: as the alarms are now.
	asOf := h.now()
	if to.Before(asOf) {
		asOf = to
	}
	r.StaleAsOf = asOf
	r.Stale = []Standing{}
	for _, a := range meta {
		switch {
		case a.State == rules.StateShelved:
			r.ShelvedNow++
		case a.State == rules.StateOutOfService:
			r.OutOfServiceNow++
		}
		since := a.ActiveSince
		if since.IsZero() {
			since = a.Since
		}
		if a.State.Active() && asOf.Sub(since) > h.cfg.StaleAfter {
			r.Stale = append(r.Stale, Standing{Alarm: a.ID, Name: a.Name, NameZH: a.NameZH, Priority: a.Priority, Since: since, Hours: asOf.Sub(since).Hours()})
		}
	}
	slices.SortFunc(r.Stale, func(a, b Standing) int { return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Alarm, b.Alarm)) })
	if r.Floods == nil {
		r.Floods = []Flood{}
	}
	return r, nil
}
