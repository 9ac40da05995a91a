package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
// When the center runs in the same process, centerUp is closed once its
// consumer holds its subscription: events published before that would
// have no session at the broker to keep them (nil: start at once).
func siteReplication(cfg *config.Config, store rulesStore, bus *event.Bus, centerUp <-chan struct{}, log *slog.Logger) ([]service, func(), error) {
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
			if centerUp != nil {
				select { // the outbox keeps everything meanwhile
				case <-centerUp:
				case <-ctx.Done():
					return nil
				}
			}
			client.Connect() // retries in the background; the outbox keeps everything meanwhile
			defer client.Disconnect(250)
			return pub.Run(ctx)
		}},
	}, sub.Close, nil
}

// centerReplication is the center side (center: section): every site's
// events into PostgreSQL; the store also answers GET /api/v1/sites.
// up is closed the first time the broker granted the consumer's
// subscription.
func centerReplication(ctx context.Context, cfg *config.Config, log *slog.Logger) (center *postgres.Center, svc service, up <-chan struct{}, err error) {
	center, err = postgres.OpenCenter(ctx, cfg.Center.Database)
	if err != nil {
		return nil, service{}, nil, err
	}
	consumer := replication.NewConsumer(center, log, time.Now)
	subscribed := make(chan struct{})
	var once sync.Once
	consumer.Subscribed = func() { once.Do(func() { close(subscribed) }) }
	run := func(ctx context.Context) error {
		c := cfg.Center
		client := paho.NewClient(consumer.ClientOptions(ctx, paho.NewClientOptions().AddBroker(c.Broker).SetClientID(c.ClientID).
			SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(10*time.Second)))
		client.Connect()
		<-ctx.Done()
		client.Disconnect(250)
		return nil
	}
	return center, service{"center-consumer", run}, subscribed, nil
}
