package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules/event"
)

// siteReplication is the site side (replication: section): the bus's
// changes into the outbox, the outbox to the broker.
func siteReplication(cfg *config.Config, store rulesStore, bus *event.Bus, log *slog.Logger) ([]service, func(), error) {
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
	client := paho.NewClient(paho.NewClientOptions().AddBroker(c.Broker).SetClientID(c.ClientID).SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(10 * time.Second))
	pub := replication.NewPublisher(outbox, replication.PahoSender{C: client}, rec.Appended(), c.Every, log)
	return []service{
		{"replication-recorder", rec.Run},
		{"replication-publisher", func(ctx context.Context) error {
			client.Connect() // retries in the background; the outbox keeps everything meanwhile
			defer client.Disconnect(250)
			return pub.Run(ctx)
		}},
	}, sub.Close, nil
}

// centerReplication is the center side (center: section): every site's
// events into PostgreSQL; the store also answers GET /api/v1/sites.
func centerReplication(ctx context.Context, cfg *config.Config, log *slog.Logger) (*postgres.Center, service, error) {
	center, err := postgres.OpenCenter(ctx, cfg.Center.Database)
	if err != nil {
		return nil, service{}, err
	}
	consumer := replication.NewConsumer(center, log, time.Now)
	run := func(ctx context.Context) error {
		c := cfg.Center
		client := paho.NewClient(consumer.ClientOptions(ctx, paho.NewClientOptions().AddBroker(c.Broker).SetClientID(c.ClientID).
			SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(10*time.Second)))
		client.Connect()
		<-ctx.Done()
		client.Disconnect(250)
		return nil
	}
	return center, service{"center-consumer", run}, nil
}
