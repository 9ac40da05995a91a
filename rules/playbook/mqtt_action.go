package playbook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/propgate/gateway/internal/cfgerr"
)

var _ Action = (*MQTTAction)(nil)

// Validate implements Action.
func (m *MQTTAction) Validate(path string, _ map[string]bool) error {
	if m.Topic == "" {
		return cfgerr.Errorf(path+".mqtt.topic", "is required")
	}
	return nil
}

// Perform implements Action: it publishes the command ({asset} and
// {building} in the topic are replaced).
func (m *MQTTAction) Perform(x *Exec) error {
	topic := strings.NewReplacer("{asset}", x.in.Asset, "{building}", x.in.Building).Replace(m.Topic)
	switch {
	case x.in.Drill:
		x.log("drill: MQTT %s %q not published", topic, m.Payload)
	case x.r.commands == nil:
		return errors.New("mqtt: no broker configured")
	default:
		if err := x.r.commands.PublishCommand(topic, m.Payload); err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		x.log("published %q to %s", m.Payload, topic)
	}
	return nil
}
