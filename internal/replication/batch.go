package replication

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
)

// Received is one message as the center's consumer got it: the decoded
// envelope and the envelope as published (stored as it came).
type Received struct {
	Event Event
	Raw   []byte
}

// BatchCenter applies a burst of events at once: the effect of Center.Apply
// for each, in one transaction.
type BatchCenter interface {
	// ApplyBatch stores each (site, seq) once; applied[i] is false for a
	// duplicate of an earlier event (or of an earlier one in the burst).
	ApplyBatch(ctx context.Context, in []Received, received time.Time) (applied []bool, err error)
	// SiteStatus records a site's status message (as Center.SiteStatus).
	SiteStatus(ctx context.Context, st Status, received time.Time) error
}

// ConsumerMetrics count what the consumer did.
type ConsumerMetrics struct {
	Messages *prometheus.CounterVec // result: applied, duplicate, rejected
	Batch    prometheus.Histogram
	Lag      prometheus.Histogram
}

// NewConsumerMetrics registers the consumer's metrics on reg (nil: not
// registered).
func NewConsumerMetrics(reg prometheus.Registerer) *ConsumerMetrics {
	m := &ConsumerMetrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_center_messages_total",
			Help: "Replication messages the center handled, by result: applied, duplicate (already applied), rejected (not a valid envelope, a newer version, or not storable: counted, acknowledged, never applied)."}, []string{"result"}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_center_batch_size",
			Help: "Messages applied per transaction.", Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_center_lag_seconds",
			Help: "From a change at the site (the envelope's at) to its commit at the center.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600}}),
	}
	for _, r := range []string{"applied", "duplicate", "rejected"} {
		m.Messages.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Messages, m.Batch, m.Lag)
	}
	return m
}

// BatchConsumer applies every site's events at the center in bursts:
// paho's handler only queues each message (its acknowledgement held back:
// auto-ack off), and one loop applies whatever has queued in one
// transaction, then acknowledges each message of it — the PUBACK leaves
// after the commit, so a center killed mid-burst gets the burst again
// from its persistent session. Under load the bursts grow by themselves
// (everything that arrived during the previous commit); idle, each
// message is applied alone at once: no timer adds latency.
//
// The broker must let enough messages be in flight to one client for the
// bursts to grow (Mosquitto's max_inflight_messages, default 20:
// docs/multisite.md).
type BatchConsumer struct {
	center BatchCenter
	log    *slog.Logger
	now    func() time.Time
	in     []chan pending
	acks   inOrder

	// MaxBatch caps a burst; default 1000.
	MaxBatch int
	// Filter is what the consumer subscribes to: EventFilter (the
	// default), or SharedFilter(group) for one member of a group.
	Filter string
	// Metrics, when set, are updated.
	Metrics *ConsumerMetrics
	// Applied, when set, is told of each burst applied (tests, benchmarks;
	// called from each partition's loop, concurrently).
	Applied func(in []Received, applied []bool)
	// Subscribed, when set, is called each time the broker granted the
	// subscription.
	Subscribed func()
}

type pending struct {
	r   Received
	ack func()
}

// SharedFilter is the subscription of a group of center instances sharing
// the sites' events (MQTT shared subscription; Mosquitto 2 offers it to
// MQTT 3.1.1 clients too): each message goes to one member.
func SharedFilter(group string) string { return "$share/" + group + "/" + EventFilter }

// NewBatchConsumer applies to center in partitions transactions at a time
// (at least 1): each site's events go to one partition, by a hash of the
// site, so that a site's events are still applied in the order they came
// while several sites' bursts commit at once. Run must run for anything to
// apply.
func NewBatchConsumer(center BatchCenter, log *slog.Logger, now func() time.Time, partitions int) *BatchConsumer {
	c := &BatchConsumer{center: center, log: log, now: now, MaxBatch: 1000, Filter: EventFilter, acks: inOrder{waiting: map[uint64]func(){}}}
	for range max(1, partitions) {
		c.in = append(c.in, make(chan pending, 4096))
	}
	return c
}

func (c *BatchConsumer) partition(site string) chan pending {
	if len(c.in) == 1 {
		return c.in[0]
	}
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(site); i++ {
		h = (h ^ uint32(site[i])) * 16777619
	}
	return c.in[h%uint32(len(c.in))]
}

// Offer queues one message for the next burst; ack is called once it is
// applied (or rejected for good). It blocks while the queue is full (the
// broker then holds the rest) and returns false if ctx ends first.
func (c *BatchConsumer) Offer(ctx context.Context, topic string, payload []byte, ack func()) bool {
	if strings.HasSuffix(topic, "/status") {
		// A site's status (retained, not shared: every instance records
		// it): applied at once, acknowledged in turn.
		idx := c.acks.add(ack)
		err := applyStatus(ctx, c.center, c.log, c.now, topic, payload)
		c.acks.done(idx, err == nil)
		if err != nil {
			c.log.Warn("replication: status not recorded; the broker sends it again", "topic", topic, "err", err)
		}
		return err == nil
	}
	e, err := DecodeAt(topic, payload, c.now())
	if err == nil && !utf8.Valid(payload) {
		err = errors.New("replication: " + topic + ": the envelope is not valid UTF-8")
	}
	if err != nil {
		if errors.Is(err, ErrNewerVersion) {
			c.log.Warn("replication: envelope from a newer gateway parked", "topic", topic, "err", err)
		} else {
			c.log.Warn("replication: bad envelope", "topic", topic, "err", err)
		}
		c.count("rejected", 1)
		c.acks.done(c.acks.add(ack), true)
		return true
	}
	idx := c.acks.add(ack)
	select {
	case c.partition(e.Site) <- pending{r: Received{Event: e, Raw: payload}, ack: func() { c.acks.done(idx, true) }}:
		return true
	case <-ctx.Done():
		c.acks.done(idx, false) // not applied: the broker sends it again to the next session
		return false
	}
}

// inOrder sends acknowledgements in the order the messages arrived, even
// though the partitions apply them in parallel: with acknowledgements out
// of order and its in-flight window full, Mosquitto 2.0 was seen to deliver
// a session's queued messages out of order (a site's seq 7259 before 7258,
// with two partitions, never with one), which would break "in order" for a
// site catching up.
type inOrder struct {
	mu      sync.Mutex
	next    uint64            // the index the next message gets
	low     uint64            // the oldest message not yet acknowledged
	waiting map[uint64]func() // applied (or given up), waiting for older ones; nil func: nothing to send
	ready   map[uint64]bool
}

func (o *inOrder) add(ack func()) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := o.next
	o.next++
	o.waiting[i] = ack
	if o.ready == nil {
		o.ready = map[uint64]bool{}
	}
	return i
}

// done marks message i finished (send: acknowledge it) and acknowledges
// every finished message up to the first unfinished one.
func (o *inOrder) done(i uint64, send bool) {
	o.mu.Lock() // held while acknowledging, so that two callers cannot interleave
	defer o.mu.Unlock()
	if !send {
		o.waiting[i] = nil
	}
	o.ready[i] = true
	for o.ready[o.low] {
		if f := o.waiting[o.low]; f != nil {
			f()
		}
		delete(o.waiting, o.low)
		delete(o.ready, o.low)
		o.low++
	}
}

func (c *BatchConsumer) count(result string, n int) {
	if c.Metrics != nil && n > 0 {
		c.Metrics.Messages.WithLabelValues(result).Add(float64(n))
	}
}

// Run applies bursts until ctx ends, one loop per partition.
func (c *BatchConsumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, in := range c.in {
		wg.Go(func() { c.run(ctx, in) })
	}
	wg.Wait()
	return nil
}

func (c *BatchConsumer) run(ctx context.Context, in <-chan pending) {
	batch := make([]pending, 0, c.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case p := <-in:
			batch = append(batch, p)
		}
	fill:
		for len(batch) < c.MaxBatch {
			select {
			case p := <-in:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		c.apply(ctx, batch)
	}
}

// apply applies one burst, retrying while the store fails (the broker
// keeps everything not acknowledged); a burst that keeps failing is split
// so that one event the store refuses cannot hold up the others.
func (c *BatchConsumer) apply(ctx context.Context, batch []pending) {
	in := make([]Received, len(batch))
	for i, p := range batch {
		in[i] = p.r
	}
	for try := 0; ; try++ {
		applied, err := c.center.ApplyBatch(ctx, in, c.now())
		if err == nil {
			c.done(batch, in, applied)
			return
		}
		if ctx.Err() != nil {
			return // not acknowledged: redelivered to the next session
		}
		c.log.Error("replication: applying a burst failed", "events", len(batch), "try", try+1, "err", err)
		if len(batch) > 1 && try >= 1 {
			for i := range batch {
				c.apply(ctx, batch[i:i+1])
			}
			return
		}
		if len(batch) == 1 && try >= 4 {
			// The store answers others but not this one: give up loudly;
			// the site's seq has a hole the center's gap check sees.
			c.log.Error("replication: event not applied, given up", "site", in[0].Event.Site, "seq", in[0].Event.Seq, "err", err)
			c.count("rejected", 1)
			batch[0].ack()
			return
		}
		sleep(ctx, time.Duration(try+1)*200*time.Millisecond)
	}
}

func (c *BatchConsumer) done(batch []pending, in []Received, applied []bool) {
	now := c.now()
	n := 0
	for i, p := range batch {
		p.ack()
		if applied[i] {
			n++
			if c.Metrics != nil && !in[i].Event.At.IsZero() {
				c.Metrics.Lag.Observe(now.Sub(in[i].Event.At).Seconds())
			}
		}
	}
	if c.Metrics != nil {
		c.Metrics.Batch.Observe(float64(len(batch)))
	}
	c.count("applied", n)
	c.count("duplicate", len(batch)-n)
	if c.Applied != nil {
		c.Applied(in, applied)
	}
}

// Handler is the paho handler feeding the consumer (auto-ack must be off
// on the client: ClientOptions does it).
func (c *BatchConsumer) Handler(ctx context.Context) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		c.Offer(ctx, m.Topic(), m.Payload(), m.Ack)
	}
}

// ClientOptions makes opts a consumer's: a persistent session (clean
// session off; the caller sets a fixed ClientID), acknowledgements held
// until applied, and the subscription made again on every connection.
func (c *BatchConsumer) ClientOptions(ctx context.Context, opts *paho.ClientOptions) *paho.ClientOptions {
	h := c.Handler(ctx)
	return opts.SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).SetDefaultPublishHandler(h).
		SetOnConnectHandler(func(cl paho.Client) {
			go func() { // not from inside paho's connect callback
				// The sites' status is retained and not shared: each
				// instance subscribes to all of it.
				tok := cl.SubscribeMultiple(map[string]byte{c.Filter: 1, StatusFilter: 1}, h)
				select {
				case <-tok.Done():
				case <-ctx.Done():
					return
				}
				if err := tok.Error(); err != nil {
					c.log.Error("replication: subscribe failed", "filter", c.Filter, "err", err)
					return
				}
				if c.Subscribed != nil {
					c.Subscribed()
				}
			}()
		})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
