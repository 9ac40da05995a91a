// Package sdnotify tells systemd how the gateway is doing (Type=notify):
// READY=1 once storage and collectors run, STOPPING=1 at shutdown, and a
// watchdog that pings (WATCHDOG=1) only while the loops that matter are
// seen to advance, so systemd restarts a gateway that is hung rather than
// one that merely still answers signals. Outside systemd (no NOTIFY_SOCKET)
// everything here is a no-op.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
)

// Notify sends state to $NOTIFY_SOCKET (no-op without it).
func Notify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

// WatchdogInterval is how often systemd expects a ping ($WATCHDOG_USEC, for
// this process per $WATCHDOG_PID); 0 when the watchdog is off.
func WatchdogInterval() (time.Duration, error) {
	return daemon.SdWatchdogEnabled(false)
}

// Loop is a counter that must keep advancing while its loop is alive: a
// metric family in the registry (summed over its labels) and how long it may
// stand still before the loop counts as stuck.
type Loop struct {
	Metric string        // e.g. gateway_rules_ticks_total
	Within time.Duration // the loop advances it at least this often
}

// Liveness watches loop counters through the metrics registry, so the
// loops need no hook of their own: they already count their passes.
type Liveness struct {
	g     prometheus.Gatherer
	loops []Loop
	now   func() time.Time

	mu   sync.Mutex
	last map[string]sample
}

type sample struct {
	value float64
	at    time.Time // when value was first seen
}

// NewLiveness watches loops in g; now is the clock.
func NewLiveness(g prometheus.Gatherer, now func() time.Time, loops ...Loop) *Liveness {
	return &Liveness{g: g, loops: loops, now: now, last: map[string]sample{}}
}

// ErrStuck is wrapped by Check's error when a loop has not advanced.
var ErrStuck = errors.New("loop stuck")

// Check samples every loop's counter and reports the loops that have not
// advanced within their allowance (wrapping ErrStuck). The first sample of
// a loop starts its allowance.
func (l *Liveness) Check() error {
	mfs, err := l.g.Gather()
	if err != nil && len(mfs) == 0 {
		return fmt.Errorf("liveness: gather metrics: %w", err)
	}
	values := map[string]float64{}
	found := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				values[mf.GetName()] += c.GetValue()
				found[mf.GetName()] = true
			}
		}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var stuck []string
	for _, lp := range l.loops {
		v, ok := values[lp.Metric]
		prev, seen := l.last[lp.Metric]
		switch {
		case !ok || !found[lp.Metric]:
			// Not registered yet (a vector with no series): wait for it
			// within the same allowance as a stuck loop.
			if !seen {
				l.last[lp.Metric] = sample{value: -1, at: now}
				continue
			}
			if now.Sub(prev.at) > lp.Within {
				stuck = append(stuck, fmt.Sprintf("%s: no samples for %s", lp.Metric, now.Sub(prev.at).Round(time.Second)))
			}
		case !seen || v != prev.value:
			l.last[lp.Metric] = sample{value: v, at: now}
		case now.Sub(prev.at) > lp.Within:
			stuck = append(stuck, fmt.Sprintf("%s: unchanged at %g for %s", lp.Metric, v, now.Sub(prev.at).Round(time.Second)))
		}
	}
	if len(stuck) > 0 {
		sort.Strings(stuck)
		return fmt.Errorf("%w: %s", ErrStuck, strings.Join(stuck, "; "))
	}
	return nil
}

// Watchdog pings systemd every Every while Check passes. A failing check
// is logged once per episode and the pings stop, so systemd's WatchdogSec
// runs out and it restarts the gateway.
type Watchdog struct {
	Every  time.Duration // half of WatchdogSec is what systemd recommends
	Check  func() error
	Notify func(state string) error // Notify in production
	Log    *slog.Logger
}

// Run pings until ctx ends.
func (w *Watchdog) Run(ctx context.Context) error {
	t := time.NewTicker(w.Every)
	defer t.Stop()
	failing := false
	for {
		if err := w.Check(); err != nil {
			if !failing {
				w.Log.Error("watchdog: not pinging systemd, it will restart the gateway", "err", err)
				_ = w.Notify("STATUS=unhealthy: " + err.Error())
			}
			failing = true
		} else {
			if failing {
				w.Log.Info("watchdog: loops advancing again")
				_ = w.Notify("STATUS=running")
			}
			failing = false
			if err := w.Notify("WATCHDOG=1"); err != nil {
				w.Log.Warn("watchdog: notify", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
