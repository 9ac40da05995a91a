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
	endpoints  *prometheus.CounterVec
	queue      *prometheus.GaugeVec
	paused     *prometheus.GaugeVec
	flood      prometheus.Gauge
}

// NewMetrics registers the router's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_delivery_attempts_total", Help: "Alert delivery attempts by result (sent, will_retry, failed)."}, []string{"result"}),
		drops:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_messages_dropped_total", Help: "Alert messages never attempted, by reason (queue_full, shutdown, reload: their person was removed)."}, []string{"reason"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_reconciled_total", Help: "Alerts fixed by reconciliation: missed_activation (event dropped), policy, level, person (config changed), forgotten_ack (acknowledged without progress: paged again)."}, []string{"what"}),
		panics:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_routing_panics_total", Help: "Panics recovered in the router's event and tick handling."}, []string{"in"}),
		ticks:      prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_alert_ticks_total", Help: "Passes of escalation, grouping and reconciliation."}),
		endpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_alert_endpoint_messages_total",
			Help: "Messages per delivery endpoint (its configured name) by outcome: sent, merged (into a digest), held (waited for the budget), throttled (the platform's frequency-limit answer), fallback (went to the person's next contact), failed, dropped, cancelled (acknowledged before sent)."}, []string{"endpoint", "outcome"}),
		queue:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_alert_endpoint_queued", Help: "Messages waiting for the endpoint's budget."}, []string{"endpoint"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_alert_endpoint_throttled", Help: "1 while the endpoint is paused after a throttled answer."}, []string{"endpoint"}),
		flood:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_alert_flood", Help: "1 while the site is in an alarm flood (ISA-18.2: more than 10 alarms in 10 minutes)."}),
	}
	reg.MustRegister(m.deliveries, m.drops, m.reconciles, m.panics, m.ticks, m.endpoints, m.queue, m.paused, m.flood)
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

func (m *Metrics) endpoint(name, outcome string, n int) {
	if m != nil {
		m.endpoints.WithLabelValues(name, outcome).Add(float64(n))
	}
}

func (m *Metrics) queued(name string, n int, paused bool) {
	if m != nil {
		m.queue.WithLabelValues(name).Set(float64(n))
		v := 0.0
		if paused {
			v = 1
		}
		m.paused.WithLabelValues(name).Set(v)
	}
}

func (m *Metrics) flooding(on bool) {
	if m != nil {
		v := 0.0
		if on {
			v = 1
		}
		m.flood.Set(v)
	}
}
