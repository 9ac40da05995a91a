package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// PahoSender is a Sender on a connected paho client.
type PahoSender struct{ C paho.Client }

// PublishQoS1 implements Sender.
func (s PahoSender) PublishQoS1(ctx context.Context, topic string, payload []byte) error {
	tok := s.C.Publish(topic, 1, false, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PublishRetained implements RetainedSender.
func (s PahoSender) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	tok := s.C.Publish(topic, 1, true, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Consumer applies every site's events at the center. Its session is
// persistent (clean session off, a fixed client id): while it is away the
// broker keeps its QoS 1 messages. A message is acknowledged after its
// transaction committed (the handler returns then), so a consumer killed
// mid-message gets it again.
type Consumer struct {
	center  Center
	log     *slog.Logger
	now     func() time.Time
	Applied func(Event, bool) // optional: told of each message handled (tests, metrics)
	// Subscribed, when set, is called each time the broker granted the
	// subscription (on every connection).
	Subscribed func()
}

// NewConsumer applies events to center.
func NewConsumer(center Center, log *slog.Logger, now func() time.Time) *Consumer {
	return &Consumer{center: center, log: log, now: now}
}

// Handle applies one message (topic, payload); errors are logged and the
// message is still acknowledged only when it can never apply (bad or newer
// envelope, counted in the log); a store error returns it for redelivery.
func (c *Consumer) Handle(ctx context.Context, topic string, payload []byte) error {
	if strings.HasSuffix(topic, "/status") {
		return c.status(ctx, topic, payload)
	}
	e, err := DecodeAt(topic, payload, c.now())
	if err != nil {
		if errors.Is(err, ErrNewerVersion) {
			c.log.Warn("replication: envelope from a newer gateway parked", "topic", topic, "err", err)
		} else {
			c.log.Warn("replication: bad envelope", "topic", topic, "err", err)
		}
		return nil
	}
	applied, err := c.center.Apply(ctx, e, c.now())
	if err != nil {
		return fmt.Errorf("replication: applying %s seq %d: %w", e.Site, e.Seq, err)
	}
	if c.Applied != nil {
		c.Applied(e, applied)
	}
	return nil
}

// status records a site's status: online with its head seq, or its last
// will (offline). The topic's site is the one recorded, whatever the
// payload says.
func (c *Consumer) status(ctx context.Context, topic string, payload []byte) error {
	return applyStatus(ctx, c.center, c.log, c.now, topic, payload)
}

// applyStatus records a site's status message; a malformed one is logged
// and dropped (nil).
func applyStatus(ctx context.Context, center interface {
	SiteStatus(ctx context.Context, st Status, received time.Time) error
}, log *slog.Logger, now func() time.Time, topic string, payload []byte) error {
	site, ok := SiteOfTopic(topic)
	var st Status
	if err := json.Unmarshal(payload, &st); !ok || err != nil || (st.Site != "" && st.Site != site) || len(payload) > MaxEnvelope {
		log.Warn("replication: bad status", "topic", topic, "err", err)
		return nil
	}
	if err := CheckEpoch(st.Epoch, now()); err != nil {
		log.Warn("replication: bad status", "topic", topic, "err", err)
		return nil
	}
	st.Site = site
	if err := center.SiteStatus(ctx, st, now()); err != nil {
		return fmt.Errorf("replication: status of %s: %w", site, err)
	}
	return nil
}

// ClientOptions makes opts a consumer's: a persistent session (clean
// session off; the caller sets a fixed ClientID) and the subscription made
// again on every (re)connection, since a broker that restarted without
// persistence has forgotten it.
func (c *Consumer) ClientOptions(ctx context.Context, opts *paho.ClientOptions) *paho.ClientOptions {
	return subscribing(ctx, opts, map[string]byte{EventFilter: 1, StatusFilter: 1}, c.Handle, c.log, func() {
		if c.Subscribed != nil {
			c.Subscribed()
		}
	})
}

// Subscribe subscribes the consumer on a connected client; it returns
// when the broker granted the subscription.
func (c *Consumer) Subscribe(ctx context.Context, client paho.Client) error {
	return subscribe(ctx, client, map[string]byte{EventFilter: 1, StatusFilter: 1}, c.Handle, c.log)
}

// ClientOptions makes opts the site's: a persistent session subscribed
// to the site's command topic on every connection, and a last will saying
// offline on the status topic (retained).
func (s *SiteCommands) ClientOptions(ctx context.Context, opts *paho.ClientOptions) *paho.ClientOptions {
	will, _ := json.Marshal(Status{V: Version, Site: s.site, State: "offline"})
	opts.SetBinaryWill(StatusTopic(s.site), will, 1, true)
	return subscribing(ctx, opts, map[string]byte{CommandTopic(s.site): 1}, s.Handle, s.logger, nil)
}

type handleFunc func(ctx context.Context, topic string, payload []byte) error

// subscribing sets a persistent session subscribing filters on every
// (re)connection; messages the broker kept in the session may arrive
// before the subscription is made again: the default handler takes them.
func subscribing(ctx context.Context, opts *paho.ClientOptions, filters map[string]byte, h handleFunc, log *slog.Logger, subscribed func()) *paho.ClientOptions {
	return opts.SetCleanSession(false).SetDefaultPublishHandler(handler(ctx, h, log)).SetOnConnectHandler(func(cl paho.Client) {
		go func() { // not from inside paho's connect callback: Subscribe waits for its answer
			if err := subscribe(ctx, cl, filters, h, log); err != nil {
				if ctx.Err() == nil {
					log.Error("replication: subscribe failed", "err", err)
				}
				return
			}
			if subscribed != nil {
				subscribed()
			}
		}()
	})
}

func subscribe(ctx context.Context, client paho.Client, filters map[string]byte, h handleFunc, log *slog.Logger) error {
	tok := client.SubscribeMultiple(filters, handler(ctx, h, log))
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func handler(ctx context.Context, h handleFunc, log *slog.Logger) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		// Redelivery of a failed apply needs the broker: paho acknowledges
		// when the handler returns, so retry here, bounded, then give up
		// loudly (the center's gap detection asks the site to replay).
		for try := 0; try < 5; try++ {
			if err := h(ctx, m.Topic(), m.Payload()); err == nil || ctx.Err() != nil {
				return
			} else {
				log.Error("replication: apply failed", "try", try+1, "err", err)
			}
			time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
		}
	}
}
