package event

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/rules"
)

// A slow subscriber loses events without ever blocking the publisher, and
// every loss is counted, per subscriber and in /metrics.
func TestDropsAreCountedNeverBlocking(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := NewBus(reg)
	slow := b.Subscribe(1)
	defer slow.Close()
	fast := b.Subscribe(10)
	defer fast.Close()
	for i := range 3 {
		b.AlarmChanged(rules.Alarm{ID: "a"}, rules.Transition{AlarmID: "a", At: time.Unix(int64(i), 0)})
	}
	if slow.Dropped() != 2 || fast.Dropped() != 0 {
		t.Fatalf("dropped: slow %d, fast %d", slow.Dropped(), fast.Dropped())
	}
	if n := testutil.ToFloat64(b.dropped); n != 2 {
		t.Fatalf("gateway_events_dropped_total = %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "gateway_events_dropped_total"); err != nil || n != 1 {
		t.Fatalf("metric not registered: %d %v", n, err)
	}
	if len(fast.C) != 3 {
		t.Fatalf("fast subscriber got %d of 3", len(fast.C))
	}
}
