package workorder

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/delivery"
)

// WebhookConfig posts every created or changed work order to a CMMS or
// property-management system.
type WebhookConfig struct {
	URL        string        `yaml:"url"`
	Secret     string        `yaml:"secret"` // signs the body: X-Signature: sha256=<hex HMAC>
	Timeout    time.Duration `yaml:"timeout"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// SetDefaults fills unset values.
func (c *WebhookConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
}

// Validate checks the webhook section.
func (c *WebhookConfig) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfgerr.Errorf("url", "%q is not an http(s) URL", c.URL)
	}
	return nil
}

// WebhookPayload is the JSON body of each delivery.
type WebhookPayload struct {
	Event     string       `json:"event"` // workorder.created, workorder.updated, workorder.transitioned
	WorkOrder WorkOrder    `json:"workorder"`
	Change    HistoryEntry `json:"change"`
}

// WebhookEvent names a change for the webhook payload.
func WebhookEvent(h HistoryEntry) string {
	switch {
	case h.From == "" && h.To == Opened:
		return "workorder.created"
	case h.To != "":
		return "workorder.transitioned"
	}
	return "workorder.updated"
}

// Webhook delivers the outbox in order. A delivery is retried with backoff
// until the receiver answers 2xx; it carries an Idempotency-Key (the work
// order's id and version) so a receiver that saw it already can ignore it.
// The outbox is in the store, so nothing is lost across a restart.
type Webhook struct {
	cfg    WebhookConfig
	store  Outbox
	client *http.Client
	log    *slog.Logger
	wake   chan struct{}
}

// NewWebhook builds the sender.
func NewWebhook(cfg WebhookConfig, store Outbox, log *slog.Logger) *Webhook {
	cfg.SetDefaults()
	return &Webhook{cfg: cfg, store: store, client: &http.Client{Timeout: cfg.Timeout}, log: log, wake: make(chan struct{}, 1)}
}

// Outbox is the webhook's queue, kept in the store: every work-order
// change is added to it in the same transaction as the change itself.
type Outbox interface {
	PendingOutbox(ctx context.Context, limit int) ([]OutboxItem, error)
	OutboxAttempt(ctx context.Context, id int64, result OutboxResult, errMsg string) error
}

// OutboxResult is what became of one delivery attempt.
type OutboxResult int

// Outbox results.
const (
	OutboxPending   OutboxResult = 0 // failed for now (5xx, 429, no answer): retried, nothing later goes first
	OutboxDelivered OutboxResult = 1
	OutboxRefused   OutboxResult = 2 // refused (4xx): retrying cannot help; kept with its error, the queue moves on
)

// OutboxItem is one webhook delivery waiting to be made.
type OutboxItem struct {
	ID       int64
	Key      string // idempotency key: work order id and version
	Payload  []byte
	Attempts int
}

var _ Observer = (*Webhook)(nil)

// WorkOrderChanged implements Observer: it wakes the sender.
func (w *Webhook) WorkOrderChanged(WorkOrder, HistoryEntry) { w.Notify() }

// Notify wakes the sender.
func (w *Webhook) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (w *Webhook) Run(ctx context.Context) error {
	first := min(time.Second, w.cfg.MaxBackoff)
	backoff := first
	for {
		items, err := w.store.PendingOutbox(ctx, 50)
		if err != nil && ctx.Err() == nil {
			w.log.Error("reading the webhook outbox failed", "err", err)
		}
		failed := false
		for _, it := range items {
			retry, err := w.deliver(ctx, it)
			switch {
			case err == nil:
				_ = w.store.OutboxAttempt(ctx, it.ID, OutboxDelivered, "")
				backoff = first
				continue
			case !retry:
				// A 4xx will not change by retrying: blocking every later
				// change behind it would silence the CMMS for good.
				_ = w.store.OutboxAttempt(ctx, it.ID, OutboxRefused, err.Error())
				w.log.Error("work-order webhook refused a delivery; it is kept in the outbox and the queue moves on", "key", it.Key, "err", err)
				continue
			}
			_ = w.store.OutboxAttempt(ctx, it.ID, OutboxPending, err.Error())
			w.log.Warn("work-order webhook failed; will retry", "key", it.Key, "attempt", it.Attempts+1, "retry_in", backoff, "err", err)
			failed = true
			break // keep order: nothing later goes before this one
		}
		wait := time.Minute
		if failed {
			wait, backoff = backoff, min(backoff*2, w.cfg.MaxBackoff)
		} else if len(items) == 50 {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
			if failed {
				// a new event does not cut the backoff short
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		case <-time.After(wait):
		}
	}
}

// deliver posts one item through the shared signed-POST helper: the body
// is signed (X-Signature, and X-Signature-V2 over a timestamp so receivers
// can refuse replays), errors never carry the URL's secrets.
func (w *Webhook) deliver(ctx context.Context, it OutboxItem) (retry bool, err error) {
	return delivery.Post(ctx, w.client, delivery.Request{URL: w.cfg.URL, Body: it.Payload, Secret: w.cfg.Secret,
		Headers: http.Header{"Idempotency-Key": {it.Key}}})
}
