package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/delivery"
)

// Each platform's own frequency-limit answer is recognised as throttling
// (not a refusal to fall back from, not a failure to retry at once), with
// the wait the platform asked for when it said one. The answers are the
// platforms' documented ones:
//   - DingTalk custom robot, over 20 a minute (then 10 minutes' penalty):
//     {"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}
//   - WeCom group robot, over 20 a minute: {"errcode":45009,"errmsg":"api freq out of limit"}
//   - Feishu custom bot, over 100 a minute / 5 a second: code 11232
//     "frequency limited", 9499 "too many request" (HTTP 400), and the Open
//     Platform's 99991400 with HTTP 429 and x-ogw-ratelimit-reset.
//   - Slack incoming webhook: HTTP 429 with Retry-After.
func TestPlatformThrottlingAnswers(t *testing.T) {
	cases := []struct {
		name    string
		typ     ChannelType
		status  int
		header  [2]string
		answer  string
		code    int
		wait    time.Duration
		message string
	}{
		{"dingtalk 130101", DingTalk, 200, [2]string{}, `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`, 130101, 0,
			"dingtalk throttled: error 130101: send too fast, exceed 20 times per minute"},
		{"wecom 45009", WeCom, 200, [2]string{}, `{"errcode":45009,"errmsg":"api freq out of limit"}`, 45009, 0, "wecom throttled: error 45009: api freq out of limit"},
		{"feishu 11232", Feishu, 200, [2]string{}, `{"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"}`, 11232, 0,
			"feishu throttled: error 11232: frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"},
		{"feishu 9499 on a 400", Feishu, 400, [2]string{"x-ogw-ratelimit-reset", "52"}, `{"code":9499,"msg":"too many request","data":{}}`, 9499, 52 * time.Second,
			"feishu throttled: error 9499: too many request"},
		{"feishu 429", Feishu, 429, [2]string{"x-ogw-ratelimit-reset", "7"}, `{"code":99991400,"msg":"request trigger frequency limit"}`, 0, 7 * time.Second,
			"feishu answered 429 Too Many Requests"},
		{"slack 429", Slack, 429, [2]string{"Retry-After", "30"}, `rate_limited`, 0, 30 * time.Second, "slack answered 429 Too Many Requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.header[0] != "" {
					w.Header().Set(c.header[0], c.header[1])
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.answer)
			}))
			defer srv.Close()
			n := mustNotifier(t, ChannelConfig{Type: c.typ, URL: srv.URL + "/send?access_token=abcdef0123456789"}, nil, time.Now)
			retry, err := n.Notify(context.Background(), msg())
			if !errors.Is(err, delivery.ErrThrottled) || errors.Is(err, delivery.ErrRefused) || err.Error() != c.message {
				t.Fatalf("err %v (throttled %v refused %v)", err, errors.Is(err, delivery.ErrThrottled), errors.Is(err, delivery.ErrRefused))
			}
			var te *delivery.ThrottledError
			if c.code != 0 && (!errors.As(err, &te) || te.Code != c.code) {
				t.Fatalf("code: %+v", te)
			}
			if d, ok := delivery.RetryAfter(err); d != c.wait || ok != (c.wait > 0) {
				t.Fatalf("retry after %v %v, want %v", d, ok, c.wait)
			}
			_ = retry
		})
	}
	// Another robot error is a refusal, not throttling.
	srv, _ := receiver(t, 200, `{"errcode":310000,"errmsg":"sign not match"}`)
	_, err := mustNotifier(t, ChannelConfig{Type: DingTalk, URL: srv.URL}, nil, time.Now).Notify(context.Background(), msg())
	if errors.Is(err, delivery.ErrThrottled) || !errors.Is(err, delivery.ErrRefused) {
		t.Fatalf("310000: %v", err)
	}
}

// The documented limits are the defaults, a channel may only lower them,
// and robots mention everyone a merged message is for.
func TestPlatformLimits(t *testing.T) {
	for typ, want := range map[ChannelType]Limit{
		DingTalk: {PerMinute: 20, Penalty: 10 * time.Minute},
		WeCom:    {PerMinute: 20, Penalty: time.Minute},
		Feishu:   {PerMinute: 100, PerSecond: 5, Penalty: time.Minute},
		Slack:    {PerSecond: 1, Penalty: 30 * time.Second},
		SMS:      {Penalty: time.Minute},
	} {
		c := ChannelConfig{Type: typ}
		if got := c.EffectiveLimit(); got != want {
			t.Errorf("%s: %+v, want %+v", typ, got, want)
		}
	}
	c := ChannelConfig{Type: DingTalk, URL: "https://oapi.dingtalk.com/robot/send?access_token=x", Limit: Limit{PerMinute: 30}}
	if err := c.Validate(); err == nil || err.Error() != "limit.per_minute: 30 is more than a dingtalk robot takes (20 a minute; beyond it the platform throttles the robot); fix: 20 or less, or leave it out for the platform's limit" {
		t.Fatalf("over the platform's limit: %v", err)
	}
	c.Limit = Limit{PerMinute: 10}
	if err := c.Validate(); err != nil || c.EffectiveLimit().PerMinute != 10 {
		t.Fatalf("lower: %v", err)
	}
	srv, got := receiver(t, 200, `{"errcode":0}`)
	m := msg()
	m.Mentions = []string{"13800000001", "13800000002"}
	mustNotifier(t, ChannelConfig{Type: DingTalk, URL: srv.URL}, nil, time.Now).Notify(context.Background(), m)
	if g := got(); len(g) != 1 || !strings.Contains(g[0].body, `"atMobiles":["13800000001","13800000002"]`) {
		t.Fatalf("mentions: %+v", g)
	}
}
