// Package testenv starts the real services the integration tests talk to: an
// InfluxDB 1.8 built into bin/influxd by scripts/install-deps.sh, Debian's
// Mosquitto and Debian's PostgreSQL 15 (postgres.go). Each runs on a free loopback port with its data in a temp dir.
// A missing binary fails the test with the command that installs it: tests
// are never skipped for want of a service.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Integration marks a test that needs real services (InfluxDB, Mosquitto,
// pymodbus, Chromium…): it is skipped under `go test -short` and never
// skipped otherwise. Such tests are named …Integration.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs real services (run `make test`)")
	}
}

// RepoRoot finds the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a service started for a test. Stop and Start may be called to
// simulate an outage; the data directory survives them.
type Process struct {
	t     testing.TB
	name  string
	argv  []string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	addr  string
	ready func() bool // answers once the service is usable; default: accepts TCP
	// cred runs the service as another user (PostgreSQL refuses to run as
	// root); stop is the signal that ends it (default SIGTERM).
	cred *syscall.Credential
	stop syscall.Signal
}

func (p *Process) Start() {
	p.t.Helper()
	if p.cmd != nil {
		return
	}
	p.log = &bytes.Buffer{}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("testenv: start %s: %v", p.name, err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	ready := p.ready
	if ready == nil {
		ready = func() bool {
			c, err := net.DialTimeout("tcp", p.addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		}
	}
	for time.Now().Before(deadline) {
		if ready() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop()
	p.t.Fatalf("testenv: %s did not listen on %s within 30s; its output:\n%s", p.name, p.addr, p.log.String())
}

// Stop ends the service (SIGTERM or its own stop signal, then SIGKILL
// after 10s).
func (p *Process) Stop() {
	if p.cmd == nil {
		return
	}
	sig := p.stop
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	p.cmd = nil
}

// Addr is host:port.
func (p *Process) Addr() string { return p.addr }

// Influx is a running InfluxDB 1.8 with its 2.x-compatible API and Flux on.
type Influx struct {
	*Process
	URL      string
	Database string
}

// Bucket is the 2.x-API bucket name for the test database.
func (i *Influx) Bucket() string { return i.Database + "/autogen" }

// StartInflux starts a fresh InfluxDB with one database created.
func StartInflux(t testing.TB) *Influx {
	t.Helper()
	Integration(t)
	bin := filepath.Join(RepoRoot(t), "bin", "influxd")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testenv: %s is missing; run `make deps` (scripts/install-deps.sh) to build InfluxDB 1.8", bin)
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(conf, []byte(InfluxConfig(dir, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	in := &Influx{
		Process:  &Process{t: t, name: "influxd", argv: []string{bin, "-config", conf}, addr: fmt.Sprintf("127.0.0.1:%d", port)},
		URL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		Database: "gateway",
	}
	// influxd accepts connections before its HTTP service answers: wait for /ping.
	in.ready = func() bool {
		resp, err := http.Get(in.URL + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	}
	in.Start()
	t.Cleanup(in.Stop)
	in.Query(t, "CREATE DATABASE "+in.Database)
	return in
}

// InfluxConfig is the influxd config the tests and scripts/run-demo.sh use.
func InfluxConfig(dir string, port int) string {
	return fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, FreePortNoT(), filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), port)
}

// FreePortNoT is FreePort for callers without a testing.TB.
func FreePortNoT() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Query runs an InfluxQL statement through the 1.x API and returns the body.
func (i *Influx) Query(t testing.TB, q string) string {
	t.Helper()
	resp, err := http.PostForm(i.URL+"/query", url.Values{"q": {q}, "db": {i.Database}})
	if err != nil {
		t.Fatalf("testenv: influx query %q: %v", q, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || strings.Contains(b.String(), `"error"`) {
		t.Fatalf("testenv: influx query %q: %s %s", q, resp.Status, b.String())
	}
	return b.String()
}

// Mosquitto is a running broker.
type Mosquitto struct {
	*Process
	URL string
}

// StartMosquitto starts Debian's mosquitto on a free port, anonymous access,
// in-memory persistence (the broker outlives gateway restarts within a test).
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return StartMosquittoWith(t, "")
}

// StartMosquittoWith starts mosquitto like StartMosquitto with extra
// lines appended to its config (a bridge: connection, address, topic…).
func StartMosquittoWith(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	Integration(t)
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Fatal("testenv: mosquitto is not installed; run `make deps` (apt-get install mosquitto)")
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages 1000\nlog_dest stderr\nlog_type error\n", port) + extra
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{
		Process: &Process{t: t, name: "mosquitto", argv: []string{bin, "-c", conf}, addr: fmt.Sprintf("127.0.0.1:%d", port)},
		URL:     fmt.Sprintf("tcp://127.0.0.1:%d", port),
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}
