// Package sitegen is a site-traffic generator: it speaks the replication
// protocol (docs/multisite.md, version 1) for N simulated sites at once,
// so that one center can be driven at the load of a hundred compounds
// without a hundred gateways: valid envelopes, a gap-free seq per site,
// the kinds a site sends (alarm records changing, work orders moving,
// incidents), at a configurable rate; an outage at K sites at once (every
// asset's alarm, an incident, work orders, in one burst); and a WAN cut at
// M sites for a while, during which their changes queue (as a site's
// outbox and its bridge's queue hold them) and then catch up in order.
//
// Each site publishes under its own client id (site-<id>) at QoS 1 with a
// window of messages in flight, straight to the central broker: what the
// site's bridge would forward.
package sitegen

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/replication"
)

// Config is the traffic.
type Config struct {
	Sites  int     // how many sites; default 100
	Assets int     // assets per site; default 50
	Rate   float64 // changes per asset per second; default 1
	// Prefix makes site ids: <prefix>001…; default site-.
	Prefix string
	// Window is how many messages a site keeps in flight (QoS 1, not yet
	// acknowledged by the broker); default 100.
	Window int
	// Broker returns the options reaching the broker (address,
	// credentials); the generator sets the client id.
	Broker func() *paho.ClientOptions
	// Seed makes the traffic repeatable; default 1.
	Seed uint64
	Log  *slog.Logger
}

func (c *Config) defaults() {
	if c.Sites <= 0 {
		c.Sites = 100
	}
	if c.Assets <= 0 {
		c.Assets = 50
	}
	if c.Rate <= 0 {
		c.Rate = 1
	}
	if c.Prefix == "" {
		c.Prefix = "site-"
	}
	if c.Window <= 0 {
		c.Window = 100
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Generator drives the sites.
type Generator struct {
	cfg   Config
	sites []*site
}

// site is one simulated site: its records and its outbox.
type site struct {
	id     string
	assets int
	rnd    *rand.Rand

	mu      sync.Mutex
	seq     int64
	queue   []queued // generated, not yet acknowledged by the broker
	cut     bool     // WAN cut: nothing leaves
	wake    chan struct{}
	alarms  []alarm
	orders  int64
	open    []int64 // open work orders
	incs    int64
	inOpen  int64 // the open incident, 0 when none
	acked   atomic.Int64
	resends atomic.Int64
}

type queued struct {
	seq   int64
	topic string
	body  []byte
}

type alarm struct {
	state string
	prio  string
	since time.Time
	value float64
}

// New builds the generator; nothing connects until Run.
func New(cfg Config) *Generator {
	cfg.defaults()
	g := &Generator{cfg: cfg}
	for i := range cfg.Sites {
		s := &site{id: fmt.Sprintf("%s%03d", cfg.Prefix, i+1), assets: cfg.Assets, rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			wake: make(chan struct{}, 1), alarms: make([]alarm, cfg.Assets)}
		for a := range s.alarms {
			s.alarms[a] = alarm{state: "normal", prio: "high", value: 20 + float64(a%10)}
		}
		g.sites = append(g.sites, s)
	}
	return g
}

// Sites lists the site ids.
func (g *Generator) Sites() []string {
	out := make([]string, len(g.sites))
	for i, s := range g.sites {
		out[i] = s.id
	}
	return out
}

// Run makes and publishes the steady traffic until ctx ends: each site
// changes one field of one asset's record every 1/(Assets×Rate) seconds,
// the assets in turn.
func (g *Generator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	period := time.Duration(float64(time.Second) / (float64(g.cfg.Assets) * g.cfg.Rate))
	for i, s := range g.sites {
		c := paho.NewClient(g.cfg.Broker().SetClientID("site-" + s.id).SetCleanSession(false).
			SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(2 * time.Second))
		c.Connect()
		wg.Go(func() { g.publish(ctx, s, c); c.Disconnect(250) })
		wg.Go(func() {
			// Sites start spread over one period so that they do not tick
			// in step.
			sleep(ctx, time.Duration(int64(period)*int64(i)/int64(len(g.sites))))
			t := time.NewTicker(period)
			defer t.Stop()
			asset := 0
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					s.change(asset, now)
					asset = (asset + 1) % s.assets
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// Outage makes the given sites (indexes) lose power at once: every asset's
// alarm raised critical and unacknowledged, an incident opened, a work
// order per ten assets — in one burst per site.
func (g *Generator) Outage(sites []int, now time.Time) {
	for _, i := range sites {
		s := g.sites[i]
		s.mu.Lock()
		for a := range s.alarms {
			s.alarms[a] = alarm{state: "unacknowledged", prio: "critical", since: now, value: 0}
			s.emitAlarm(a, now, "state", "priority", "value")
		}
		s.incs++
		s.inOpen = s.incs
		s.emit(replication.KindIncident, fmt.Sprint(s.incs), now, map[string]any{"id": s.incs, "playbook": "power-outage", "status": "open", "started": now,
			"title_zh": "全小区停电", "steps": []map[string]any{{"role": "engineer", "status": "active"}}}, "status")
		for a := 0; a < s.assets; a += 10 {
			s.openOrder(a, "critical", now)
		}
		s.mu.Unlock()
		s.kick()
	}
}

// Cut cuts the WAN at the given sites: their changes queue.
func (g *Generator) Cut(sites []int) {
	for _, i := range sites {
		s := g.sites[i]
		s.mu.Lock()
		s.cut = true
		s.mu.Unlock()
	}
}

// Restore ends the cut: the queued changes go out in order.
func (g *Generator) Restore(sites []int) {
	for _, i := range sites {
		s := g.sites[i]
		s.mu.Lock()
		s.cut = false
		s.mu.Unlock()
		s.kick()
	}
}

// Stat is a site's progress.
type Stat struct {
	Site      string
	Generated int64 // the last seq made
	Acked     int64 // the broker acknowledged up to this seq
	Queued    int   // made, not acknowledged
	// Resends counts windows sent again after a failed publish (a lost
	// connection): the broker may then have some of them twice and, if
	// a message in the middle failed, out of order — as a real site's
	// bridge may after a reconnect.
	Resends int64
}

// Stats reports each site.
func (g *Generator) Stats() []Stat {
	out := make([]Stat, len(g.sites))
	for i, s := range g.sites {
		s.mu.Lock()
		out[i] = Stat{Site: s.id, Generated: s.seq, Acked: s.acked.Load(), Queued: len(s.queue), Resends: s.resends.Load()}
		s.mu.Unlock()
	}
	return out
}

// change is one steady change at asset a: mostly its reading (the
// alarm's value), sometimes a transition (raised, acknowledged, back to
// normal), sometimes a work order moving on.
func (s *site) change(a int, now time.Time) {
	s.mu.Lock()
	defer func() { s.mu.Unlock(); s.kick() }()
	al := &s.alarms[a]
	r := s.rnd.Float64()
	switch {
	case al.state == "unacknowledged" && r < 0.05:
		al.state = "acknowledged"
		s.emitAlarm(a, now, "state", "ack_by")
	case al.state == "acknowledged" && r < 0.05:
		al.state, al.prio, al.since = "normal", "high", now
		s.emitAlarm(a, now, "state")
	case al.state == "normal" && r < 0.001:
		al.state, al.since = "unacknowledged", now
		s.emitAlarm(a, now, "state")
	case r > 0.998:
		if len(s.open) > 0 && r > 0.999 {
			s.progressOrder(now)
		} else {
			s.openOrder(a, "high", now)
		}
	default:
		al.value += s.rnd.NormFloat64() * 0.1
		s.emitAlarm(a, now, "value")
	}
	if s.inOpen != 0 && al.state == "normal" && a == 0 {
		s.emit(replication.KindIncident, fmt.Sprint(s.inOpen), now, map[string]any{"id": s.inOpen, "playbook": "power-outage", "status": "closed", "started": now}, "status")
		s.inOpen = 0
	}
}

func (s *site) emitAlarm(a int, now time.Time, changed ...string) {
	al := s.alarms[a]
	id := fmt.Sprintf("power-fail:asset-%02d", a)
	if al.prio != "critical" {
		id = fmt.Sprintf("temp-high:asset-%02d", a)
	}
	s.emit(replication.KindAlarm, id, now, map[string]any{"id": id, "rule": "temp-high", "asset": fmt.Sprintf("asset-%02d", a),
		"name": "Supply temperature high", "name_zh": "供水温度高", "priority": al.prio, "state": al.state, "since": al.since,
		"value": fmt.Sprintf("%.1f", al.value), "active": al.state != "normal", "acked": al.state == "acknowledged"}, changed...)
}

func (s *site) openOrder(a int, prio string, now time.Time) {
	s.orders++
	s.open = append(s.open, s.orders)
	s.emit(replication.KindWorkOrder, fmt.Sprint(s.orders), now, map[string]any{"id": s.orders, "type": "fault", "category": "hvac",
		"asset": fmt.Sprintf("asset-%02d", a), "priority": prio, "description": "供水温度高，请检查", "status": "opened", "source": "rule",
		"created": now, "response_due": now.Add(30 * time.Minute)}, "status")
}

func (s *site) progressOrder(now time.Time) {
	id := s.open[0]
	s.open = s.open[1:]
	s.emit(replication.KindWorkOrder, fmt.Sprint(id), now, map[string]any{"id": id, "type": "fault", "category": "hvac", "priority": "high",
		"status": "resolved", "source": "rule", "resolved_at": now}, "status", "resolved_at")
}

// emit appends one envelope to the site's outbox (under s.mu).
func (s *site) emit(kind, key string, at time.Time, doc map[string]any, changed ...string) {
	s.seq++
	d, _ := json.Marshal(doc)
	b, _ := json.Marshal(replication.Event{V: replication.Version, Site: s.id, Seq: s.seq, Kind: kind, Key: key, At: at, Op: "upsert", Doc: d, Changed: changed})
	s.queue = append(s.queue, queued{seq: s.seq, topic: replication.EventTopic(s.id, kind), body: b})
}

func (s *site) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// publish sends the site's outbox in order, Window at a time, dropping
// what the broker acknowledged; a failure sends the same window again
// (the center drops the duplicates).
func (g *Generator) publish(ctx context.Context, s *site, c paho.Client) {
	for ctx.Err() == nil {
		s.mu.Lock()
		var batch []queued
		if !s.cut {
			batch = append(batch, s.queue[:min(len(s.queue), g.cfg.Window)]...)
		}
		s.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		toks := make([]paho.Token, len(batch))
		for i, q := range batch {
			toks[i] = c.Publish(q.topic, 1, false, q.body)
		}
		ok := true
		for _, t := range toks {
			select {
			case <-t.Done():
			case <-ctx.Done():
				return
			}
			if t.Error() != nil {
				ok = false
			}
		}
		if !ok {
			s.resends.Add(1)
			g.cfg.Log.Warn("sitegen: publish failed; sending again", "site", s.id)
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		s.mu.Lock()
		s.queue = s.queue[len(batch):]
		s.mu.Unlock()
		s.acked.Store(batch[len(batch)-1].seq)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
