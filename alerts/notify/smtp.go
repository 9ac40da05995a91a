package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
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

// EmailNotifier sends plain-text UTF-8 mail over SMTP (STARTTLS by default;
// PlainAuth refuses cleartext to anything but localhost).
type EmailNotifier struct {
	cfg     SMTPConfig
	timeout time.Duration
}

var _ Notifier = (*EmailNotifier)(nil)

func newEmail(c ChannelConfig, _ Env) (Notifier, error) {
	if c.SMTP.Host == "" || c.SMTP.From == "" {
		return nil, cfgerr.Errorf("smtp", "host and from are required")
	}
	switch c.SMTP.TLS {
	case "", "starttls", "tls", "none":
	default:
		return nil, cfgerr.Errorf("smtp.tls", "%q is not starttls, tls or none", c.SMTP.TLS)
	}
	return &EmailNotifier{cfg: c.SMTP, timeout: c.timeout()}, nil
}

// Notify implements Notifier.
func (e *EmailNotifier) Notify(ctx context.Context, m *Message) (bool, error) {
	retry, err := e.send(ctx, m)
	if err != nil && e.cfg.Password != "" && strings.Contains(err.Error(), e.cfg.Password) {
		err = errors.New(strings.ReplaceAll(err.Error(), e.cfg.Password, "REDACTED"))
	}
	return retry, err
}

func (e *EmailNotifier) send(ctx context.Context, m *Message) (bool, error) {
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
		conn, err = (&tls.Dialer{NetDialer: d, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return true, err
	}
	deadline := time.Now().Add(e.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
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
	if err := writeMail(w, e.cfg.From, m); err != nil {
		return true, err
	}
	if err := w.Close(); err != nil {
		return smtpRetry(err), err
	}
	return false, c.Quit()
}

// writeMail writes the message: plain UTF-8 text, or with files a
// multipart/mixed body with the text first and each file attached.
func writeMail(w io.Writer, from string, m *Message) error {
	subject := "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(m.Subject)) + "?="
	if len(m.Files) == 0 {
		_, err := fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n",
			from, m.Address, subject, base64.StdEncoding.EncodeToString([]byte(m.Text)))
		return err
	}
	mw := multipart.NewWriter(w)
	if _, err := fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n",
		from, m.Address, subject, mw.Boundary()); err != nil {
		return err
	}
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=UTF-8"}, "Content-Transfer-Encoding": {"base64"}})
	if err != nil {
		return err
	}
	if err := writeBase64Lines(part, []byte(m.Text)); err != nil {
		return err
	}
	for _, f := range m.Files {
		ct := f.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		part, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {mime.FormatMediaType(ct, map[string]string{"name": f.Name})},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": f.Name})},
			"Content-Transfer-Encoding": {"base64"},
		})
		if err != nil {
			return err
		}
		if err := writeBase64Lines(part, f.Data); err != nil {
			return err
		}
	}
	return mw.Close()
}

// writeBase64Lines writes data in base64 lines of 76 characters (RFC 2045).
func writeBase64Lines(w io.Writer, data []byte) error {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 0 {
		n := min(76, len(enc))
		if _, err := io.WriteString(w, enc[:n]+"\r\n"); err != nil {
			return err
		}
		enc = enc[n:]
	}
	return nil
}

// smtpRetry: 4xx replies are transient, 5xx final.
func smtpRetry(err error) bool {
	var te interface{ Temporary() bool }
	if errors.As(err, &te) {
		return te.Temporary()
	}
	var pe *textproto.Error
	if errors.As(err, &pe) {
		return pe.Code/100 == 4
	}
	return false
}
