package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/replication/ha"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// siteServices are what a site applies the center's commands through and
// lists its current records from (a resync): the same services the API
// uses, so the same rules and refusals apply.
type siteServices struct {
	alarms interface {
		Ack(id, by, note string) (rules.Alarm, error)
		Alarms(filter func(*rules.Alarm) bool) []rules.Alarm
	}
	orders interface {
		Transition(ctx context.Context, id int64, to workorder.Status, by, note string) (*workorder.WorkOrder, error)
	}
	orderList interface {
		WorkOrders(ctx context.Context, f workorder.Filter) ([]*workorder.WorkOrder, error)
	}
	steps interface {
		Complete(ctx context.Context, id int64, step, by, note string) (*playbook.Incident, error)
		Incidents(ctx context.Context, openOnly bool) ([]*playbook.Incident, error)
	}
	site string
	// equipment is the site's equipment in good order, sent per day to
	// the center (nil: not sent), over assets, days in loc.
	equipment replication.GoodOrderSource
	assets    []collectors.Asset
	loc       *time.Location
}

// ApplyCommand implements replication.Applier: an error is the site's
// refusal, its text the reason the center shows.
func (s siteServices) ApplyCommand(ctx context.Context, c replication.Command) error {
	switch c.Action {
	case replication.ActionAckAlarm:
		_, err := s.alarms.Ack(c.Key, c.By, c.Note)
		return err
	case replication.ActionTransition:
		id, err := strconv.ParseInt(c.Key, 10, 64)
		if err != nil {
			return fmt.Errorf("no work order %q", c.Key)
		}
		to := workorder.Status(c.To)
		if (to == workorder.Cancelled || to == workorder.Closed) && !replication.RoleAllows(c.Role, replication.ActionAckAlarm) {
			return fmt.Errorf("moving a work order to %s needs an operator", to) // as on the site's own API
		}
		_, err = s.orders.Transition(ctx, id, to, c.By, c.Note)
		return err
	case replication.ActionCompleteStep:
		id, err := strconv.ParseInt(c.Key, 10, 64)
		if err != nil {
			return fmt.Errorf("no incident %q", c.Key)
		}
		_, err = s.steps.Complete(ctx, id, c.Step, c.By, c.Note)
		return err
	}
	return fmt.Errorf("unknown action %q", c.Action)
}

// Snapshot implements replication.Snapshotter: every alarm the engine
// holds, the open work orders and the 1,000 newest, the 500 newest
// incidents, each at its own last change.
func (s siteServices) Snapshot(ctx context.Context) ([]replication.Event, error) {
	var evs []event.Event
	for _, a := range s.alarms.Alarms(func(*rules.Alarm) bool { return true }) {
		evs = append(evs, event.Event{Type: event.EventAlarm, At: a.Since, Alarm: &a})
	}
	seen := map[int64]bool{}
	for _, f := range []workorder.Filter{{Open: true, Limit: 5000}, {Limit: 1000}} {
		ws, err := s.orderList.WorkOrders(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			if !seen[w.ID] {
				seen[w.ID] = true
				evs = append(evs, event.Event{Type: event.EventWorkOrder, At: lastChange(w), WorkOrder: w})
			}
		}
	}
	incs, err := s.steps.Incidents(ctx, false)
	if err != nil {
		return nil, err
	}
	for _, inc := range incs {
		at := inc.Started
		if !inc.Closed.IsZero() {
			at = inc.Closed
		}
		evs = append(evs, event.Event{Type: event.EventIncident, At: at, Incident: inc})
	}
	out := make([]replication.Event, 0, len(evs))
	for _, ev := range evs {
		e, ok, err := replication.Envelope(s.site, ev)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

func lastChange(w *workorder.WorkOrder) time.Time {
	at := w.Created
	for _, t := range []time.Time{w.AcceptedAt, w.OnSiteAt, w.ResolvedAt, w.CallbackAt, w.ClosedAt} {
		if t.After(at) {
			at = t
		}
	}
	return at
}

// sentToBus puts each message the site's alerting sent on the bus, for
// the replication recorder (kind notification).
type sentToBus struct{ bus *event.Bus }

func (s sentToBus) NotificationSent(a alerts.Attempt) {
	s.bus.Publish(event.Event{Type: event.EventSent, At: a.At, Sent: &event.Sent{ID: a.ID, At: a.At, Kind: a.Kind, Alerts: a.Alerts, Alarms: a.Alarms,
		Person: a.Person, Channel: a.Channel, Endpoint: a.Endpoint, Try: a.Try, Status: a.Result, Drill: a.Drill}})
}

// siteReplication is the site side (replication: section): the bus's
// changes into the outbox, the outbox to the broker, the center's
// commands applied once each.
// When the center runs in the same process, centerUp is closed once its
// consumer holds its subscription: events published before that would
// have no session at the broker to keep them (nil: start at once). Across
// machines the center's gap detection asks for what it missed.
func siteReplication(cfg *config.Config, store rulesStore, bus *event.Bus, svc siteServices, centerUp <-chan struct{}, log *slog.Logger) ([]service, func(), error) {
	rs, ok := store.(*sqlite.Rules)
	if !ok {
		return nil, nil, errors.New("replication: the site outbox needs an SQLite rules database")
	}
	outbox, err := sqlite.NewReplicationOutbox(rs.DB)
	if err != nil {
		return nil, nil, fmt.Errorf("replication: %w", err)
	}
	sub := bus.Subscribe(8192)
	rec := replication.NewRecorder(cfg.Site, outbox, sub.C, log)
	c := cfg.Replication
	svc.site = cfg.Site
	rec.Repair, rec.Dropped = svc, sub.Dropped // a crash's or a burst's lost changes: the current records at start and after a drop
	cmds := replication.NewSiteCommands(cfg.Site, outbox, outbox, svc, svc, rec.Kick, log, time.Now)
	opts, err := c.ClientOptions(paho.NewClientOptions().SetClientID(c.ClientID).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(10 * time.Second))
	if err != nil {
		return nil, nil, err
	}
	svcs := []service{
		{"replication-recorder", rec.Run},
		{"replication-publisher", func(ctx context.Context) error {
			if centerUp != nil {
				select { // the outbox keeps everything meanwhile
				case <-centerUp:
				case <-ctx.Done():
					return nil
				}
			}
			client := paho.NewClient(cmds.ClientOptions(ctx, opts))
			client.Connect() // retries in the background; the outbox keeps everything meanwhile
			defer client.Disconnect(250)
			pub := replication.NewPublisher(outbox, replication.PahoSender{C: client}, rec.Appended(), c.Every, log)
			pub.Site, pub.Heartbeat, pub.Retention = cfg.Site, c.Heartbeat, c.Retention
			return pub.Run(ctx)
		}},
	}
	if svc.equipment != nil { // 设备完好率 per day: the center sums it (docs/multisite.md, Cross-site KPIs)
		gr := replication.NewGoodOrderReporter(cfg.Site, svc.equipment, svc.assets, svc.loc, outbox, rec.Kick, log, time.Now)
		svcs = append(svcs, service{"replication-good-order", gr.Run})
	}
	return svcs, sub.Close, nil
}

// centerSide is the center (center: section), alone or as one instance
// of a group (center.ha:): the store, the commander, the service running
// it, up (closed once the broker granted the consumer's subscription)
// and what /healthz shows of it.
func centerSide(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (*postgres.Center, *replication.Commander, service, <-chan struct{}, func() any, error) {
	if cfg.Center.HA != nil { // one instance of a group (center_ha.go)
		return centerHA(ctx, cfg, reg, log)
	}
	return centerReplication(ctx, cfg, reg, log)
}

// centerReplication is the center side alone (center: section): every
// site's events into PostgreSQL, commands down (and replays of what is
// missing); the store also answers GET /api/v1/sites. With
// center.escalate it escalates overdue alarms too, holding the leader
// lock of group "center" like a group's leader (trivially: it is alone;
// the lock keeps a second center started by mistake on the same database
// from sending the same notifications).
func centerReplication(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (center *postgres.Center, cmd *replication.Commander, svc service, up <-chan struct{}, health func() any, err error) {
	center, err = postgres.OpenCenter(ctx, cfg.Center.Database)
	if err != nil {
		return nil, nil, service{}, nil, nil, err
	}
	c := cfg.Center
	consumer := replication.NewConsumer(center, log, time.Now)
	subscribed := make(chan struct{})
	var once sync.Once
	consumer.Subscribed = func() { once.Do(func() { close(subscribed) }) }
	opts, err := c.ClientOptions(paho.NewClientOptions().SetClientID(c.ClientID).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(10 * time.Second))
	if err != nil {
		center.Close()
		return nil, nil, service{}, nil, nil, err
	}
	client := paho.NewClient(consumer.ClientOptions(ctx, opts))
	cmd = replication.NewCommander(center, replication.PahoSender{C: client}, replication.CommanderConfig{GapWait: c.GapWait, Resend: c.Resend, TTL: c.CommandTTL}, log, time.Now)
	var esc func(ctx context.Context)
	if e := escalator(c, center, log); e != nil {
		if err := center.EnableHA(ctx); err != nil { // the notifications' tables
			center.Close()
			return nil, nil, service{}, nil, nil, fmt.Errorf("center: %w", err)
		}
		e.RegisterMetrics(reg)
		session := postgres.NewLockSession(c.Database, postgres.LockOptions{Name: c.ClientID, Log: log})
		leader := postgres.NewLeader(session, ha.LeaderLock(replication.DefaultGroup))
		health = func() any { return map[string]any{"instance": c.ClientID, "leader": leader.Leading()} }
		esc = func(ctx context.Context) {
			var wg sync.WaitGroup
			wg.Go(func() { _ = session.Run(ctx) })
			wg.Go(func() {
				_ = leader.Run(ctx, func(ctx context.Context, t postgres.Term) { e.Run(ctx, session, t) })
			})
			wg.Wait()
		}
	}
	run := func(ctx context.Context) error {
		client.Connect()
		defer client.Disconnect(250)
		if esc != nil {
			done := make(chan struct{})
			go func() { defer close(done); esc(ctx) }()
			defer func() { <-done }()
		}
		return cmd.Run(ctx)
	}
	return center, cmd, service{"center-consumer", run}, subscribed, health, nil
}
