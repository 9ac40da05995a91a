package alerts

import (
	"slices"
	"sort"
	"time"

	"golang.org/x/time/rate"

	"github.com/propgate/gateway/alerts/notify"
)

// endpoint is one outside receiver (a robot URL, an SMS account, an SMTP
// relay) with its budget: token buckets driven with the router's clock,
// shared by every channel, person and kind of message sending through it.
// All fields are guarded by the router's mu.
type endpoint struct {
	name    string
	typ     ChannelType
	grouped bool // a group chat: messages for several people may merge into one
	limit   notify.Limit
	minute  *rate.Limiter // nil: no per-minute limit
	second  *rate.Limiter // nil: no per-second limit

	queue []*message // waiting for budget, most urgent taken first; bounded by Deps.Queue

	pausedSince, pausedUntil time.Time // after a throttled answer
	pauseReason              string
	failingSince             time.Time // first of the current run of failures
	lastError                string
	lastErrorAt              time.Time
	counts                   map[string]int64
	diverted                 []Diversion // newest last, at most maxDiverted
}

// maxDiverted is how many diversions an endpoint remembers for the console.
const maxDiverted = 20

// Diversion is a message that went elsewhere while its endpoint was
// throttled or failing.
type Diversion struct {
	At      time.Time `json:"at"`
	Person  string    `json:"person,omitempty"`
	To      string    `json:"to"` // the channel it went by instead
	Kind    string    `json:"kind"`
	Alerts  []string  `json:"alerts,omitempty"`
	Because string    `json:"because"`
}

// bucket makes a token bucket that never lets more than n through in any
// window: burst b and a refill of n-b per window, so a full bucket plus a
// window's refill is n (a bucket of n refilled at n per window would let
// nearly 2n through in a sliding window).
func bucket(n int, window time.Duration) *rate.Limiter {
	if n <= 0 {
		return nil
	}
	b := max(1, n/10)
	refill := n - b
	if refill == 0 { // 1 per window: one token, refilled once per window
		refill = n
	}
	return rate.NewLimiter(rate.Every(window/time.Duration(refill)), b)
}

func newEndpoint(name string, c ChannelConfig) *endpoint {
	l := c.EffectiveLimit()
	return &endpoint{name: name, typ: c.Type, grouped: c.Grouped(), limit: l,
		minute: bucket(l.PerMinute, time.Minute), second: bucket(l.PerSecond, time.Second), counts: map[string]int64{}}
}

// tokens is how many messages the budget allows now.
func (e *endpoint) tokens(now time.Time) float64 {
	t := 1e9
	if e.minute != nil {
		t = min(t, e.minute.TokensAt(now))
	}
	if e.second != nil {
		t = min(t, e.second.TokensAt(now))
	}
	return t
}

// take spends one message of the budget, if there is one.
func (e *endpoint) take(now time.Time) bool {
	if e.paused(now) || e.tokens(now) < 1 {
		return false
	}
	if e.minute != nil {
		e.minute.AllowN(now, 1)
	}
	if e.second != nil {
		e.second.AllowN(now, 1)
	}
	return true
}

func (e *endpoint) paused(now time.Time) bool { return now.Before(e.pausedUntil) }

func (e *endpoint) divert(d Diversion) {
	e.diverted = append(e.diverted, d)
	if len(e.diverted) > maxDiverted {
		e.diverted = slices.Delete(e.diverted, 0, len(e.diverted)-maxDiverted)
	}
}

// EndpointStatus is one delivery endpoint as the API and the console show
// it. It never holds the endpoint's URL (robot keys live there).
type EndpointStatus struct {
	Name         string           `json:"name"`
	Type         ChannelType      `json:"type"`
	Channels     []string         `json:"channels"`
	PerMinute    int              `json:"per_minute,omitempty"`
	PerSecond    int              `json:"per_second,omitempty"`
	Penalty      time.Duration    `json:"penalty_ns,omitempty"`
	Budget       float64          `json:"budget"` // messages it may send now
	Queued       int              `json:"queued"`
	State        string           `json:"state"` // ok, throttled, failing
	Since        time.Time        `json:"since,omitempty"`
	PausedUntil  time.Time        `json:"paused_until,omitempty"`
	Reason       string           `json:"reason,omitempty"`
	LastError    string           `json:"last_error,omitempty"`
	LastErrorAt  time.Time        `json:"last_error_at,omitempty"`
	Counts       map[string]int64 `json:"counts"` // sent, merged, held, throttled, fallback, failed, dropped, cancelled
	Diverted     []Diversion      `json:"diverted"`
	FloodActive  bool             `json:"flood"` // the site is in an alarm flood (more than 10 alarms in 10 minutes)
	FloodAlarms  int              `json:"flood_alarms"`
	FloodSince   time.Time        `json:"flood_since,omitempty"`
	DigestReason string           `json:"digest_reason,omitempty"`
}

// ForViewer leaves out who was told what (names) and error texts: the wall
// token sees only that an endpoint is throttled and how much went elsewhere.
func (s EndpointStatus) ForViewer() EndpointStatus {
	s.LastError = ""
	if s.Reason != "" {
		s.Reason = "throttled" // the platform's own answer may carry the gateway's address
	}
	d := make([]Diversion, len(s.Diverted))
	for i, x := range s.Diverted {
		d[i] = Diversion{At: x.At, To: x.To, Kind: x.Kind, Because: x.Because}
	}
	s.Diverted = d
	return s
}

// Endpoints reports every delivery endpoint's budget and state, by name.
func (r *Router) Endpoints() []EndpointStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	chans := map[*endpoint][]string{}
	for ch, e := range r.endpointOf {
		chans[e] = append(chans[e], ch)
	}
	flood, n, since := r.flood(now)
	out := make([]EndpointStatus, 0, len(r.endpoints))
	for _, e := range r.endpoints {
		s := EndpointStatus{Name: e.name, Type: e.typ, Channels: chans[e], PerMinute: e.limit.PerMinute, PerSecond: e.limit.PerSecond,
			Penalty: e.limit.Penalty, Budget: min(e.tokens(now), 1e6), Queued: len(e.queue), State: "ok", LastError: e.lastError, LastErrorAt: e.lastErrorAt,
			Counts: map[string]int64{}, Diverted: slices.Clone(e.diverted), FloodActive: flood, FloodAlarms: n, FloodSince: since}
		if s.Diverted == nil {
			s.Diverted = []Diversion{}
		}
		sort.Strings(s.Channels)
		for _, k := range outcomes {
			s.Counts[k] = e.counts[k]
		}
		switch {
		case e.paused(now):
			s.State, s.Since, s.PausedUntil, s.Reason = "throttled", e.pausedSince, e.pausedUntil, e.pauseReason
		case !e.failingSince.IsZero():
			s.State, s.Since = "failing", e.failingSince
		}
		if flood {
			s.DigestReason = "flood"
		} else if len(e.queue) > 0 && float64(len(e.queue)) > e.tokens(now) {
			s.DigestReason = "budget"
		}
		out = append(out, s)
	}
	return out
}

// outcomes are the per-endpoint counters, in /metrics and the API.
var outcomes = []string{"sent", "merged", "held", "throttled", "fallback", "failed", "dropped", "cancelled"}

// buildEndpoints groups the channels by the outside endpoint they send
// through: channels with the same URL (or SMTP relay), or the same
// configured endpoint name, share one budget. Its name is the configured
// one, else the first channel's name.
func (r *Router) buildEndpoints() {
	names := make([]string, 0, len(r.cfg.Channels))
	for n := range r.cfg.Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	byKey := map[string]*endpoint{}
	for _, ch := range names {
		c := r.cfg.Channels[ch]
		key := c.EndpointKey()
		if c.Endpoint != "" {
			key = "name:" + c.Endpoint
		}
		e := byKey[key]
		if e == nil {
			name := c.Endpoint
			if name == "" {
				name = ch
			}
			e = newEndpoint(name, c)
			byKey[key] = e
			r.endpoints = append(r.endpoints, e)
		}
		r.endpointOf[ch] = e
	}
	sort.Slice(r.endpoints, func(i, j int) bool { return r.endpoints[i].name < r.endpoints[j].name })
}

// maxFloodCount bounds the activations remembered (the console's count).
const maxFloodCount = 1000

// noteActivation remembers an alarm activation for flood detection.
func (r *Router) noteActivation(now time.Time) {
	r.floods = append(r.floods, now)
	if n := max(r.cfg.Flood.Alarms+1, maxFloodCount); len(r.floods) > n {
		r.floods = slices.Delete(r.floods, 0, len(r.floods)-n)
	}
}

// flood says whether the site is in an alarm flood (ISA-18.2: more than
// flood.alarms — 10 — activations within flood.window — 10 minutes), how
// many alarms the window holds, and since when the flood runs.
func (r *Router) flood(now time.Time) (bool, int, time.Time) {
	n := 0
	for _, t := range r.floods {
		if now.Sub(t) < r.cfg.Flood.Window {
			n++
		}
	}
	if n > r.cfg.Flood.Alarms {
		return true, n, r.floods[len(r.floods)-n]
	}
	return false, n, time.Time{}
}

// wait is how long until the budget allows one more message (0: now).
func (e *endpoint) wait(now time.Time) time.Duration {
	var d time.Duration
	for _, l := range []*rate.Limiter{e.minute, e.second} {
		if l == nil {
			continue
		}
		if t := l.TokensAt(now); t < 1 {
			d = max(d, time.Duration((1-t)/float64(l.Limit())*float64(time.Second))+time.Millisecond)
		}
	}
	return d
}

// Dispatch sends what the endpoints' budgets allow now.
func (r *Router) Dispatch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dispatch(r.now())
}

// nextDue is when a waiting message may go next (a token, a pause's end),
// at most a tick away; messages waiting only for a free worker are sent
// when a worker finishes.
func (r *Router) nextDue() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	best := r.d.Tick
	for _, e := range r.endpoints {
		if len(e.queue) == 0 {
			continue
		}
		d := e.wait(now)
		if e.paused(now) {
			d = e.pausedUntil.Sub(now)
		}
		if d > 0 {
			best = min(best, d)
		}
	}
	return max(best, 20*time.Millisecond)
}
