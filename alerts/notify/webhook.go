package notify

import (
	"context"
	"encoding/json"

	"github.com/propgate/gateway/internal/delivery"
)

// WebhookNotifier posts generic JSON ({"to", "address", "subject", "text",
// "alerts"}), signed with the channel's secret when it has one.
type WebhookNotifier struct {
	httpChannel
	secret string
	env    Env
}

var _ Notifier = (*WebhookNotifier)(nil)

func newWebhook(c ChannelConfig, env Env) (Notifier, error) {
	h, err := newHTTPChannel(c)
	if err != nil {
		return nil, err
	}
	return &WebhookNotifier{httpChannel: h, secret: c.Secret, env: env}, nil
}

// Notify implements Notifier.
func (n *WebhookNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	body, err := json.Marshal(map[string]any{"to": m.To, "address": m.Address, "subject": m.Subject, "text": m.Text, "alerts": m.Alerts})
	if err != nil {
		return false, err
	}
	return n.post(ctx, delivery.Request{Body: body, Secret: n.secret, Now: n.env.Now})
}
