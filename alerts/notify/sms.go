package notify

import (
	"bytes"
	"context"
	"text/template"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/delivery"
)

// SMSNotifier sends through an HTTP SMS gateway: the body is the channel's
// template over {{.To}} {{.Address}} {{.Text}} {{.TextJSON}}.
type SMSNotifier struct {
	httpChannel
	tmpl        *template.Template
	method      string
	contentType string
}

var _ Notifier = (*SMSNotifier)(nil)

func newSMS(c ChannelConfig, _ Env) (Notifier, error) {
	h, err := newHTTPChannel(c)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("sms").Parse(c.Body)
	if err != nil || c.Body == "" {
		return nil, cfgerr.Errorf("body", "the SMS body template is missing or invalid: %v", err)
	}
	return &SMSNotifier{httpChannel: h, tmpl: tmpl, method: c.Method, contentType: c.Header}, nil
}

// Notify implements Notifier.
func (n *SMSNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	var buf bytes.Buffer
	if err := n.tmpl.Execute(&buf, map[string]string{"To": m.To, "Address": m.Address, "Text": m.Text, "TextJSON": jsonString(m.Text)}); err != nil {
		return false, err
	}
	return n.post(ctx, delivery.Request{Method: n.method, Body: buf.Bytes(), ContentType: n.contentType})
}
