package modbus

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/gateway/testenv"
)

// RTU over TCP against pymodbus (Debian's python3-pymodbus), an independent
// implementation: framing, CRC, unit id, reads and a verified write.
func TestRTUOverTCPAgainstPymodbus(t *testing.T) {
	py := "/usr/bin/python3"
	script := filepath.Join(testenv.RepoRoot(t), "testdata", "peers", "pymodbus_rtu_over_tcp.py")
	port := testenv.FreePort(t)
	cmd := exec.Command(py, script, fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pymodbus (make deps installs python3-pymodbus): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	c := New(Config{Devices: []Device{{Asset: "meter", Transport: RTUOverTCP, Address: fmt.Sprintf("127.0.0.1:%d", port), UnitID: 7,
		PollInterval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, CommLostAfter: 1000,
		Registers: []Register{{Name: "a", Address: 0}, {Name: "b", Address: 3, Type: TypeUint32}, {Name: "sp", Address: 12, Writable: true}}}}},
		nil, NewMetrics(prometheus.NewRegistry()), quiet())
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	if err := c.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	// pymodbus takes a moment to start listening: the collector retries.
	rec.waitFor(t, "meter.a", 20*time.Second, func(p collectors.Point) bool { return p.Quality == collectors.QualityGood })
	if p, _ := rec.get("meter.a"); p.Value.I != 100 {
		t.Fatalf("a = %v, want 100", p.Value)
	}
	if p, _ := rec.get("meter.b"); p.Value.I != 103<<16|104 {
		t.Fatalf("b = %v, want %d", p.Value, 103<<16|104)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, "meter", "sp", collectors.Int(4242)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "meter.sp", 2*time.Second, func(p collectors.Point) bool { return p.Value.I == 4242 })
}
