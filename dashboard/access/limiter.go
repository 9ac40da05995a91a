package access

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// limiter holds one token bucket per key (a client IP, a username) for
// failed logins, in a map of at most max entries: the least recently failed
// key is evicted (and counted) to make room, so outside input cannot grow it.
// A key with no failures has no entry and is never limited.
type limiter struct {
	mu      sync.Mutex
	max     int
	every   rate.Limit
	burst   int
	order   *list.List // of *bucket, most recently failed first
	buckets map[string]*list.Element
	evicted *atomic.Uint64
}

type bucket struct {
	key string
	lim *rate.Limiter
}

func newLimiter(max int, every rate.Limit, burst int, evicted *atomic.Uint64) *limiter {
	return &limiter{max: max, every: every, burst: burst, order: list.New(), buckets: map[string]*list.Element{}, evicted: evicted}
}

// wait is how long key must wait before another try; 0: it may try now.
func (l *limiter) wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.buckets[key]
	if !ok {
		return 0
	}
	lim := e.Value.(*bucket).lim
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.every) * float64(time.Second))
}

// fail takes a token from key's bucket, creating it (and evicting the least
// recently failed one when full).
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.buckets[key]
	if ok {
		l.order.MoveToFront(e)
	} else {
		if l.order.Len() >= l.max {
			last := l.order.Back()
			l.order.Remove(last)
			delete(l.buckets, last.Value.(*bucket).key)
			l.evicted.Add(1)
		}
		e = l.order.PushFront(&bucket{key: key, lim: rate.NewLimiter(l.every, l.burst)})
		l.buckets[key] = e
	}
	e.Value.(*bucket).lim.AllowN(now, 1)
}

func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}
