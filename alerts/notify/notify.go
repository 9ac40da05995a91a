// Package notify delivers one message to one person on one channel: a
// Notifier type per channel (webhook, WeCom, DingTalk, Feishu, Slack, SMS,
// e-mail, MQTT), compiled from its YAML config; alerts/ decides who and when.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/delivery"
)

// Message is one notification to one person.
type Message struct {
	To      string // person id
	Address string // the contact's address on the channel: URL user, phone, e-mail, topic
	Subject string
	Text    string // the whole bilingual text
	Alerts  []string
	// Mentions are the addresses a merged message (a digest to a group
	// robot) is for; robots mention each. Empty: Address alone.
	Mentions []string
	// Files go along where the channel carries files (e-mail attaches
	// them); the others send the text alone, which must stand without them.
	Files []File
}

// File is an attachment.
type File struct {
	Name        string // ASCII, e.g. monthly-report-2026-11.xlsx
	ContentType string
	Data        []byte
}

// mentions lists whom a robot message @-mentions.
func (m *Message) mentions() []string {
	if len(m.Mentions) > 0 {
		return m.Mentions
	}
	if m.Address != "" {
		return []string{m.Address}
	}
	return nil
}

// Notifier sends messages on one channel. retry says whether a failure is
// worth retrying (a timeout, a 5xx) or final (a 4xx: the request is wrong).
// Errors never contain the channel's secrets.
type Notifier interface {
	Notify(ctx context.Context, m *Message) (retry bool, err error)
}

// ChannelType names a kind of channel.
type ChannelType string

// Channel types.
const (
	Webhook  ChannelType = "webhook"  // generic JSON
	WeCom    ChannelType = "wecom"    // 企业微信 group robot
	DingTalk ChannelType = "dingtalk" // 钉钉 group robot, with its signing secret
	Feishu   ChannelType = "feishu"   // 飞书 / Lark group robot, with its signing secret
	Slack    ChannelType = "slack"    // Slack-compatible incoming webhook
	SMS      ChannelType = "sms"      // an HTTP SMS gateway, through a body template
	Email    ChannelType = "email"    // SMTP
	MQTT     ChannelType = "mqtt"     // on-site sirens and LED boards
)

// channelTypes is the registry: adding a channel is one file with its
// Notifier type and one line here.
var channelTypes = map[ChannelType]func(ChannelConfig, Env) (Notifier, error){
	Webhook:  newWebhook,
	WeCom:    newWeCom,
	DingTalk: newDingTalk,
	Feishu:   newFeishu,
	Slack:    newSlack,
	SMS:      newSMS,
	Email:    newEmail,
	MQTT:     newMQTT,
}

// ChannelConfig is one configured channel as written in YAML; each type
// reads the fields it needs and Validate compiles it into its Notifier.
type ChannelConfig struct {
	Type    ChannelType   `yaml:"type"`
	URL     string        `yaml:"url"`    // webhook, robots, SMS gateway
	Secret  string        `yaml:"secret"` // dingtalk/feishu signing; webhook HMAC
	Method  string        `yaml:"method"` // sms: default POST
	Body    string        `yaml:"body"`   // sms: template with {{.To}} {{.Address}} {{.Text}} {{.TextJSON}}
	Header  string        `yaml:"content_type"`
	SMTP    SMTPConfig    `yaml:"smtp"`
	Topic   string        `yaml:"topic"` // mqtt: may use {address}
	Timeout time.Duration `yaml:"timeout"`
	// Endpoint names the budget in /metrics, the API and the console
	// (default: the channel's name); channels with the same URL share one.
	Endpoint string `yaml:"endpoint"`
	Limit    Limit  `yaml:"limit"` // the endpoint's budget; default the platform's documented limits
}

// Env is what notifiers get from the gateway.
type Env struct {
	Publisher Publisher        // the MQTT collector; nil: no broker
	Now       func() time.Time // robot signatures carry a timestamp; default time.Now
}

// Publisher sends MQTT messages (the gateway's MQTT collector).
type Publisher interface {
	PublishCommand(topic, payload string) error
}

// Validate checks a channel's settings by compiling it.
func (c *ChannelConfig) Validate() error {
	if _, err := New(*c, nil, nil); err != nil {
		return err
	}
	return c.validateLimit()
}

// New compiles a channel into its Notifier; now is the clock (robot
// signatures carry a timestamp), pub the MQTT publisher.
func New(c ChannelConfig, pub Publisher, now func() time.Time) (Notifier, error) {
	mk, ok := channelTypes[c.Type]
	if !ok {
		return nil, cfgerr.Errorf("type", "%q is not a channel type; fix: webhook, wecom, dingtalk, feishu, slack, sms, email or mqtt", c.Type)
	}
	if now == nil {
		now = time.Now
	}
	return mk(c, Env{Publisher: pub, Now: now})
}

func (c ChannelConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// httpChannel is what the HTTP channels share: the URL, a client and the
// channel name errors start with.
type httpChannel struct {
	name   ChannelType
	url    string
	client *http.Client
}

func newHTTPChannel(c ChannelConfig) (httpChannel, error) {
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return httpChannel{}, cfgerr.Errorf("url", "%s is not an http(s) URL", delivery.Redact(c.URL))
	}
	return httpChannel{name: c.Type, url: c.URL, client: &http.Client{Timeout: c.timeout()}}, nil
}

// post sends through the shared delivery helper; errors start with the
// channel's type ("wecom answered 500 ...").
func (h httpChannel) post(ctx context.Context, r delivery.Request) (bool, error) {
	if r.URL == "" {
		r.URL = h.url
	}
	if r.Check == nil {
		r.Check = robotCheck(Platforms[h.name].Codes)
	}
	retry, err := delivery.Post(ctx, h.client, r)
	if err != nil {
		return retry, fmt.Errorf("%s %w", h.name, err)
	}
	return false, nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
