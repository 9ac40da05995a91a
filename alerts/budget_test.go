package alerts

import (
	"testing"
	"time"
)

// A token bucket of n a window never lets more than n through in any
// sliding window, however hard it is pushed, and still carries most of n.
func TestBucketNeverExceedsItsWindow(t *testing.T) {
	for _, c := range []struct {
		n      int
		window time.Duration
	}{{20, time.Minute}, {100, time.Minute}, {5, time.Second}, {1, time.Second}} {
		b := bucket(c.n, c.window)
		start := time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC)
		var sent []time.Time
		step := c.window / 1000
		for now := start; now.Before(start.Add(10 * c.window)); now = now.Add(step) {
			if b.TokensAt(now) >= 1 && b.AllowN(now, 1) {
				sent = append(sent, now)
			}
		}
		for i := range sent {
			n := 0
			for _, s := range sent[i:] {
				if s.Sub(sent[i]) < c.window {
					n++
				}
			}
			if n > c.n {
				t.Fatalf("%d per %s: %d in the window from %s", c.n, c.window, n, sent[i].Sub(start))
			}
		}
		if floor := 10 * c.n * 8 / 10; len(sent) < floor && c.n > 1 {
			t.Errorf("%d per %s: only %d in 10 windows", c.n, c.window, len(sent))
		}
	}
}
