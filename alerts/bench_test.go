package alerts_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/propgate/gateway/rules"
)

// BenchmarkAlarmFlood: 1,000 alarms within 10 seconds (one every 10 ms on
// the injected clock) while the on-call engineer, then the shift lead,
// are being told. Reports the messages that reach each person and the
// router's cost per alarm.
func BenchmarkAlarmFlood(b *testing.B) {
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		h := newAlertHarness(b, nil)
		b.StartTimer()
		start := time.Now()
		for i := 0; i < 1000; i++ {
			h.fire(fmt.Sprintf("r%04d", i), "b3-pump", "water_supply", rules.High)
			h.advance(10 * time.Millisecond)
		}
		h.advance(10 * time.Second) // the grouping window closes
		routing := time.Since(start)
		msgs := h.settled()
		b.StopTimer()
		perPerson := map[string]int{}
		for _, m := range msgs {
			perPerson[m[:4]]++
		}
		b.ReportMetric(float64(len(msgs)), "messages")
		b.ReportMetric(float64(routing.Microseconds())/1000, "µs-routing/alarm")
		b.Logf("1,000 alarms in 10 s → %d messages %v; routing took %s", len(msgs), perPerson, routing)
	}
}
