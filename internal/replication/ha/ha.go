// Package ha runs one instance of a monitoring center made of several
// instances on one PostgreSQL (docs/multisite.md, high availability):
//
//   - Every instance consumes its share of the sites' events through an
//     MQTT shared subscription ($share/<group>/…), under its own client id
//     with a persistent session, and only while it holds its own slot lock
//     (a PostgreSQL advisory lock named after that client id).
//   - Applying is idempotent on (site, seq) and records only move forward
//     by seq, so the order in which instances apply does not matter.
//   - The group's leader (postgres.Leader) does the singleton work:
//     escalating overdue alarms, sending notifications (each recorded once
//     under its key, claimed through the leader's own lock connection), and
//     emptying the broker session of an instance that died: Mosquitto keeps
//     routing a dead member's share into its session, so the leader takes
//     its slot lock (proof it is gone), connects under its client id,
//     unsubscribes, applies what was queued and deletes the session.
package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/postgres"
)

// Store is what an instance needs of the center's database.
type Store interface {
	replication.BatchCenter
	RegisterInstance(ctx context.Context, group, clientID string, started, now time.Time) error
	Instances(ctx context.Context, group string) ([]replication.Instance, error)
	MarkDrained(ctx context.Context, clientID string, at time.Time) error
}

// Sender delivers one notification; an error means not delivered (it is
// tried again later).
type Sender interface {
	Send(ctx context.Context, n replication.Notification) error
}

// Deps are an instance's collaborators.
type Deps struct {
	Store    Store
	Database string // the center's postgres:// URL, for the lock connection
	// Broker returns the options reaching the central broker (address,
	// credentials, TLS); the instance sets the client id, the session and
	// the handlers.
	Broker func() *paho.ClientOptions
	// Escalator, when set, escalates alarms nobody acknowledged while
	// this instance leads (center.escalate).
	Escalator *Escalator
	Consumer  *replication.BatchConsumer // applies what this instance receives; Run by the instance
	// Singleton, when set, is more of the group's one-at-a-time work (the
	// center's replays of missing events and command resends): run while
	// this instance leads, its context ended with the term.
	Singleton func(ctx context.Context) error
	Log       *slog.Logger
	Now       func() time.Time
}

// Instance is one center instance of a group.
type Instance struct {
	cfg      replication.HAConfig
	clientID string
	d        Deps
	metrics  *Metrics // nil until RegisterMetrics
	session  *postgres.LockSession
	leader   *postgres.Leader

	consuming atomic.Bool
	draining  atomic.Int64
	mu        sync.Mutex
	lastError string
}

// Drain tuning: an emptied session is one that has delivered nothing for
// drainQuiet with nothing left unapplied.
const (
	drainQuiet   = 2 * time.Second
	drainTimeout = 2 * time.Minute
	claimBatch   = 20
	maxAttempts  = 10
)

// New builds an instance (nothing runs until Run). cfg has its defaults.
func New(cfg replication.HAConfig, clientID string, d Deps) *Instance {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := postgres.NewLockSession(d.Database, postgres.LockOptions{Name: clientID, Every: cfg.Every, Timeout: cfg.Timeout, Log: d.Log})
	in := &Instance{cfg: cfg, clientID: clientID, d: d, session: s, leader: postgres.NewLeader(s, LeaderLock(cfg.Group))}
	d.Consumer.Filter = replication.SharedFilter(cfg.Group)
	return in
}

// Leading says whether this instance is the group's leader now.
func (in *Instance) Leading() bool { return in.leader.Leading() }

// Consuming says whether this instance consumes its own share now.
func (in *Instance) Consuming() bool { return in.consuming.Load() }

// Health is what /healthz shows of the instance.
func (in *Instance) Health() map[string]any {
	h := map[string]any{"instance": in.clientID, "group": in.cfg.Group, "leader": in.Leading(), "consuming": in.Consuming()}
	if s := in.leader.Since(); !s.IsZero() {
		h["leader_since"] = s
	}
	return h
}

// Run runs the instance until ctx ends: the lock connection, the
// consumer, its own share of the events, and the leader's work when it
// leads.
func (in *Instance) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.session.Run(ctx) })
	wg.Go(func() { _ = in.d.Consumer.Run(ctx) })
	wg.Go(func() { in.consume(ctx) })
	wg.Go(func() { _ = in.leader.Run(ctx, in.lead) })
	wg.Wait()
	return nil
}

// LeaderLock names the leader lock of a group: the one a single center
// (no center.ha:) takes too, as group "center", so that it and a group
// of that name never both do the singleton work on one database.
func LeaderLock(group string) string { return "center-leader:" + group }

// slotKey is the lock an instance holds while it consumes under clientID.
func slotKey(clientID string) int64 { return postgres.LockKey("center-slot:" + clientID) }

// consume takes this instance's slot lock in each lock epoch and consumes
// its share while the epoch lasts: an instance that lost its database
// connection stops consuming before another instance can take its slot.
func (in *Instance) consume(ctx context.Context) {
	started := in.d.Now()
	for {
		ep, err := in.session.Up(ctx)
		if err != nil {
			return
		}
		if !in.takeSlot(ctx, ep) {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if err := in.d.Store.RegisterInstance(ctx, in.cfg.Group, in.clientID, started, in.d.Now()); err != nil {
			in.d.Log.Warn("center: registering this instance", "err", err)
		}
		opts := in.d.Consumer.ClientOptions(ctx, in.d.Broker()).SetClientID(in.clientID).
			SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(5 * time.Second)
		client := paho.NewClient(opts)
		client.Connect() // retries in the background
		in.consuming.Store(true)
		select {
		case <-ctx.Done():
		case <-ep.Done():
			in.d.Log.Warn("center: lock connection lost: not consuming until it is back", "instance", in.clientID)
		}
		in.consuming.Store(false)
		client.Disconnect(250) // the session stays at the broker: unacknowledged messages come again
		if ctx.Err() != nil {
			return
		}
	}
}

// takeSlot waits for this instance's slot lock in the epoch: held by
// another session, it is either the leader emptying this instance's old
// session (seconds) or another instance configured with the same
// client_id (said in the log).
func (in *Instance) takeSlot(ctx context.Context, ep *postgres.Epoch) bool {
	warned := time.Time{}
	for {
		ok, err := in.session.TryLock(ctx, ep, slotKey(in.clientID))
		if ok {
			return true
		}
		if err == nil && in.d.Now().Sub(warned) > 30*time.Second {
			warned = in.d.Now()
			in.d.Log.Warn("center: waiting for this instance's slot: another instance runs with the same client_id, or the leader is emptying this one's old session; fix: a different center.client_id on each instance",
				"client_id", in.clientID)
		}
		select {
		case <-ctx.Done():
			return false
		case <-ep.Done():
			return false
		case <-time.After(in.session.Every()):
		}
	}
}

// lead is the leader's work for one term.
func (in *Instance) lead(ctx context.Context, t postgres.Term) {
	var wg sync.WaitGroup
	wg.Go(func() { in.drainLoop(ctx, t) })
	if in.d.Singleton != nil {
		wg.Go(func() {
			if err := in.d.Singleton(ctx); err != nil && ctx.Err() == nil {
				in.d.Log.Error("center: the leader's work stopped", "err", err)
			}
		})
	}
	if in.d.Escalator != nil {
		wg.Go(func() { in.d.Escalator.Run(ctx, in.session, t) })
	}
	wg.Wait()
}

func every(ctx context.Context, d time.Duration, kick <-chan struct{}, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// drainLoop empties the broker session of each instance of the group
// that is gone (its slot lock is free) and was not emptied since it
// started.
func (in *Instance) drainLoop(ctx context.Context, t postgres.Term) {
	every(ctx, 2*in.cfg.Every, nil, func() {
		peers, err := in.d.Store.Instances(ctx, in.cfg.Group)
		if err != nil {
			if ctx.Err() == nil {
				in.d.Log.Warn("center: listing the group's instances", "err", err)
			}
			return
		}
		for _, p := range peers {
			if ctx.Err() != nil {
				return
			}
			if p.ClientID == in.clientID || (!p.Drained.IsZero() && !p.Drained.Before(p.Started)) {
				continue
			}
			in.drainIfGone(ctx, t.Epoch, p.ClientID)
		}
	})
}

func (in *Instance) drainIfGone(ctx context.Context, ep *postgres.Epoch, clientID string) {
	key := slotKey(clientID)
	ok, err := in.session.TryLock(ctx, ep, key)
	if err != nil || !ok {
		return // alive (or our own connection failed: the term ends)
	}
	defer func() {
		if err := in.session.Unlock(context.WithoutCancel(ctx), ep, key); err != nil && !errors.Is(err, postgres.ErrEpochOver) {
			in.d.Log.Warn("center: releasing a slot", "client_id", clientID, "err", err)
		}
	}()
	// An instance that has just lost its lock connection stops consuming
	// within Every+Timeout: only then is its session free to take.
	select {
	case <-ctx.Done():
		return
	case <-time.After(in.session.Grace()):
	}
	in.draining.Add(1)
	defer in.draining.Add(-1)
	start := in.d.Now()
	n, err := in.drain(ctx, clientID)
	if err != nil {
		in.metrics.drain("failed")
		if ctx.Err() == nil {
			in.d.Log.Warn("center: emptying a gone instance's session", "client_id", clientID, "err", err)
		}
		return
	}
	in.metrics.drain("done")
	if err := in.d.Store.MarkDrained(ctx, clientID, in.d.Now()); err != nil {
		in.d.Log.Warn("center: recording a drained session", "err", err)
	}
	in.d.Log.Info("center: emptied a gone instance's broker session", "client_id", clientID, "messages", n, "took", in.d.Now().Sub(start).Round(time.Millisecond))
}

// drain connects under a gone instance's client id (its persistent
// session: what the broker queued for it and what it had in flight),
// unsubscribes so that nothing more is routed there, applies everything
// the session delivers, and once it is quiet deletes the session (a
// clean-session connection). It returns how many messages it applied.
func (in *Instance) drain(ctx context.Context, clientID string) (int64, error) {
	var outstanding, got atomic.Int64
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	lost := make(chan struct{})
	var lostOnce sync.Once
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	handler := func(_ paho.Client, m paho.Message) {
		outstanding.Add(1)
		got.Add(1)
		last.Store(time.Now().UnixNano())
		if !in.d.Consumer.Offer(dctx, m.Topic(), m.Payload(), func() { m.Ack(); outstanding.Add(-1) }) {
			outstanding.Add(-1)
		}
	}
	opts := in.d.Broker().SetClientID(clientID).SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetDefaultPublishHandler(handler).
		SetConnectionLostHandler(func(paho.Client, error) { lostOnce.Do(func() { close(lost) }) })
	c := paho.NewClient(opts)
	if err := wait(ctx, c.Connect(), 10*time.Second); err != nil {
		return 0, fmt.Errorf("connecting as %s: %w", clientID, err)
	}
	defer c.Disconnect(100)
	if err := wait(ctx, c.Unsubscribe(replication.SharedFilter(in.cfg.Group)), 10*time.Second); err != nil {
		return got.Load(), fmt.Errorf("unsubscribing %s: %w", clientID, err)
	}
	deadline := time.Now().Add(drainTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return got.Load(), ctx.Err()
		case <-lost: // the instance came back and took its session over
			return got.Load(), errors.New("the session was taken over (the instance is back)")
		case <-tick.C:
		}
		if outstanding.Load() == 0 && time.Since(time.Unix(0, last.Load())) >= drainQuiet {
			break
		}
		if time.Now().After(deadline) {
			return got.Load(), fmt.Errorf("still delivering after %v", drainTimeout)
		}
	}
	c.Disconnect(250)
	// The session is empty: delete it, so that the broker stops counting
	// the gone instance in the shared subscription.
	clean := paho.NewClient(in.d.Broker().SetClientID(clientID).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false))
	if err := wait(ctx, clean.Connect(), 10*time.Second); err != nil {
		return got.Load(), fmt.Errorf("deleting %s's session: %w", clientID, err)
	}
	clean.Disconnect(100)
	return got.Load(), nil
}

func wait(ctx context.Context, tok paho.Token, d time.Duration) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return fmt.Errorf("no answer from the broker within %v", d)
	}
}

// Metrics are an instance's metrics.
type Metrics struct {
	drains *prometheus.CounterVec
}

// RegisterMetrics registers the instance's metrics on reg (before Run):
// leadership (gateway_center_leader, _terms_total), consuming, drains;
// and the escalator's, when there is one.
func (in *Instance) RegisterMetrics(reg prometheus.Registerer) {
	m := &Metrics{
		drains: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_center_drains_total",
			Help: "Broker sessions of gone center instances this instance emptied as leader, by result (done, failed)."}, []string{"result"}),
	}
	for _, r := range []string{"done", "failed"} {
		m.drains.WithLabelValues(r)
	}
	reg.MustRegister(m.drains,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_center_leader",
			Help: "1 while this center instance is its group's leader (holds the PostgreSQL advisory lock and does the singleton work), else 0."},
			func() float64 { return b2f(in.Leading()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_center_leader_terms_total",
			Help: "Times this center instance became its group's leader."}, func() float64 { return float64(in.leader.Terms()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_center_consuming",
			Help: "1 while this center instance consumes its share of the sites' events (holds its slot lock), else 0."},
			func() float64 { return b2f(in.Consuming()) }),
	)
	in.metrics = m
	if in.d.Escalator != nil {
		in.d.Escalator.RegisterMetrics(reg)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) drain(result string) {
	if m != nil {
		m.drains.WithLabelValues(result).Inc()
	}
}
