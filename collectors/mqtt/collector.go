// Package mqtt collects readings published over MQTT (water-leak sensors,
// elevator controllers, lighting circuits) on github.com/eclipse/paho.mqtt.golang.
//
// Messages are received at QoS 1 in a persistent session and acknowledged
// (PUBACK) only once the points they carried are on the disk queue, so
// neither a broker disconnect nor a gateway crash loses a message: anything
// unacknowledged is redelivered by the broker.
package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
)

// Metrics are the MQTT series.
type Metrics struct {
	Messages      *prometheus.CounterVec // subscription, result (ok, bad_payload)
	Connected     prometheus.Gauge
	Lost          prometheus.Counter
	Unacked       prometheus.Gauge       // messages received, PUBACK not yet sent
	HeldBack      prometheus.Gauge       // of those, messages waiting because a flush failed
	Acked         prometheus.Counter     // QoS 1/2 messages acknowledged once their points were durable
	FlushFailures prometheus.Counter     // failed flushes (each is retried with backoff)
	Refused       *prometheus.CounterVec // subscription, reason (too_many_assets, too_many_fields)
}

// NewMetrics registers the MQTT series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_mqtt_messages_total",
			Help: "MQTT messages by subscription and result (ok, bad_payload)."}, []string{"subscription", "result"}),
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_mqtt_connected", Help: "1 while connected to the broker with every subscription in place."}),
		Lost:      prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_mqtt_connection_lost_total", Help: "Broker connections lost."}),
		Unacked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_mqtt_unacked_messages",
			Help: "QoS 1/2 messages received whose PUBACK waits for their points to be durable."}),
		HeldBack: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_mqtt_held_back_messages",
			Help: "Unacknowledged messages held back because flushing the queue failed; retried with backoff."}),
		Acked: prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_mqtt_acked_messages_total",
			Help: "QoS 1/2 messages acknowledged (PUBACK handed to the client) once their points were durable."}),
		FlushFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_mqtt_flush_failures_total",
			Help: "Failed queue flushes before a PUBACK; each is retried with backoff."}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_mqtt_points_refused_total",
			Help: "Points refused by subscription and reason (too_many_assets, too_many_fields)."}, []string{"subscription", "reason"}),
	}
	reg.MustRegister(m.Messages, m.Connected, m.Lost, m.Unacked, m.HeldBack, m.Acked, m.FlushFailures, m.Refused)
	return m
}

// OnlineField is the availability point published for availability topics.
const OnlineField = "online"

// maxTrackedAssets bounds the memory used to mark fields stale when a device
// goes offline.
const maxTrackedAssets = 100000

// Collector subscribes to the configured topics.
type Collector struct {
	cfg     Config
	factory Factory
	metrics *Metrics
	log     *slog.Logger
	limiter *collectors.RateLimitedLog

	sink    collectors.Sink
	flusher collectors.Flusher
	conn    Conn
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex                   // guards pending and seen
	pending []Message                    // QoS 1/2 messages whose points are published, in arrival order
	seen    map[string]map[string]string // asset → field → unit
	kick    chan struct{}                // a full ack batch is waiting
	known   func(asset string) bool      // declared assets, when the sink knows them
}

var _ collectors.Collector = (*Collector)(nil)

// New builds the collector; factory may be nil for paho. No I/O happens here.
func New(cfg Config, factory Factory, m *Metrics, log *slog.Logger) *Collector {
	if factory == nil {
		factory = PahoFactory
	}
	cfg.SetDefaults()
	return &Collector{cfg: cfg, factory: factory, metrics: m, log: log, limiter: collectors.NewRateLimitedLog(log, 10*time.Second),
		seen: map[string]map[string]string{}, kick: make(chan struct{}, 1)}
}

// Name implements collectors.Collector.
func (c *Collector) Name() string { return "mqtt" }

// Validate implements collectors.Collector.
func (c *Collector) Validate() error { return c.cfg.Validate() }

// Start registers the routes and connects in the background.
func (c *Collector) Start(ctx context.Context, sink collectors.Sink) error {
	if err := c.cfg.Validate(); err != nil { // compiles the topic patterns
		return err
	}
	c.sink = sink
	c.flusher, _ = sink.(collectors.Flusher)
	var known func(string) bool
	if ac, ok := sink.(collectors.AssetChecker); ok {
		known = ac.KnownAsset
	}
	c.known = known
	routes := map[string]Handler{}
	filters := map[string]byte{}
	for i := range c.cfg.Subs {
		s := &c.cfg.Subs[i]
		ok, bad := c.metrics.Messages.WithLabelValues(s.Topic, "ok"), c.metrics.Messages.WithLabelValues(s.Topic, "bad_payload")
		lim := newLimiter(s, known)
		routes[s.pat.filter] = chain(routes[s.pat.filter], func(m Message) bool { return c.handleData(s, lim, ok, bad, m) })
		filters[s.pat.filter] = byte(c.cfg.QoS)
	}
	for i := range c.cfg.Availability {
		a := &c.cfg.Availability[i]
		routes[a.pat.filter] = chain(routes[a.pat.filter], func(m Message) bool { return c.handleAvailability(a, m) })
		filters[a.pat.filter] = byte(c.cfg.QoS)
	}
	for f, h := range routes {
		h := h
		routes[f] = func(m Message) { h(m); c.queueAck(m) }
	}
	c.conn = c.factory(ConnOptions{
		Config: &c.cfg,
		Routes: routes,
		OnConnect: func() {
			// With a persistent session the broker remembers these, but a
			// broker that lost its state must learn them again.
			go func() {
				if err := c.conn.Subscribe(filters); err != nil {
					c.log.Error("subscribe failed", "err", err)
					return
				}
				c.metrics.Connected.Set(1)
				c.log.Info("connected and subscribed", "broker", c.cfg.Broker, "subscriptions", len(filters))
				if c.cfg.StatusTopic != "" {
					if err := c.conn.Publish(c.cfg.StatusTopic, 1, true, "online"); err != nil {
						c.log.Warn("status publish failed", "err", err)
					}
				}
			}()
		},
		OnLost: func(err error) {
			c.metrics.Connected.Set(0)
			c.metrics.Lost.Inc()
			c.log.Warn("MQTT connection lost; reconnecting with backoff", "err", err)
		},
	})
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go c.ackLoop(ctx)
	c.conn.Connect()
	return nil
}

// chain runs every handler registered for one filter; each ignores topics
// its own pattern does not match.
func chain(prev Handler, next func(Message) bool) Handler {
	return func(m Message) {
		if prev != nil {
			prev(m)
		}
		next(m)
	}
}

func (c *Collector) handleData(s *Subscription, lim *limiter, ok, bad prometheus.Counter, m Message) bool {
	// paho calls handlers one at a time (order matters), and sinks do not
	// keep the slice: one buffer per subscription serves every message.
	pts, err := ParseInto(s.scratch, s, m.Topic(), m.Payload(), time.Now())
	s.scratch = pts
	if errors.Is(err, ErrNoMatch) {
		return false
	}
	if err != nil {
		bad.Inc()
		payload := m.Payload()
		if len(payload) > 200 {
			payload = payload[:200]
		}
		c.limiter.Warn("bad:"+s.Topic, "bad MQTT payload", "topic", collectors.Truncate(m.Topic(), 200), "err", err, "payload", string(payload))
	} else {
		ok.Inc()
	}
	pts, refused := lim.admit(pts)
	s.scratch = pts
	for reason, n := range refused {
		c.metrics.Refused.WithLabelValues(s.Topic, reason).Add(float64(n))
		c.limiter.Warn("refused:"+reason+":"+s.Topic, "MQTT points refused: this subscription reached its bound on names taken from the topic",
			"subscription", s.Topic, "reason", reason, "topic", collectors.Truncate(m.Topic(), 200), "count", n,
			"max_assets", s.MaxAssets, "max_fields_per_asset", s.MaxFieldsPerAsset)
	}
	if len(pts) > 0 {
		if len(c.cfg.Availability) > 0 {
			c.remember(pts) // to mark them stale when their device goes offline
		}
		c.sink.Publish("mqtt", pts)
	}
	return true
}

func (c *Collector) remember(pts []collectors.Point) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pts {
		fields, ok := c.seen[p.Asset]
		if !ok {
			if len(c.seen) >= maxTrackedAssets || (c.known != nil && !c.known(p.Asset)) {
				continue
			}
			fields = map[string]string{}
			c.seen[p.Asset] = fields
		}
		if _, ok := fields[p.Field]; !ok && len(fields) >= collectors.DefaultMaxFields {
			continue // the state cache refuses more fields per asset anyway
		}
		fields[p.Field] = p.Unit
	}
}

func (c *Collector) handleAvailability(a *Availability, m Message) bool {
	caps, ok := a.pat.match(m.Topic(), nil)
	if !ok {
		return false
	}
	asset := expand(a.Asset, caps)
	now := time.Now()
	var online bool
	switch string(m.Payload()) {
	case a.Online:
		online = true
	case a.Offline:
	default:
		c.metrics.Messages.WithLabelValues(a.Topic, "bad_payload").Inc()
		c.limiter.Warn("avail:"+a.Topic, "availability payload is neither online nor offline", "topic", collectors.Truncate(m.Topic(), 200),
			"payload", collectors.Truncate(string(m.Payload()), 200), "online", a.Online, "offline", a.Offline)
		return true
	}
	c.metrics.Messages.WithLabelValues(a.Topic, "ok").Inc()
	pts := []collectors.Point{{Asset: asset, Field: OnlineField, Value: collectors.Bool(online), Quality: collectors.QualityGood, Time: now}}
	if !online {
		// The device said it is gone: its last values are no longer live.
		c.mu.Lock()
		for field, unit := range c.seen[asset] {
			pts = append(pts, collectors.Point{Asset: asset, Field: field, Unit: unit, Quality: collectors.QualityStale, Time: now})
		}
		c.mu.Unlock()
		c.log.Warn("device offline", "device", asset)
	}
	c.sink.Publish("mqtt", pts)
	return true
}

// queueAck holds a message's PUBACK until its points are durable. It never
// blocks: paho calls it in its router goroutine, and the ack loop does the
// flushing.
func (c *Collector) queueAck(m Message) {
	if c.flusher == nil || m.Qos() == 0 {
		m.Ack() // nothing to hold: no flusher, or QoS 0 has no PUBACK (a no-op)
		return
	}
	c.mu.Lock()
	c.pending = append(c.pending, m)
	n := len(c.pending)
	c.mu.Unlock()
	c.metrics.Unacked.Set(float64(n))
	if n >= c.cfg.AckBatch {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// flushAndAck makes every published point durable, then acknowledges the
// messages that carried them, in arrival order. On a failed flush the
// messages stay pending, unacknowledged, for the next attempt: abandoning
// them would leave them in the broker's in-flight window, which stops
// delivery once full, until a reconnect that nothing would force.
func (c *Collector) flushAndAck() error {
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	// Every message among the first n was queued after its points were
	// published, so this Flush covers them.
	if err := c.flusher.Flush(); err != nil {
		c.metrics.FlushFailures.Inc()
		c.metrics.HeldBack.Set(float64(n))
		return err
	}
	c.mu.Lock()
	batch := c.pending[:n:n]
	c.pending = append([]Message(nil), c.pending[n:]...)
	left := len(c.pending)
	c.mu.Unlock()
	for _, m := range batch {
		m.Ack()
	}
	c.metrics.Acked.Add(float64(len(batch)))
	c.metrics.Unacked.Set(float64(left))
	c.metrics.HeldBack.Set(0)
	return nil
}

// ackLoop acknowledges full batches as they fill and stragglers every
// ack interval; after a failed flush it retries with exponential backoff
// (ack_interval doubling up to flush_retry_max), acknowledging nothing until
// a flush succeeds.
func (c *Collector) ackLoop(ctx context.Context) {
	defer c.wg.Done()
	timer := time.NewTimer(c.cfg.AckInterval)
	defer timer.Stop()
	failures := 0
	for {
		kick := c.kick
		if failures > 0 {
			kick = nil // back off: a filling batch must not hammer a failing disk
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-kick:
		}
		err := c.flushAndAck()
		wait := c.cfg.AckInterval
		if err != nil {
			failures++
			wait = backoff(c.cfg.AckInterval, c.cfg.FlushRetryMax, failures)
			c.mu.Lock()
			held := len(c.pending)
			c.mu.Unlock()
			c.limiter.Error("flush", "points not durable; MQTT messages held unacknowledged, retrying",
				"err", err, "held_messages", held, "failures", failures, "retry_in", wait)
		} else if failures > 0 {
			c.log.Info("queue flush recovered; held MQTT messages acknowledged", "after_failures", failures)
			failures = 0
		}
		timer.Reset(wait) // since Go 1.23 no stale tick can follow a Reset
	}
}

// backoff is base·2^(failures-1), capped at max.
func backoff(base, max time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// PublishCommand sends a command (QoS 1, not retained) for a playbook action.
func (c *Collector) PublishCommand(topic, payload string) error {
	if c.conn == nil {
		return errors.New("mqtt: not started")
	}
	return c.conn.Publish(topic, 1, false, payload)
}

// Stop acknowledges what is durable and disconnects; safe after a partial Start.
func (c *Collector) Stop() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.conn != nil {
		if c.flusher != nil {
			if err := c.flushAndAck(); err != nil {
				// Unacknowledged: the broker redelivers them to the next session.
				c.log.Error("final flush failed; MQTT messages left unacknowledged for redelivery", "err", err)
			}
		}
		if c.cfg.StatusTopic != "" {
			_ = c.conn.Publish(c.cfg.StatusTopic, 1, true, "offline")
		}
		c.conn.Disconnect()
	}
	c.metrics.Connected.Set(0)
	return nil
}
