package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/propgate/gateway/internal/delivery"
)

// FeishuNotifier posts text to a 飞书 / Lark group robot, signed in the
// body when the robot has a secret.
type FeishuNotifier struct {
	httpChannel
	secret string
	env    Env
}

var _ Notifier = (*FeishuNotifier)(nil)

func newFeishu(c ChannelConfig, env Env) (Notifier, error) {
	h, err := newHTTPChannel(c)
	if err != nil {
		return nil, err
	}
	return &FeishuNotifier{httpChannel: h, secret: c.Secret, env: env}, nil
}

// Notify implements Notifier.
func (n *FeishuNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	p := map[string]any{"msg_type": "text", "content": map[string]string{"text": m.Text}}
	if n.secret != "" {
		// base64(HMAC-SHA256 keyed with "<s>\n<secret>" over nothing).
		ts := strconv.FormatInt(n.env.Now().Unix(), 10)
		h := hmac.New(sha256.New, []byte(ts+"\n"+n.secret))
		p["timestamp"], p["sign"] = ts, base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	body, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	return n.post(ctx, delivery.Request{Body: body})
}
