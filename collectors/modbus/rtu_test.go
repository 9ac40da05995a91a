package modbus

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/testenv"
)

// RTU over TCP against pymodbus (Debian's python3-pymodbus), an independent
// implementation: framing, CRC, unit id, reads and a verified write.
func TestRTUOverTCPAgainstPymodbusIntegration(t *testing.T) {
	testenv.Integration(t)
	py := "/usr/bin/python3"
	script := filepath.Join(testenv.RepoRoot(t), "testdata", "peers", "pymodbus_rtu_over_tcp.py")
	port := testenv.FreePort(t)
	cmd := exec.Command(py, script, fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pymodbus (make deps installs python3-pymodbus): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	c, rec, _ := start(t, Config{Devices: []Device{{Asset: "meter", Transport: RTUOverTCP, Address: fmt.Sprintf("127.0.0.1:%d", port), UnitID: 7,
		PollInterval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, CommLostAfter: 1000,
		Registers: []Register{{Name: "a", Address: 0}, {Name: "b", Address: 3, Type: TypeUint32}, {Name: "sp", Address: 12, Writable: true}}}}})
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

// Serial RTU through goburrow's serial handler, over a pseudo-terminal pair
// made by socat, against libmodbus (C) serving RTU on the other end.
func TestSerialRTUAgainstLibmodbusIntegration(t *testing.T) {
	testenv.Integration(t)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "gateway-tty"), filepath.Join(dir, "device-tty")
	socat := exec.Command("socat", "pty,raw,echo=0,link="+ours, "pty,raw,echo=0,link="+theirs)
	if err := socat.Start(); err != nil {
		t.Fatalf("start socat (make deps installs it): %v", err)
	}
	t.Cleanup(func() { socat.Process.Kill(); socat.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := os.Stat(theirs); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socat did not create the pty pair")
		}
		time.Sleep(10 * time.Millisecond)
	}
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "peers", "libmodbus_rtu_slave.c")
	bin := filepath.Join(dir, "peer")
	if out, err := exec.Command("cc", "-o", bin, src, "-lmodbus").CombinedOutput(); err != nil {
		t.Fatalf("build the libmodbus peer (make deps installs libmodbus-dev): %v\n%s", err, out)
	}
	peer := exec.Command(bin, theirs)
	var peerLog bytes.Buffer
	peer.Stderr = &peerLog
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		peer.Process.Kill()
		peer.Wait()
		if t.Failed() {
			t.Logf("libmodbus peer: %s", peerLog.String())
		}
	})

	_, rec, _ := start(t, Config{Devices: []Device{{Asset: "meter", Transport: RTU, Serial: Serial{Port: ours, BaudRate: 19200, Parity: "E"}, UnitID: 5,
		PollInterval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond, CommLostAfter: 1000,
		Registers: []Register{{Name: "a", Address: 1}, {Name: "b", Address: 2, Type: TypeInt32, Order: CDAB}}}}})
	rec.waitFor(t, "meter.a", 20*time.Second, func(p collectors.Point) bool { return p.Quality == collectors.QualityGood })
	if p, _ := rec.get("meter.a"); p.Value.I != 201 {
		t.Fatalf("a = %v, want 201", p.Value)
	}
	if p, _ := rec.get("meter.b"); p.Value.I != 203<<16|202 {
		t.Fatalf("b = %v, want %d (CDAB)", p.Value, 203<<16|202)
	}
}
