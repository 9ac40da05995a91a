// Package delivery sends one HTTP request to an outside receiver (a chat
// robot, an SMS gateway, a CMMS webhook) and says whether a failure is worth
// retrying; Retry drives attempts with exponential backoff. Errors never
// carry the secrets that robots put in their URLs.
package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signature headers. X-Signature (HMAC over the body alone) is kept for
// receivers written against earlier versions; X-Signature-V2 covers the
// timestamp too, so a receiver can refuse a replayed request by checking
// X-Signature-Timestamp against its own clock.
const (
	HeaderSignature   = "X-Signature"           // sha256=<hex HMAC-SHA256(secret, body)>
	HeaderTimestamp   = "X-Signature-Timestamp" // Unix seconds when the request was signed
	HeaderSignatureV2 = "X-Signature-V2"        // sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
)

// maxAnswer is how much of a receiver's answer is read (errors quote it).
const maxAnswer = 4096

// Request is one delivery.
type Request struct {
	Method      string // default POST
	URL         string
	Body        []byte
	ContentType string      // default application/json
	Headers     http.Header // extra headers (Idempotency-Key...)
	Secret      string      // signs the body (see the Header constants); "" leaves it unsigned
	Now         func() time.Time
	// Check looks at a 2xx answer's body: robots answer 200 with an error
	// code inside. A non-nil error is final (not retried). Optional.
	Check func(body []byte) error
}

// Errors, matched with errors.Is.
var (
	ErrRefused     = errors.New("refused the message")  // 4xx or a robot error code: retrying will not help
	ErrUnavailable = errors.New("receiver unavailable") // 5xx or 429
	ErrTransport   = errors.New("no answer")            // network error, timeout
)

// StatusError is a receiver's non-2xx answer.
type StatusError struct {
	Code       int
	Status     string        // "500 Internal Server Error"
	Body       string        // the start of the answer, secrets removed
	RetryAfter time.Duration // 429: what Retry-After (or x-ogw-ratelimit-reset) asked for
}

func (e *StatusError) Error() string {
	if e.Code >= 500 || e.Code == http.StatusTooManyRequests {
		return "answered " + e.Status
	}
	return strings.TrimSpace("refused the message: " + e.Status + " " + e.Body)
}

// Is makes errors.Is(err, ErrRefused / ErrUnavailable / ErrThrottled) work;
// a 429 is both unavailable and throttled.
func (e *StatusError) Is(target error) bool {
	if e.Code == http.StatusTooManyRequests && target == ErrThrottled {
		return true
	}
	if e.Code >= 500 || e.Code == http.StatusTooManyRequests {
		return target == ErrUnavailable
	}
	return target == ErrRefused
}

// Retryable says whether an error from Post is worth another attempt.
func Retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTransport)
}

// Sign returns the signature headers for body at ts.
func Sign(secret string, body []byte, ts time.Time) http.Header {
	h := http.Header{}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	h.Set(HeaderSignature, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	unix := strconv.FormatInt(ts.Unix(), 10)
	mac = hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unix + "."))
	mac.Write(body)
	h.Set(HeaderTimestamp, unix)
	h.Set(HeaderSignatureV2, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// Verify checks X-Signature-V2 and that the timestamp is within maxAge of
// now: what a receiver does (and the tests).
func Verify(secret string, body []byte, h http.Header, now time.Time, maxAge time.Duration) bool {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxAge || d < -maxAge {
		return false
	}
	want := Sign(secret, body, time.Unix(ts, 0)).Get(HeaderSignatureV2)
	return hmac.Equal([]byte(want), []byte(h.Get(HeaderSignatureV2)))
}

// Post sends the request (client nil: http.DefaultClient) and classifies the outcome: nil for 2xx (and a
// Check that passed); retry for 5xx, 429 and network errors; no retry for
// 4xx and robot error codes. The error never contains the URL's query
// values, user info or token-like path segments, nor the secret.
func Post(ctx context.Context, client *http.Client, r Request) (retry bool, err error) {
	secrets := urlSecrets(r.URL)
	if r.Secret != "" {
		secrets = append(secrets, r.Secret)
	}
	retry, err = post(ctx, client, r)
	if err != nil {
		err = &redacted{err: err, secrets: secrets}
	}
	return retry, err
}

func post(ctx context.Context, client *http.Client, r Request) (bool, error) {
	if client == nil {
		client = http.DefaultClient
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return false, fmt.Errorf("bad request to %s: %w", Redact(r.URL), unwrapURL(err))
	}
	ct := r.ContentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	for k, vs := range r.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Secret != "" {
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		for k, vs := range Sign(r.Secret, r.Body, now()) {
			req.Header[k] = vs
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error quotes the full URL: keep only the operation and cause.
		return true, fmt.Errorf("%w: %s %s: %w", ErrTransport, method, Redact(r.URL), unwrapURL(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Code: resp.StatusCode, Status: resp.Status, Body: strings.TrimSpace(string(answer))}
		if resp.StatusCode == http.StatusTooManyRequests {
			se.RetryAfter = retryAfter(resp.Header, time.Now())
		} else if r.Check != nil {
			// Some robots answer their frequency limit with a 4xx and their
			// code in the body (Feishu 400 {"code":9499}): a throttle, not a refusal.
			var te *ThrottledError
			if err := r.Check(answer); errors.As(err, &te) {
				te.RetryAfter = retryAfter(resp.Header, time.Now())
				return false, &checkError{err}
			}
		}
		return errors.Is(se, ErrUnavailable), se
	}
	if r.Check != nil {
		if err := r.Check(answer); err != nil {
			var te *ThrottledError
			if errors.As(err, &te) && te.RetryAfter == 0 {
				te.RetryAfter = retryAfter(resp.Header, time.Now())
			}
			return false, &checkError{err}
		}
	}
	return false, nil
}

// checkError is a Check failure: its own text, matched as ErrRefused.
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }
func (e *checkError) Is(target error) bool {
	return target == ErrRefused && !errors.Is(e.err, ErrThrottled)
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redacted removes secrets from an error's text, keeping its chain for
// errors.Is / errors.As.
type redacted struct {
	err     error
	secrets []string
}

func (e *redacted) Error() string { return Scrub(e.err.Error(), e.secrets...) }
func (e *redacted) Unwrap() error { return e.err }

// Scrub replaces every occurrence of each secret (and its URL-escaped form)
// in s with REDACTED.
func Scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue // too short to be a secret; replacing it would garble the text
		}
		s = strings.ReplaceAll(s, sec, "REDACTED")
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, "REDACTED")
		}
	}
	return s
}

// urlSecrets lists what in a URL may be a credential: user info, query
// values and token-like path segments.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if tokenLike(seg) {
			out = append(out, seg)
		}
	}
	return out
}

// tokenLike: a path segment that is probably a credential (Feishu's
// /bot/v2/hook/<uuid>, Slack's /services/T…/B…/<secret>): 8 characters or
// more with a digit, or 20 or more.
func tokenLike(seg string) bool {
	return len(seg) >= 20 || len(seg) >= 8 && strings.ContainsAny(seg, "0123456789")
}

// Redact returns a URL fit for logs and errors: no user info, query values
// replaced by REDACTED, token-like path segments replaced by REDACTED.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		if tokenLike(s) {
			segs[i] = "REDACTED"
		}
	}
	u.Path, u.RawPath = strings.Join(segs, "/"), ""
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// Backoff is exponential: Initial, doubled per attempt up to Max, for at
// most Attempts attempts (0: until the context ends).
type Backoff struct {
	Initial  time.Duration
	Max      time.Duration
	Attempts int
}

// Delay is the wait after attempt try (1-based) failed.
func (b Backoff) Delay(try int) time.Duration {
	d := b.Initial
	for i := 1; i < try && (b.Max == 0 || d < b.Max); i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	return d
}

// Sleep waits for d or until ctx ends (then it returns ctx.Err()). Tests
// inject their own to run without wall-clock waits.
type Sleep func(ctx context.Context, d time.Duration) error

// WallSleep is the real Sleep.
func WallSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry calls attempt until it succeeds, says not to retry, the attempts
// are used up or ctx ends, sleeping the backoff in between. attempt gets the
// 1-based try number and whether it is the last one allowed. It returns the
// last error.
func Retry(ctx context.Context, b Backoff, sleep Sleep, attempt func(try int, last bool) (retry bool, err error)) error {
	if sleep == nil {
		sleep = WallSleep
	}
	for try := 1; ; try++ {
		last := b.Attempts > 0 && try >= b.Attempts
		retry, err := attempt(try, last)
		if err == nil || !retry || last {
			return err
		}
		if serr := sleep(ctx, b.Delay(try)); serr != nil {
			return err
		}
	}
}
