package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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
// subscription, the singleton work while it leads. It replaces the single
// consumer of centerReplication. up is closed the first time the broker
// granted its subscription; health is what /healthz shows of it.
func centerHA(ctx context.Context, cfg *config.Config, center *postgres.Center, reg prometheus.Registerer, log *slog.Logger) (svc service, up <-chan struct{}, health func() any, err error) {
	if err := center.EnableHA(ctx); err != nil {
		return service{}, nil, nil, fmt.Errorf("center: %w", err)
	}
	c := cfg.Center
	consumer := replication.NewBatchConsumer(center, log, time.Now, 2) // two transactions at a time, each site in one
	consumer.Metrics = replication.NewConsumerMetrics(reg)
	subscribed := make(chan struct{})
	var once sync.Once
	consumer.Subscribed = func() { once.Do(func() { close(subscribed) }) }
	d := ha.Deps{Store: center, Database: c.Database, Consumer: consumer, Log: log,
		Broker: func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(c.Broker).SetMaxReconnectInterval(10 * time.Second)
		}}
	if e := c.HA.Escalate; e != nil {
		d.Sender = ha.Webhook{URL: e.Webhook, Client: &http.Client{Timeout: e.SendTimeout}}
	}
	in := ha.New(*c.HA, c.ClientID, d)
	in.RegisterMetrics(reg)
	return service{"center-instance", in.Run}, subscribed, func() any { return in.Health() }, nil
}
