package notify

import (
	"context"
	"errors"
	"strings"

	"github.com/propgate/gateway/internal/cfgerr"
)

// MQTTNotifier publishes the text to a topic (sirens, LED boards); {address}
// in the topic is the contact's address.
type MQTTNotifier struct {
	topic string
	pub   Publisher
}

var _ Notifier = (*MQTTNotifier)(nil)

func newMQTT(c ChannelConfig, env Env) (Notifier, error) {
	if c.Topic == "" {
		return nil, cfgerr.Errorf("topic", "is required")
	}
	return &MQTTNotifier{topic: c.Topic, pub: env.Publisher}, nil
}

// Notify implements Notifier.
func (n *MQTTNotifier) Notify(_ context.Context, m *Message) (bool, error) {
	if n.pub == nil {
		return false, errors.New("mqtt: no broker configured")
	}
	if err := n.pub.PublishCommand(strings.ReplaceAll(n.topic, "{address}", m.Address), m.Text); err != nil {
		return true, err
	}
	return false, nil
}
