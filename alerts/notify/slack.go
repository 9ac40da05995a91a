package notify

import (
	"context"
	"encoding/json"

	"github.com/propgate/gateway/internal/delivery"
)

// SlackNotifier posts {"text"} to a Slack-compatible incoming webhook.
type SlackNotifier struct{ httpChannel }

var _ Notifier = (*SlackNotifier)(nil)

func newSlack(c ChannelConfig, _ Env) (Notifier, error) {
	h, err := newHTTPChannel(c)
	if err != nil {
		return nil, err
	}
	return &SlackNotifier{h}, nil
}

// Notify implements Notifier.
func (n *SlackNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	body, err := json.Marshal(map[string]string{"text": m.Text})
	if err != nil {
		return false, err
	}
	return n.post(ctx, delivery.Request{Body: body})
}
