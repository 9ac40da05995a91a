package sdnotify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// notifySocket listens where the test points NOTIFY_SOCKET, like systemd.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func read(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyReachesSocket(t *testing.T) {
	conn := notifySocket(t)
	if err := Notify("READY=1\nSTATUS=running"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, conn); got != "READY=1\nSTATUS=running" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifyWithoutSystemdIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	d, err := WatchdogInterval()
	if err != nil || d != 30*time.Second {
		t.Fatalf("got %v, %v", d, err)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if d, _ := WatchdogInterval(); d != 0 {
		t.Fatalf("watchdog off: got %v", d)
	}
}

func TestLivenessNeedsEveryLoopToAdvance(t *testing.T) {
	reg := prometheus.NewRegistry()
	rules := prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_rules_ticks_total"})
	polls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_modbus_polls_total"}, []string{"device", "result"})
	reg.MustRegister(rules, polls)
	now := time.Unix(1000, 0)
	l := NewLiveness(reg, func() time.Time { return now }, Loop{"gateway_rules_ticks_total", 5 * time.Second}, Loop{"gateway_modbus_polls_total", 10 * time.Second})
	if err := l.Check(); err != nil {
		t.Fatalf("first sample: %v", err)
	}
	for range 3 { // both advance (the polls over two devices, any result)
		now = now.Add(4 * time.Second)
		rules.Inc()
		polls.WithLabelValues("pump", "ok").Inc()
		polls.WithLabelValues("panel", "error").Inc()
		if err := l.Check(); err != nil {
			t.Fatalf("advancing: %v", err)
		}
	}
	now = now.Add(6 * time.Second) // rules stand still 6 s > 5 s; polls 6 s < 10 s
	err := l.Check()
	if !errors.Is(err, ErrStuck) || !strings.Contains(err.Error(), "gateway_rules_ticks_total: unchanged at 3 for 6s") || strings.Contains(err.Error(), "modbus") {
		t.Fatalf("rules stuck: %v", err)
	}
	rules.Inc()
	if err := l.Check(); err != nil {
		t.Fatalf("rules advanced again: %v", err)
	}
}

func TestLivenessMissingMetricIsStuckAfterAllowance(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Unix(1000, 0)
	l := NewLiveness(reg, func() time.Time { return now }, Loop{"gateway_alert_ticks_total", 5 * time.Second})
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(6 * time.Second)
	if err := l.Check(); !errors.Is(err, ErrStuck) || !strings.Contains(err.Error(), "no samples") {
		t.Fatalf("got %v", err)
	}
}

// TestWatchdogPingsOnlyWhileLoopsAdvance runs a loop that ticks every
// second like the rule engine's, then stops it (stuck) and starts it again:
// pings every Every while it ticks, none once it has stood still longer
// than its allowance, pings again when it resumes.
func TestWatchdogPingsOnlyWhileLoopsAdvance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		ticks := prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_playbook_ticks_total"})
		reg.MustRegister(ticks)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		pause := make(chan bool)
		go func() { // the loop
			t := time.NewTicker(time.Second)
			defer t.Stop()
			paused := false
			for {
				select {
				case <-ctx.Done():
					return
				case paused = <-pause:
				case <-t.C:
					if !paused {
						ticks.Inc()
					}
				}
			}
		}()
		var pings, statuses []string
		wd := &Watchdog{Every: 5 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Check: NewLiveness(reg, time.Now, Loop{"gateway_playbook_ticks_total", 10 * time.Second}).Check,
			Notify: func(s string) error {
				if s == "WATCHDOG=1" {
					pings = append(pings, time.Now().Format("05"))
				} else {
					statuses = append(statuses, s)
				}
				return nil
			}}
		go wd.Run(ctx)

		time.Sleep(21 * time.Second) // pings at 0, 5, 10, 15, 20
		synctest.Wait()
		if len(pings) != 5 {
			t.Fatalf("alive: %d pings %v, want 5", len(pings), pings)
		}
		pause <- true                // stuck from ~21 s
		time.Sleep(40 * time.Second) // checks at 25 (sees the last tick), 30 ok, 35 (10 s still) ok?, 40.. stuck
		synctest.Wait()
		stuckPings := len(pings) - 5
		// The last tick is at 21 s; it is first seen unchanged at 25 s, so
		// the check fails from 40 s on (15 s later > 10 s): pings at 25,
		// 30, 35 only, none at 40, 45, 50, 55, 60.
		if stuckPings != 3 {
			t.Fatalf("stuck: %d pings after the loop stopped, want 3 (%v)", stuckPings, pings)
		}
		if len(statuses) != 1 || !strings.Contains(statuses[0], "STATUS=unhealthy: loop stuck: gateway_playbook_ticks_total") {
			t.Fatalf("statuses %q", statuses)
		}
		pause <- false
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if len(pings) < 9 || statuses[len(statuses)-1] != "STATUS=running" {
			t.Fatalf("resumed: pings %v statuses %q", pings, statuses)
		}
	})
}
