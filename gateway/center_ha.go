package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/replication/ha"
	"github.com/propgate/gateway/internal/store/postgres"
)

// centerHA is the center as one instance of a group (center.ha:,
// docs/multisite.md): its share of the events through a shared
// subscription, the singleton work (escalations, replays of missing
// events, command resends) while it leads. It replaces the single
// consumer of centerReplication. Commands the people at this instance
// give go out at once through a client of its own (client_id + "-commands",
// a clean session: it only publishes). up is closed the first time the
// broker granted its subscription; health is what /healthz shows of it.
func centerHA(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (center *postgres.Center, cmd *replication.Commander, svc service, up <-chan struct{}, health func() any, err error) {
	c := cfg.Center
	if _, err := c.ClientOptions(paho.NewClientOptions()); err != nil { // TLS files readable
		return nil, nil, service{}, nil, nil, fmt.Errorf("center: %w", err)
	}
	center, err = postgres.OpenCenter(ctx, c.Database)
	if err != nil {
		return nil, nil, service{}, nil, nil, err
	}
	if err := center.EnableHA(ctx); err != nil {
		center.Close()
		return nil, nil, service{}, nil, nil, fmt.Errorf("center: %w", err)
	}
	broker := func() *paho.ClientOptions {
		opts, _ := c.ClientOptions(paho.NewClientOptions()) // checked above
		return opts.SetMaxReconnectInterval(10 * time.Second)
	}
	cmdClient := paho.NewClient(broker().SetClientID(c.ClientID + "-commands").SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true))
	cmd = replication.NewCommander(center, replication.PahoSender{C: cmdClient}, replication.CommanderConfig{GapWait: c.GapWait, Resend: c.Resend, TTL: c.CommandTTL}, log, time.Now)

	consumer := replication.NewBatchConsumer(center, log, time.Now, 2) // two transactions at a time, each site in one
	consumer.Metrics = replication.NewConsumerMetrics(reg)
	subscribed := make(chan struct{})
	var once sync.Once
	consumer.Subscribed = func() { once.Do(func() { close(subscribed) }) }
	d := ha.Deps{Store: center, Database: c.Database, Consumer: consumer, Log: log, Broker: broker, Singleton: cmd.Run,
		Escalator: escalator(c, center, log)}
	in := ha.New(*c.HA, c.ClientID, d)
	in.RegisterMetrics(reg)
	run := func(ctx context.Context) error {
		cmdClient.Connect() // retries in the background
		defer cmdClient.Disconnect(250)
		return in.Run(ctx)
	}
	return center, cmd, service{"center-instance", run}, subscribed, func() any { return in.Health() }, nil
}

// escalator is center.escalate's work (nil when not configured), run by
// whoever leads.
func escalator(c *replication.CenterConfig, store ha.EscalationStore, log *slog.Logger) *ha.Escalator {
	e := c.Escalation()
	if e == nil {
		return nil
	}
	return ha.NewEscalator(*e, ha.EscalatorDeps{Store: store, Sites: c.Sites, By: c.ClientID, Log: log})
}
