package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/propgate/gateway/internal/testenv"
)

type captured struct {
	method, path, query, contentType, body, signature string
}

// receiver is a local server standing in for a robot or gateway API.
func receiver(t *testing.T, status int, answer string) (*httptest.Server, func() []captured) {
	var mu sync.Mutex
	var got []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, captured{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(b), r.Header.Get("X-Signature")})
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captured { mu.Lock(); defer mu.Unlock(); return append([]captured(nil), got...) }
}

var fixed = time.Unix(1_763_000_000, 0)

func mustNotifier(t *testing.T, c ChannelConfig, pub Publisher, now func() time.Time) Notifier {
	t.Helper()
	n, err := New(c, pub, now)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func msg() *Message {
	return &Message{To: "wang.li", Address: "13800000001", Subject: "[CRITICAL] Passengers trapped", Text: "【紧急】电梯困人\nB3 car 1", Alerts: []string{"a@1"}}
}

func TestChannelPayloads(t *testing.T) {
	cases := []struct {
		name   string
		cfg    ChannelConfig
		answer string
		check  func(t *testing.T, c captured)
	}{
		{"webhook", ChannelConfig{Type: Webhook, Secret: "hook-secret"}, "", func(t *testing.T, c captured) {
			want := `{"address":"13800000001","alerts":["a@1"],"subject":"[CRITICAL] Passengers trapped","text":"【紧急】电梯困人\nB3 car 1","to":"wang.li"}`
			mac := hmac.New(sha256.New, []byte("hook-secret"))
			mac.Write([]byte(want))
			if c.body != want || c.signature != "sha256="+hex.EncodeToString(mac.Sum(nil)) || c.contentType != "application/json" {
				t.Errorf("body %s sig %s", c.body, c.signature)
			}
		}},
		{"wecom", ChannelConfig{Type: WeCom}, `{"errcode":0,"errmsg":"ok"}`, func(t *testing.T, c captured) {
			if want := `{"markdown":{"content":"【紧急】电梯困人\nB3 car 1\n\u003c@13800000001\u003e"},"msgtype":"markdown"}`; c.body != want {
				t.Errorf("body %s\nwant %s", c.body, want)
			}
		}},
		{"dingtalk", ChannelConfig{Type: DingTalk, Secret: "SECabc"}, `{"errcode":0,"errmsg":"ok"}`, func(t *testing.T, c captured) {
			if want := `{"at":{"atMobiles":["13800000001"]},"markdown":{"text":"【紧急】电梯困人\nB3 car 1","title":"[CRITICAL] Passengers trapped"},"msgtype":"markdown"}`; c.body != want {
				t.Errorf("body %s", c.body)
			}
			ts := fmt.Sprint(fixed.UnixMilli())
			mac := hmac.New(sha256.New, []byte("SECabc"))
			mac.Write([]byte(ts + "\nSECabc"))
			sign := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if want := "sign=" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(sign) + "&timestamp=" + ts; c.query != want {
				t.Errorf("query %s\nwant  %s", c.query, want)
			}
		}},
		{"feishu", ChannelConfig{Type: Feishu, Secret: "fs-secret"}, `{"code":0,"msg":"success"}`, func(t *testing.T, c captured) {
			ts := fmt.Sprint(fixed.Unix())
			mac := hmac.New(sha256.New, []byte(ts+"\nfs-secret"))
			sign := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if want := `{"content":{"text":"【紧急】电梯困人\nB3 car 1"},"msg_type":"text","sign":"` + sign + `","timestamp":"` + ts + `"}`; c.body != want {
				t.Errorf("body %s\nwant %s", c.body, want)
			}
		}},
		{"slack", ChannelConfig{Type: Slack}, "ok", func(t *testing.T, c captured) {
			if c.body != `{"text":"【紧急】电梯困人\nB3 car 1"}` {
				t.Errorf("body %s", c.body)
			}
		}},
		{"sms", ChannelConfig{Type: SMS, Header: "application/x-www-form-urlencoded", Body: `phone={{.Address}}&msg={{.Text}}`}, "", func(t *testing.T, c captured) {
			if c.body != "phone=13800000001&msg=【紧急】电梯困人\nB3 car 1" || c.contentType != "application/x-www-form-urlencoded" {
				t.Errorf("body %q type %s", c.body, c.contentType)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, got := receiver(t, 200, c.answer)
			c.cfg.URL = srv.URL + "/robot/send"
			if err := c.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			n := mustNotifier(t, c.cfg, nil, func() time.Time { return fixed })
			retry, err := n.Notify(context.Background(), msg())
			if err != nil || retry {
				t.Fatalf("notify: %v retry %v", err, retry)
			}
			if g := got(); len(g) != 1 || g[0].method != "POST" || g[0].path != "/robot/send" {
				t.Fatalf("requests %+v", g)
			} else {
				c.check(t, g[0])
			}
		})
	}
}

func TestRetryOnlyWhatIsWorthRetrying(t *testing.T) {
	for _, c := range []struct {
		status int
		answer string
		retry  bool
		err    string
	}{
		{500, "", true, "webhook answered 500 Internal Server Error"},
		{429, "", true, "webhook answered 429 Too Many Requests"},
		{400, "bad json", false, "webhook refused the message: 400 Bad Request bad json"},
		{200, `{"errcode":310000,"errmsg":"sign not match"}`, false, "webhook error 310000: sign not match"},
	} {
		srv, _ := receiver(t, c.status, c.answer)
		n := mustNotifier(t, ChannelConfig{Type: Webhook, URL: srv.URL}, nil, time.Now)
		retry, err := n.Notify(context.Background(), msg())
		if retry != c.retry || err == nil || err.Error() != c.err {
			t.Errorf("%d: retry %v err %v; want %v %q", c.status, retry, err, c.retry, c.err)
		}
	}
	// Nobody listening: retry.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	n := mustNotifier(t, ChannelConfig{Type: Webhook, URL: "http://" + addr}, nil, time.Now)
	if retry, err := n.Notify(context.Background(), msg()); !retry || err == nil {
		t.Errorf("unreachable: retry %v err %v", retry, err)
	}
}

// smtpBackend is an in-process SMTP server (github.com/emersion/go-smtp).
type smtpBackend struct {
	mu   sync.Mutex
	mail []string
}

type smtpSession struct {
	b          *smtpBackend
	from, to   string
	authorized bool
}

func (b *smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }
func (s *smtpSession) AuthMechanisms() []string                    { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "gateway" || pass != "p4ss" {
			return errors.New("bad credentials")
		}
		s.authorized = true
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authorized {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.mail = append(s.b.mail, s.from+" -> "+s.to+"\n"+string(b))
	s.b.mu.Unlock()
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func TestEmailThroughARealSMTPServer(t *testing.T) {
	be := &smtpBackend{}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	n := mustNotifier(t, ChannelConfig{Type: Email, SMTP: SMTPConfig{Host: "127.0.0.1", Port: port, Username: "gateway", Password: "p4ss", From: "gateway@yushan.example", TLS: "none"}}, nil, time.Now)
	m := msg()
	m.Address = "wang.li@yushan.example"
	if retry, err := n.Notify(context.Background(), m); err != nil {
		t.Fatalf("send: %v (retry %v)", err, retry)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.mail) != 1 {
		t.Fatalf("%d mails", len(be.mail))
	}
	got := be.mail[0]
	body := base64.StdEncoding.EncodeToString([]byte(m.Text))
	for _, want := range []string{"gateway@yushan.example -> wang.li@yushan.example", "Subject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(m.Subject)) + "?=", "Content-Type: text/plain; charset=UTF-8", body} {
		if !strings.Contains(got, want) {
			t.Errorf("mail lacks %q:\n%s", want, got)
		}
	}
	// Wrong password: final, not retried.
	bad := mustNotifier(t, ChannelConfig{Type: Email, SMTP: SMTPConfig{Host: "127.0.0.1", Port: port, Username: "gateway", Password: "nope", From: "g@y", TLS: "none"}}, nil, time.Now)
	if retry, err := bad.Notify(context.Background(), m); err == nil || retry {
		t.Fatalf("bad auth: retry %v err %v", retry, err)
	}
}

// The MQTT channel publishes to a real broker (for sirens and LED boards).
func TestMQTTChannelIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("siren"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	got := make(chan string, 1)
	if tok := c.Subscribe("yushan/sirens/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	n := mustNotifier(t, ChannelConfig{Type: MQTT, Topic: "yushan/sirens/{address}"}, pahoPublisher{c}, time.Now)
	m := msg()
	m.Address = "b3-lobby"
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "yushan/sirens/b3-lobby 【紧急】电梯困人\nB3 car 1" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
}

type pahoPublisher struct{ c paho.Client }

func (p pahoPublisher) PublishCommand(topic, payload string) error {
	tok := p.c.Publish(topic, 1, false, payload)
	tok.Wait()
	return tok.Error()
}

// selfSigned makes a certificate for 127.0.0.1 and writes it as a CA file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

// STARTTLS and implicit TLS against the same in-process server, trusting
// its certificate through ca_file; without it, the certificate is refused.
func TestEmailOverTLS(t *testing.T) {
	cert, ca := selfSigned(t)
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			be := &smtpBackend{}
			srv := smtp.NewServer(be)
			srv.Domain = "127.0.0.1"
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			var l net.Listener
			var err error
			if mode == "tls" {
				l, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
			} else {
				l, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(l)
			defer srv.Close()
			cfg := SMTPConfig{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Username: "gateway", Password: "p4ss", From: "gateway@yushan.example", TLS: mode}
			m := msg()
			m.Address = "wang.li@yushan.example"
			if _, err := mustNotifier(t, ChannelConfig{Type: Email, SMTP: cfg}, nil, time.Now).Notify(context.Background(), m); err == nil {
				t.Fatal("an untrusted certificate was accepted")
			}
			cfg.CAFile = ca
			if retry, err := mustNotifier(t, ChannelConfig{Type: Email, SMTP: cfg}, nil, time.Now).Notify(context.Background(), m); err != nil {
				t.Fatalf("send: %v (retry %v)", err, retry)
			}
			be.mu.Lock()
			defer be.mu.Unlock()
			if len(be.mail) != 1 || !strings.Contains(be.mail[0], "gateway@yushan.example -> wang.li@yushan.example") {
				t.Fatalf("mails %v", be.mail)
			}
		})
	}
}

// Every registered type compiles from its YAML fields, and an unknown type
// or a missing field is a config error naming the field.
func TestChannelRegistry(t *testing.T) {
	for typ := range channelTypes {
		c := ChannelConfig{Type: typ, URL: "https://robot.example/send", Body: "{{.Text}}", Topic: "t/{address}", SMTP: SMTPConfig{Host: "smtp.example", From: "g@example"}}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	for _, c := range []struct {
		cfg  ChannelConfig
		want string
	}{
		{ChannelConfig{Type: "pager"}, `type: "pager" is not a channel type`},
		{ChannelConfig{Type: WeCom, URL: "ftp://x?key=SECRET-ROBOT-KEY"}, "url: ftp://x?key=REDACTED is not an http(s) URL"},
		{ChannelConfig{Type: SMS, URL: "https://sms.example"}, "body: the SMS body template is missing"},
		{ChannelConfig{Type: Email}, "smtp: host and from are required"},
		{ChannelConfig{Type: MQTT}, "topic: is required"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// Issue 10 item 6: a robot that cannot be reached must not put its key or
// token into the error (which is stored, shown by the API and logged).
func TestRobotErrorsCarryNoSecrets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for _, c := range []ChannelConfig{
		{Type: WeCom, URL: "http://" + dead + "/cgi-bin/webhook/send?key=SUPER-SECRET-ROBOT-KEY"},
		{Type: DingTalk, URL: "http://" + dead + "/robot/send?access_token=SUPER-SECRET-TOKEN", Secret: "SEC-SIGNING-SECRET"},
		{Type: Feishu, URL: "http://" + dead + "/open-apis/bot/v2/hook/3f2a9c1e-77aa-4b1c-9d3e-0123456789ab", Secret: "SEC-SIGNING-SECRET"},
		{Type: Slack, URL: "http://" + dead + "/services/T0000AAAA/B0000BBBB/XXXXXXXXXXXXXXXXXXXXXXXX"},
		{Type: Webhook, URL: "http://user:SUPER-SECRET-PASSWORD@" + dead + "/hook?token=SUPER-SECRET-TOKEN", Secret: "SEC-SIGNING-SECRET"},
	} {
		retry, err := mustNotifier(t, c, nil, time.Now).Notify(context.Background(), msg())
		if err == nil || !retry {
			t.Fatalf("%s: retry %v err %v", c.Type, retry, err)
		}
		for _, secret := range []string{"SUPER-SECRET", "SEC-SIGNING-SECRET", "3f2a9c1e-77aa", "XXXXXXXXXXXXXXXX", "T0000AAAA"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s error leaks %q: %v", c.Type, secret, err)
			}
		}
		if !strings.HasPrefix(err.Error(), string(c.Type)+" no answer: POST http://"+dead+"/") {
			t.Errorf("%s error does not say what failed: %v", c.Type, err)
		}
	}
}

// A message with a file goes out as multipart/mixed: the text first, then
// the file attached under its name, both intact.
func TestEmailAttachesFiles(t *testing.T) {
	be := &smtpBackend{}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	n := mustNotifier(t, ChannelConfig{Type: Email, SMTP: SMTPConfig{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Username: "gateway", Password: "p4ss", From: "gateway@yushan.example", TLS: "none"}}, nil, time.Now)
	data := make([]byte, 5000) // several base64 lines
	for i := range data {
		data[i] = byte(i * 7)
	}
	m := &Message{To: "zhao.min", Address: "zhao.min@yushan.example", Subject: "玉山花园 2026年11月 月报", Text: "服务指标见附件。\n处理率 98.0%",
		Files: []File{{Name: "monthly-report-2026-11.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Data: data}}}
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	raw := be.mail[0]
	be.mu.Unlock()
	_, body, _ := strings.Cut(raw, "\n")
	msg, err := mail.ReadMessage(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Fatalf("subject %q (%v)", subject, err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := io.ReadAll(p)
		dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(enc), "\r\n", ""))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(enc)), "\r\n") {
			if len(line) > 76 {
				t.Fatalf("a base64 line of %d characters", len(line))
			}
		}
		parts = append(parts, p.Header.Get("Content-Type")+"|"+p.FileName())
		switch len(parts) {
		case 1:
			if string(dec) != m.Text {
				t.Fatalf("text part %q", dec)
			}
		case 2:
			if !bytes.Equal(dec, data) {
				t.Fatal("the attachment's bytes differ")
			}
		}
	}
	want := []string{"text/plain; charset=UTF-8|", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name=monthly-report-2026-11.xlsx|monthly-report-2026-11.xlsx"}
	if fmt.Sprint(parts) != fmt.Sprint(want) {
		t.Fatalf("parts %q, want %q", parts, want)
	}
}
