package alerts

import "github.com/propgate/gateway/alerts/notify"

// The channel types live in alerts/notify; these names keep the alerts API.
type (
	// Notifier sends messages on one channel.
	Notifier = notify.Notifier
	// Message is one notification to one person.
	Message = notify.Message
	// ChannelConfig is one configured channel.
	ChannelConfig = notify.ChannelConfig
	// ChannelType names a kind of channel.
	ChannelType = notify.ChannelType
	// SMTPConfig is an e-mail channel's server.
	SMTPConfig = notify.SMTPConfig
	// Publisher sends MQTT messages (the gateway's MQTT collector).
	Publisher = notify.Publisher
	// Limit is an endpoint's budget.
	Limit = notify.Limit
)

// Channel types.
const (
	Webhook  = notify.Webhook
	WeCom    = notify.WeCom
	DingTalk = notify.DingTalk
	Feishu   = notify.Feishu
	Slack    = notify.Slack
	SMS      = notify.SMS
	Email    = notify.Email
	MQTT     = notify.MQTT
)
