package notify

import (
	"context"
	"encoding/json"

	"github.com/propgate/gateway/internal/delivery"
)

// WeComNotifier posts markdown to a 企业微信 group robot; the address (a
// robot user id) is mentioned.
type WeComNotifier struct{ httpChannel }

var _ Notifier = (*WeComNotifier)(nil)

func newWeCom(c ChannelConfig, _ Env) (Notifier, error) {
	h, err := newHTTPChannel(c)
	if err != nil {
		return nil, err
	}
	return &WeComNotifier{h}, nil
}

// Notify implements Notifier.
func (n *WeComNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	content := m.Text
	for _, a := range m.mentions() {
		content += "\n<@" + a + ">"
	}
	body, err := json.Marshal(map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": content}})
	if err != nil {
		return false, err
	}
	return n.post(ctx, delivery.Request{Body: body})
}
