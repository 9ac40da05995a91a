// Package guard keeps one failed pass of a background loop (a tick, a
// delivery) from taking the whole gateway down: the panic is recovered,
// logged with its stack, counted in gateway_panics_total{component}, and
// the loop goes on with its next pass.
package guard

import (
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Guard recovers panics in the passes it runs.
type Guard struct {
	panics *prometheus.CounterVec
	log    *slog.Logger
}

// New builds a guard; reg (may be nil) gets its counter.
func New(reg prometheus.Registerer, log *slog.Logger) *Guard {
	g := &Guard{log: log, panics: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_panics_total", Help: "Panics recovered in background loops, by component (each is a bug: see the log)."}, []string{"component"})}
	if reg != nil {
		reg.MustRegister(g.panics)
	}
	return g
}

// Do runs fn, recovering a panic; it reports whether fn completed. A nil
// Guard runs fn unguarded.
func (g *Guard) Do(component string, fn func()) (ok bool) {
	if g == nil {
		fn()
		return true
	}
	defer func() {
		if v := recover(); v != nil {
			g.panics.WithLabelValues(component).Inc()
			g.log.Error("recovered from a panic; the loop goes on", "component", component, "panic", v, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	fn()
	return true
}
