package guard

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDoRecoversCountsAndLogs(t *testing.T) {
	var buf bytes.Buffer
	reg := prometheus.NewRegistry()
	g := New(reg, slog.New(slog.NewTextHandler(&buf, nil)))
	var s []int
	if g.Do("playbooks", func() { _ = s[3] }) {
		t.Fatal("a panicking pass reported success")
	}
	if !g.Do("playbooks", func() {}) {
		t.Fatal("a clean pass reported failure")
	}
	if n := testutil.ToFloat64(g.panics.WithLabelValues("playbooks")); n != 1 {
		t.Fatalf("counted %v panics", n)
	}
	if !strings.Contains(buf.String(), "index out of range") || !strings.Contains(buf.String(), "component=playbooks") {
		t.Fatalf("log: %s", buf.String())
	}
	var nilGuard *Guard
	if !nilGuard.Do("x", func() {}) {
		t.Fatal("nil guard")
	}
}
