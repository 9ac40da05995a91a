package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"

	"github.com/propgate/gateway/internal/delivery"
)

// DingTalkNotifier posts markdown to a 钉钉 group robot, @-mentioning the
// address (a mobile number), signed in the URL when the robot has a secret.
type DingTalkNotifier struct {
	httpChannel
	secret string
	env    Env
}

var _ Notifier = (*DingTalkNotifier)(nil)

func newDingTalk(c ChannelConfig, env Env) (Notifier, error) {
	h, err := newHTTPChannel(c)
	if err != nil {
		return nil, err
	}
	return &DingTalkNotifier{httpChannel: h, secret: c.Secret, env: env}, nil
}

// Notify implements Notifier.
func (n *DingTalkNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	p := map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": m.Subject, "text": m.Text}}
	if at := m.mentions(); len(at) > 0 {
		p["at"] = map[string]any{"atMobiles": at}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	target := n.url
	if n.secret != "" {
		// base64(HMAC-SHA256(secret, "<ms>\n<secret>")) in the query.
		ts := strconv.FormatInt(n.env.Now().UnixMilli(), 10)
		h := hmac.New(sha256.New, []byte(n.secret))
		h.Write([]byte(ts + "\n" + n.secret))
		u, _ := url.Parse(target) // checked when compiled
		q := u.Query()
		q.Set("timestamp", ts)
		q.Set("sign", base64.StdEncoding.EncodeToString(h.Sum(nil)))
		u.RawQuery = q.Encode()
		target = u.String()
	}
	return n.post(ctx, delivery.Request{URL: target, Body: body})
}
