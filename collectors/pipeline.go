package collectors

import (
	"context"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Sink is what a collector hands its readings to (Telegraf's Accumulator).
// Publish must be cheap and must not retain pts after it returns.
type Sink interface {
	Publish(source string, pts []Point)
}

// Collector is one source of readings. The constructor has no side effects,
// Validate makes no network calls, Start launches the collector's goroutines
// and returns, and Stop is safe to call after a failed or partial Start.
type Collector interface {
	Name() string
	Validate() error
	Start(ctx context.Context, sink Sink) error
	Stop() error
}

// Output stores points durably. Enqueue may block to apply back-pressure but
// must not lose points it accepted. Flush returns once every point enqueued
// before it is durable (on the disk queue), so a collector may then
// acknowledge its source (MQTT PUBACK).
type Output interface {
	Enqueue(pts []Point) error
	Flush() error
}

// Processor sees every accepted point, synchronously, in Publish (the rules
// engine). It must be quick and must not retain pts. A processor that
// writes what points cause elsewhere (the engine's alarm transitions) also
// implements Flusher: Pipeline.Flush waits for it, so a source is
// acknowledged only once those writes are done too.
type Processor interface {
	Process(pts []Point)
}

// Metrics are the collectors' Prometheus series.
type Metrics struct {
	Collected *prometheus.CounterVec // points collected, by collector
	Dropped   *prometheus.CounterVec // points dropped, by stage and reason
}

// NewMetrics registers the collector series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Collected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_points_collected_total", Help: "Points accepted from collectors.",
		}, []string{"collector"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_points_dropped_total", Help: "Points dropped, by stage and reason.",
		}, []string{"stage", "reason"}),
	}
	reg.MustRegister(m.Collected, m.Dropped)
	return m
}

// Pipeline is the Sink the collectors share: it updates the state cache and
// hands points to the output.
type Pipeline struct {
	state      *State
	out        Output
	metrics    *Metrics
	log        *slog.Logger
	limiter    *RateLimitedLog
	counters   sync.Map // source → prometheus.Counter
	processors []Processor
}

// AddProcessor registers a processor; call before collectors start.
func (p *Pipeline) AddProcessor(proc Processor) { p.processors = append(p.processors, proc) }

// NewPipeline wires the state cache to an output.
func NewPipeline(state *State, out Output, m *Metrics, log *slog.Logger) *Pipeline {
	return &Pipeline{state: state, out: out, metrics: m, log: log, limiter: NewRateLimitedLog(log, time.Minute)}
}

// KnownAsset reports whether id is a declared asset: points for any other
// asset are dropped by Publish. Collectors use it (see AssetChecker) so
// invented asset ids do not use up their bounds.
func (p *Pipeline) KnownAsset(id string) bool {
	_, ok := p.state.Asset(id)
	return ok
}

// AssetChecker is implemented by sinks that only accept declared assets.
type AssetChecker interface{ KnownAsset(id string) bool }

var _ AssetChecker = (*Pipeline)(nil)

// State returns the live cache.
func (p *Pipeline) State() *State { return p.state }

// Publish implements Sink.
func (p *Pipeline) Publish(source string, pts []Point) {
	if len(pts) == 0 {
		return
	}
	accepted, rejected := p.state.Apply(pts)
	if len(rejected) > 0 {
		p.countRejected(source, pts, rejected)
		kept := make([]Point, 0, accepted)
		next := 0
		for i := range pts {
			if next < len(rejected) && rejected[next].Index == i {
				next++
				continue
			}
			kept = append(kept, pts[i])
		}
		pts = kept
	}
	if len(pts) == 0 {
		return
	}
	p.collected(source).Add(float64(len(pts)))
	for _, proc := range p.processors {
		proc.Process(pts)
	}
	if err := p.out.Enqueue(pts); err != nil {
		p.metrics.Dropped.WithLabelValues("output", "enqueue_failed").Add(float64(len(pts)))
		p.limiter.Error("enqueue", "points could not be queued for storage", "collector", source, "count", len(pts), "err", err)
	}
}

// countRejected counts and logs (rate-limited, per collector and reason)
// the points the state cache refused.
func (p *Pipeline) countRejected(source string, pts []Point, rejected []Rejected) {
	n := map[string]int{}
	first := map[string]Point{}
	for _, r := range rejected {
		if n[r.Reason] == 0 {
			first[r.Reason] = pts[r.Index]
		}
		n[r.Reason]++
	}
	for reason, count := range n {
		p.metrics.Dropped.WithLabelValues("ingest", reason).Add(float64(count))
		pt := first[reason]
		switch reason {
		case ReasonUnknownAsset:
			p.limiter.Warn(reason+":"+source, "points for undeclared assets dropped; declare the asset under assets:",
				"collector", source, "asset", pt.Asset, "count", count)
		default:
			p.limiter.Warn(reason+":"+source, "points dropped: the asset already holds the maximum number of fields",
				"collector", source, "asset", pt.Asset, "field", Truncate(pt.Field, 80), "count", count)
		}
	}
}

// collected returns the per-collector counter, cached (a label lookup hashes
// on every call, and Publish runs per message).
func (p *Pipeline) collected(source string) prometheus.Counter {
	if c, ok := p.counters.Load(source); ok {
		return c.(prometheus.Counter)
	}
	c := p.metrics.Collected.WithLabelValues(source)
	p.counters.Store(source, c)
	return c
}

// Flush makes every point published so far durable (see Output), and
// waits for what processors wrote because of them (see Processor).
func (p *Pipeline) Flush() error {
	for _, proc := range p.processors {
		if f, ok := proc.(Flusher); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
	return p.out.Flush()
}

// Flusher is implemented by sinks that can make published points durable.
type Flusher interface{ Flush() error }

// RunStaleSweep marks fields stale every interval until ctx ends. now is the
// clock (time.Now in production).
func (p *Pipeline) RunStaleSweep(ctx context.Context, every time.Duration, now func() time.Time) {
	Every(ctx, every, func() { p.SweepStale(now()) })
}

// Every calls fn every interval until ctx ends.
func Every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// SweepStale publishes stale-quality points for fields not refreshed in time.
func (p *Pipeline) SweepStale(now time.Time) int {
	pts := p.state.StalePoints(now)
	if len(pts) > 0 {
		p.Publish("stale-sweep", pts)
	}
	return len(pts)
}

// RateLimitedLog logs at most once per interval per key, counting what it
// suppressed, so a flood of bad payloads cannot flood the log.
type RateLimitedLog struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	supp  map[string]int
	now   func() time.Time
}

// NewRateLimitedLog builds a limiter.
func NewRateLimitedLog(log *slog.Logger, every time.Duration) *RateLimitedLog {
	return &RateLimitedLog{log: log, every: every, last: map[string]time.Time{}, supp: map[string]int{}, now: time.Now}
}

func (r *RateLimitedLog) allow(key string) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.every {
		r.supp[key]++
		return 0, false
	}
	n := r.supp[key]
	r.supp[key] = 0
	r.last[key] = now
	return n, true
}

// Warn logs at warn level unless key logged within the interval.
func (r *RateLimitedLog) Warn(key, msg string, args ...any) {
	if n, ok := r.allow(key); ok {
		r.log.Warn(msg, append(args, "suppressed_since_last", n)...)
	}
}

// Error logs at error level unless key logged within the interval.
func (r *RateLimitedLog) Error(key, msg string, args ...any) {
	if n, ok := r.allow(key); ok {
		r.log.Error(msg, append(args, "suppressed_since_last", n)...)
	}
}

// Truncate shortens outside input for a log line to at most n bytes (on a
// rune boundary), marking the cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
