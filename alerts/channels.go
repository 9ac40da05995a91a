// Package alerts reaches the on-call engineers: it routes alarm and
// playbook events to people through channels (webhooks, the group robots
// Chinese property teams use, SMS, e-mail, MQTT), escalates until someone
// acknowledges, groups and inhibits noise, and records every attempt.
package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
)

// Message is one notification to one person.
type Message struct {
	To      string // person id
	Address string // the contact's address on the channel: URL user, phone, e-mail, topic
	Subject string
	Text    string // the whole bilingual text
	Alerts  []string
}

// Notifier sends messages on one channel. retry says whether a failure is
// worth retrying (a timeout, a 5xx) or final (a 4xx: the request is wrong).
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

// SMTPConfig is an e-mail channel's server.
type SMTPConfig struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	From     string `yaml:"from"`
	TLS      string `yaml:"tls"`     // starttls (default), tls, none (loopback relays only)
	CAFile   string `yaml:"ca_file"` // trust this CA (an internal relay's); default the system's
}

func (c SMTPConfig) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smtp ca_file %s holds no PEM certificate", c.CAFile)
		}
	}
	return cfg, nil
}

// ChannelConfig is one configured channel.
type ChannelConfig struct {
	Type    ChannelType   `yaml:"type"`
	URL     string        `yaml:"url"`    // webhook, robots, SMS gateway
	Secret  string        `yaml:"secret"` // dingtalk/feishu signing; webhook HMAC
	Method  string        `yaml:"method"` // sms: default POST
	Body    string        `yaml:"body"`   // sms: template with {{.To}} {{.Address}} {{.Text}}
	Header  string        `yaml:"content_type"`
	SMTP    SMTPConfig    `yaml:"smtp"`
	Topic   string        `yaml:"topic"` // mqtt: may use {address}
	Timeout time.Duration `yaml:"timeout"`
}

// Validate checks a channel's settings.
func (c *ChannelConfig) Validate() error {
	switch c.Type {
	case Webhook, WeCom, DingTalk, Feishu, Slack, SMS:
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfgerr.Errorf("url", "%q is not an http(s) URL", c.URL)
		}
		if c.Type == SMS {
			if _, err := template.New("sms").Parse(c.Body); err != nil || c.Body == "" {
				return cfgerr.Errorf("body", "the SMS body template is missing or invalid: %v", err)
			}
		}
	case Email:
		if c.SMTP.Host == "" || c.SMTP.From == "" {
			return cfgerr.Errorf("smtp", "host and from are required")
		}
		switch c.SMTP.TLS {
		case "", "starttls", "tls", "none":
		default:
			return cfgerr.Errorf("smtp.tls", "%q is not starttls, tls or none", c.SMTP.TLS)
		}
	case MQTT:
		if c.Topic == "" {
			return cfgerr.Errorf("topic", "is required")
		}
	default:
		return cfgerr.Errorf("type", "%q is not a channel type; fix: webhook, wecom, dingtalk, feishu, slack, sms, email or mqtt", c.Type)
	}
	return nil
}

// Publisher sends MQTT messages (the gateway's MQTT collector).
type Publisher interface {
	PublishCommand(topic, payload string) error
}

// NewNotifier builds the notifier for a channel; now is the clock (robot
// signatures carry a timestamp).
func NewNotifier(c ChannelConfig, pub Publisher, now func() time.Time) Notifier {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	h := &httpNotifier{cfg: c, client: &http.Client{Timeout: timeout}, now: now}
	switch c.Type {
	case Email:
		return &emailNotifier{cfg: c.SMTP, timeout: timeout}
	case MQTT:
		return &mqttNotifier{topic: c.Topic, pub: pub}
	case SMS:
		h.tmpl = template.Must(template.New("sms").Parse(c.Body))
	}
	return h
}

type httpNotifier struct {
	cfg    ChannelConfig
	client *http.Client
	tmpl   *template.Template
	now    func() time.Time
}

// robotSign is DingTalk's and Feishu's signature: base64(HMAC-SHA256) over
// "<timestamp>\n<secret>" (DingTalk keys it with the secret, Feishu with the
// string itself and signs nothing).
func robotSign(t ChannelType, ts, secret string) string {
	var mac []byte
	if t == DingTalk {
		h := hmac.New(sha256.New, []byte(secret))
		h.Write([]byte(ts + "\n" + secret))
		mac = h.Sum(nil)
	} else {
		h := hmac.New(sha256.New, []byte(ts+"\n"+secret))
		mac = h.Sum(nil)
	}
	return base64.StdEncoding.EncodeToString(mac)
}

func (n *httpNotifier) request(m *Message) (target string, body []byte, contentType string, err error) {
	target, contentType = n.cfg.URL, "application/json"
	var payload any
	switch n.cfg.Type {
	case Webhook:
		payload = map[string]any{"to": m.To, "address": m.Address, "subject": m.Subject, "text": m.Text, "alerts": m.Alerts}
	case WeCom:
		content := m.Text
		if m.Address != "" {
			content += "\n<@" + m.Address + ">"
		}
		payload = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": content}}
	case DingTalk:
		p := map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": m.Subject, "text": m.Text}}
		if m.Address != "" {
			p["at"] = map[string]any{"atMobiles": []string{m.Address}}
		}
		payload = p
		if n.cfg.Secret != "" {
			ts := strconv.FormatInt(n.now().UnixMilli(), 10)
			u, _ := url.Parse(target)
			q := u.Query()
			q.Set("timestamp", ts)
			q.Set("sign", robotSign(DingTalk, ts, n.cfg.Secret))
			u.RawQuery = q.Encode()
			target = u.String()
		}
	case Feishu:
		p := map[string]any{"msg_type": "text", "content": map[string]string{"text": m.Text}}
		if n.cfg.Secret != "" {
			ts := strconv.FormatInt(n.now().Unix(), 10)
			p["timestamp"], p["sign"] = ts, robotSign(Feishu, ts, n.cfg.Secret)
		}
		payload = p
	case Slack:
		payload = map[string]string{"text": m.Text}
	case SMS:
		var buf bytes.Buffer
		if err := n.tmpl.Execute(&buf, map[string]string{"To": m.To, "Address": m.Address, "Text": m.Text, "TextJSON": jsonString(m.Text)}); err != nil {
			return "", nil, "", err
		}
		if n.cfg.Header != "" {
			contentType = n.cfg.Header
		}
		return target, buf.Bytes(), contentType, nil
	}
	body, err = json.Marshal(payload)
	return target, body, contentType, err
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func (n *httpNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	target, body, ct, err := n.request(m)
	if err != nil {
		return false, err
	}
	method := http.MethodPost
	if n.cfg.Method != "" {
		method = n.cfg.Method
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", ct)
	if n.cfg.Type == Webhook && n.cfg.Secret != "" {
		mac := hmac.New(sha256.New, []byte(n.cfg.Secret))
		mac.Write(body)
		req.Header.Set("X-Signature", "sha256="+fmt.Sprintf("%x", mac.Sum(nil)))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err // no answer: worth another try
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("%s answered %s", n.cfg.Type, resp.Status)
	case resp.StatusCode >= 400:
		return false, fmt.Errorf("%s refused the message: %s %s", n.cfg.Type, resp.Status, strings.TrimSpace(string(answer)))
	}
	// The robots answer 200 with an error code in the body.
	var robot struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		Code    *int   `json:"code"`
		Msg     string `json:"msg"`
	}
	if json.Unmarshal(answer, &robot) == nil {
		if robot.ErrCode != nil && *robot.ErrCode != 0 {
			return false, fmt.Errorf("%s error %d: %s", n.cfg.Type, *robot.ErrCode, robot.ErrMsg)
		}
		if robot.Code != nil && *robot.Code != 0 {
			return false, fmt.Errorf("%s error %d: %s", n.cfg.Type, *robot.Code, robot.Msg)
		}
	}
	return false, nil
}

type emailNotifier struct {
	cfg     SMTPConfig
	timeout time.Duration
}

func (e *emailNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	port := e.cfg.Port
	if port == 0 {
		port = map[string]int{"tls": 465, "none": 25}[e.cfg.TLS]
		if port == 0 {
			port = 587
		}
	}
	addr := net.JoinHostPort(e.cfg.Host, strconv.Itoa(port))
	d := &net.Dialer{Timeout: e.timeout}
	tlsCfg, err := e.cfg.tlsConfig()
	if err != nil {
		return false, err
	}
	var conn net.Conn
	if e.cfg.TLS == "tls" {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tlsCfg)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return true, err
	}
	_ = conn.SetDeadline(time.Now().Add(e.timeout))
	c, err := smtp.NewClient(conn, e.cfg.Host)
	if err != nil {
		conn.Close()
		return true, err
	}
	defer c.Close()
	if e.cfg.TLS == "" || e.cfg.TLS == "starttls" {
		if err := c.StartTLS(tlsCfg); err != nil {
			return false, fmt.Errorf("smtp STARTTLS: %w", err)
		}
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.cfg.Host)); err != nil {
			return false, fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(e.cfg.From); err != nil {
		return smtpRetry(err), err
	}
	if err := c.Rcpt(m.Address); err != nil {
		return smtpRetry(err), err
	}
	w, err := c.Data()
	if err != nil {
		return smtpRetry(err), err
	}
	subject := "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(m.Subject)) + "?="
	fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n",
		e.cfg.From, m.Address, subject, base64.StdEncoding.EncodeToString([]byte(m.Text)))
	if err := w.Close(); err != nil {
		return smtpRetry(err), err
	}
	return false, c.Quit()
}

// smtpRetry: 4xx replies are transient, 5xx final.
func smtpRetry(err error) bool {
	var te interface{ Temporary() bool }
	if errors.As(err, &te) {
		return te.Temporary()
	}
	return strings.HasPrefix(err.Error(), "4")
}

type mqttNotifier struct {
	topic string
	pub   Publisher
}

func (n *mqttNotifier) Notify(_ context.Context, m *Message) (bool, error) {
	if n.pub == nil {
		return false, errors.New("mqtt: no broker configured")
	}
	if err := n.pub.PublishCommand(strings.ReplaceAll(n.topic, "{address}", m.Address), m.Text); err != nil {
		return true, err
	}
	return false, nil
}
