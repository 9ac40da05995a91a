package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrThrottled is a receiver saying "too many messages, wait": HTTP 429, or
// a robot's own frequency-limit code in a 200 answer (DingTalk 130101, WeCom
// 45009, Feishu 11232...). Retrying at once makes it worse: the sender must
// stop sending to that receiver for a while (errors.Is).
var ErrThrottled = errors.New("throttled")

// ThrottledError is a robot's frequency-limit answer.
type ThrottledError struct {
	Code       int           // the platform's error code (0 for HTTP 429)
	Msg        string        // the platform's message
	RetryAfter time.Duration // what the receiver asked for (Retry-After, x-ogw-ratelimit-reset); 0: not said
}

func (e *ThrottledError) Error() string {
	return strings.TrimSpace(fmt.Sprintf("throttled: error %d: %s", e.Code, e.Msg))
}

// Is makes errors.Is(err, ErrThrottled) work.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// RetryAfter says how long the receiver asked the sender to wait, if it said.
func RetryAfter(err error) (time.Duration, bool) {
	var te *ThrottledError
	if errors.As(err, &te) && te.RetryAfter > 0 {
		return te.RetryAfter, true
	}
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// retryAfter reads Retry-After (seconds or an HTTP date) or Feishu's
// x-ogw-ratelimit-reset (seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After", "X-Ogw-Ratelimit-Reset"} {
		v := strings.TrimSpace(h.Get(k))
		if v == "" {
			continue
		}
		if s, err := strconv.Atoi(v); err == nil && s > 0 {
			return time.Duration(min(s, 24*3600)) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return min(t.Sub(now), 24*time.Hour)
		}
	}
	return 0
}
