package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

// The gateway under systemd (Type=notify, WatchdogSec=2s, stderr to the
// journal), with the socket and the stream played by the test: READY=1
// once it serves, WATCHDOG=1 about every second while its loops advance,
// STOPPING=1 on SIGTERM; log lines carry no timestamp of their own.
func TestSystemdNotifyAndWatchdogIntegration(t *testing.T) {
	testenv.Integration(t)
	in := testenv.StartInflux(t)
	broker := testenv.StartMosquitto(t)
	s := newSite(t, in, broker)

	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	journal, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(journal.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	s.env = append(s.env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=2000000", fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	s.stderrFile = journal
	started := time.Now()
	s.start()

	next := func(within time.Duration) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(within))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			log, _ := os.ReadFile(journal.Name())
			t.Fatalf("no notification within %s: %v; log:\n%s", within, err, log)
		}
		return string(buf[:n])
	}
	if got := next(5 * time.Second); got != "READY=1\nSTATUS=running" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	pings := 0
	for pings < 3 {
		switch got := next(3 * time.Second); got {
		case "WATCHDOG=1":
			pings++
		default:
			t.Fatalf("unexpected notification %q", got)
		}
	}
	if d := time.Since(started); d < 2*time.Second {
		t.Errorf("3 pings within %s: the interval is half of WatchdogSec (1 s)", d)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	for got := next(5 * time.Second); got != "STOPPING=1"; got = next(5 * time.Second) {
		if got != "WATCHDOG=1" {
			t.Fatalf("before STOPPING=1: %q", got)
		}
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	log, _ := os.ReadFile(journal.Name())
	if !strings.Contains(string(log), "msg=\"gateway running\"") {
		t.Fatalf("log:\n%s", log)
	}
	if strings.Contains(string(log), "time=") {
		t.Errorf("timestamps in the journal (journald adds its own):\n%.2000s", log)
	}
}
