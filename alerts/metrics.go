package alerts

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the router does and, above all, what it drops.
// A nil *Metrics counts nothing.
type Metrics struct {
	deliveries *prometheus.CounterVec
	drops      *prometheus.CounterVec
	reconciles *prometheus.CounterVec
	panics     *prometheus.CounterVec
	ticks      prometheus.Counter
}

// NewMetrics registers the router's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_delivery_attempts_total", Help: "Alert delivery attempts by result (sent, will_retry, failed)."}, []string{"result"}),
		drops:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_messages_dropped_total", Help: "Alert messages never attempted, by reason (queue_full, shutdown)."}, []string{"reason"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_reconciled_total", Help: "Alerts fixed by reconciliation: missed_activation (event dropped), policy, level, person (config changed)."}, []string{"what"}),
		panics:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_routing_panics_total", Help: "Panics recovered in the router's event and tick handling."}, []string{"in"}),
		ticks:      prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_alert_ticks_total", Help: "Passes of escalation, grouping and reconciliation."}),
	}
	reg.MustRegister(m.deliveries, m.drops, m.reconciles, m.panics, m.ticks)
	return m
}

func (m *Metrics) delivered(result string) {
	if m != nil {
		m.deliveries.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) dropped(reason string, n int) {
	if m != nil {
		m.drops.WithLabelValues(reason).Add(float64(n))
	}
}

func (m *Metrics) reconciled(what string) {
	if m != nil {
		m.reconciles.WithLabelValues(what).Inc()
	}
}

func (m *Metrics) panicked(in string) {
	if m != nil {
		m.panics.WithLabelValues(in).Inc()
	}
}

func (m *Metrics) ticked() {
	if m != nil {
		m.ticks.Inc()
	}
}
