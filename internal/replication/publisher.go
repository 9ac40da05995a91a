package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Sender publishes one message at QoS 1 and returns once the broker has
// acknowledged it (PUBACK) or with an error.
type Sender interface {
	PublishQoS1(ctx context.Context, topic string, payload []byte) error
}

// Publisher sends the outbox in seq order; an event is marked sent only
// after the broker acknowledged it, so a restart or a broker outage resends
// from the first unacknowledged event (the center drops the duplicates).
type Publisher struct {
	outbox Outbox
	send   Sender
	kick   <-chan struct{}
	every  time.Duration
	log    *slog.Logger
}

// NewPublisher publishes from outbox through send, looking again when
// kicked or every interval.
func NewPublisher(outbox Outbox, send Sender, kick <-chan struct{}, every time.Duration, log *slog.Logger) *Publisher {
	return &Publisher{outbox: outbox, send: send, kick: kick, every: every, log: log}
}

// Flush sends every unsent event, in order, stopping at the first failure.
func (p *Publisher) Flush(ctx context.Context) (int, error) {
	sent := 0
	for {
		batch, err := p.outbox.Unsent(ctx, 100)
		if err != nil {
			return sent, err
		}
		if len(batch) == 0 {
			return sent, nil
		}
		for _, e := range batch {
			b, err := json.Marshal(e)
			if err != nil {
				return sent, err
			}
			if err := p.send.PublishQoS1(ctx, EventTopic(e.Site, e.Kind), b); err != nil {
				return sent, fmt.Errorf("replication: publishing seq %d: %w", e.Seq, err)
			}
			if err := p.outbox.MarkSent(ctx, e.Seq); err != nil {
				return sent, err
			}
			sent++
		}
	}
}

// Run flushes when kicked and every interval until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		if _, err := p.Flush(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("replication: will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-t.C:
		}
	}
}
