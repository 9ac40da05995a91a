package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/delivery"
)

// Limit is a delivery endpoint's budget: what the platform accepts, never
// exceeded by everything sending through it (alerts, escalations, repeats,
// playbook notifications). Zero values take the platform's documented
// limits (Platform); SMS gateways, SMTP relays and webhooks have none
// unless configured.
type Limit struct {
	PerMinute int           `yaml:"per_minute"` // messages in any sliding minute; 0: the platform's (none for sms, email, webhook, mqtt)
	PerSecond int           `yaml:"per_second"` // messages in any second; 0: the platform's
	Penalty   time.Duration `yaml:"penalty"`    // how long to stop after a throttled answer; 0: the platform's
}

// PlatformLimit is what a platform documents for one robot.
type PlatformLimit struct {
	Limit
	Codes   []int  // the frequency-limit codes it answers with (besides HTTP 429)
	Source  string // where the numbers come from
	Grouped bool   // a group chat: several people's messages land in one place (they may be merged)
}

// Platforms: the documented limits and throttling answers, pinned in tests.
//   - DingTalk custom robot: 20 messages a minute, beyond that throttled for
//     10 minutes; answers {"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}.
//   - WeCom group robot: 20 messages a minute; answers {"errcode":45009,"errmsg":"api freq out of limit"}.
//   - Feishu custom bot: 100 a minute and 5 a second; answers code 11232
//     ("frequency limited"; busiest on the hour and half hour), 9499 ("too
//     many request") or 99991400 with HTTP 429/400 and x-ogw-ratelimit-reset.
//   - Slack incoming webhook: 1 a second (short bursts tolerated); HTTP 429
//     with Retry-After.
var Platforms = map[ChannelType]PlatformLimit{
	DingTalk: {Limit: Limit{PerMinute: 20, Penalty: 10 * time.Minute}, Codes: []int{130101}, Grouped: true,
		Source: "open.dingtalk.com custom robot: 每个机器人每分钟最多发送20条，超过会限流10分钟"},
	WeCom: {Limit: Limit{PerMinute: 20, Penalty: time.Minute}, Codes: []int{45009}, Grouped: true,
		Source: "developer.work.weixin.qq.com group robot: 每个机器人发送的消息不能超过20条/分钟"},
	Feishu: {Limit: Limit{PerMinute: 100, PerSecond: 5, Penalty: time.Minute}, Codes: []int{11232, 9499, 99991400}, Grouped: true,
		Source: "open.feishu.cn 频控策略: 自定义机器人 100 次/分钟，5 次/秒"},
	Slack: {Limit: Limit{PerSecond: 1, Penalty: 30 * time.Second}, Grouped: true,
		Source: "api.slack.com incoming webhooks: 1 message per second, HTTP 429 with Retry-After"},
	SMS:     {Limit: Limit{Penalty: time.Minute}},
	Email:   {Limit: Limit{Penalty: time.Minute}},
	Webhook: {Limit: Limit{Penalty: time.Minute}},
	MQTT:    {},
}

// EffectiveLimit is the channel's budget: its limit: section over the
// platform's defaults.
func (c *ChannelConfig) EffectiveLimit() Limit {
	l := Platforms[c.Type].Limit
	if c.Limit.PerMinute > 0 {
		l.PerMinute = c.Limit.PerMinute
	}
	if c.Limit.PerSecond > 0 {
		l.PerSecond = c.Limit.PerSecond
	}
	if c.Limit.Penalty > 0 {
		l.Penalty = c.Limit.Penalty
	}
	return l
}

// Grouped says whether the channel posts to a group chat (a robot), where
// messages for several people may be merged into one.
func (c *ChannelConfig) Grouped() bool { return Platforms[c.Type].Grouped }

// EndpointKey identifies the outside endpoint a channel sends through:
// channels sharing it share its budget. It is never shown (it may hold a
// robot's key); the endpoint's name is.
func (c *ChannelConfig) EndpointKey() string {
	switch c.Type {
	case Email:
		return fmt.Sprintf("smtp:%s:%d:%s", c.SMTP.Host, c.SMTP.Port, c.SMTP.Username)
	case MQTT:
		return "mqtt:" + c.Topic
	}
	if u, err := url.Parse(c.URL); err == nil {
		u.Fragment = ""
		return string(c.Type) + ":" + u.String()
	}
	return string(c.Type) + ":" + c.URL
}

func (c *ChannelConfig) validateLimit() error {
	l := c.Limit
	if l.PerMinute < 0 || l.PerSecond < 0 || l.Penalty < 0 {
		return cfgerr.Errorf("limit", "per_minute, per_second and penalty must not be negative")
	}
	p := Platforms[c.Type]
	if p.PerMinute > 0 && l.PerMinute > p.PerMinute {
		return cfgerr.Errorf("limit.per_minute", "%d is more than a %s robot takes (%d a minute; beyond it the platform throttles the robot); fix: %d or less, or leave it out for the platform's limit", l.PerMinute, c.Type, p.PerMinute, p.PerMinute)
	}
	if p.PerSecond > 0 && l.PerSecond > p.PerSecond {
		return cfgerr.Errorf("limit.per_second", "%d is more than a %s robot takes (%d a second); fix: %d or less, or leave it out", l.PerSecond, c.Type, p.PerSecond, p.PerSecond)
	}
	if c.Endpoint != "" && !endpointRE(c.Endpoint) {
		return cfgerr.Errorf("endpoint", "%q is not a name; fix: letters, digits, '.', '_' or '-', e.g. dingtalk-duty-group", c.Endpoint)
	}
	return nil
}

func endpointRE(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return false
		}
	}
	return true
}

// robotCheck reads the error code the robots put in their answer
// (errcode/errmsg for WeCom and DingTalk, code/msg for Feishu); throttle
// lists the platform's frequency-limit codes, answered as
// *delivery.ThrottledError.
func robotCheck(throttle []int) func([]byte) error {
	return func(answer []byte) error {
		var robot struct {
			ErrCode *int   `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
			Code    *int   `json:"code"`
			Msg     string `json:"msg"`
		}
		if json.Unmarshal(answer, &robot) != nil {
			return nil
		}
		code, msg := 0, ""
		switch {
		case robot.ErrCode != nil && *robot.ErrCode != 0:
			code, msg = *robot.ErrCode, robot.ErrMsg
		case robot.Code != nil && *robot.Code != 0:
			code, msg = *robot.Code, robot.Msg
		default:
			return nil
		}
		for _, t := range throttle {
			if code == t {
				return &delivery.ThrottledError{Code: code, Msg: msg}
			}
		}
		return fmt.Errorf("error %d: %s", code, msg)
	}
}
