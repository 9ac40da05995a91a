package workorder_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	. "github.com/propgate/gateway/rules/workorder"
)

// BenchmarkAlarmWriteWhileScreensReconnect: the alarm write on the ingest
// path (a point that fires an alarm: alarm row, transition, work order,
// history, all committed) with 400,000 transitions already stored, alone
// and while 20 screens reconnect in a loop (each connect reads the open
// alarms, the open work orders and this month's KPIs, as the websocket
// snapshot does), each screen every 200 ms: 100 snapshots a second, a
// storm. Reads use their own connections, the KPIs read only the month's
// transitions plus each alarm's state at its start, and the month-to-date
// figures are computed at most every 30 s, so the write's latency should
// not move. Reports p50 and p99 per write.
func BenchmarkAlarmWriteWhileScreensReconnect(b *testing.B) {
	for _, screens := range []int{0, 20} {
		b.Run(fmt.Sprintf("screens=%d", screens), func(b *testing.B) {
			c := newClock()
			store, err := sqlite.OpenRules(filepath.Join(b.TempDir(), "gw.db"), false)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			seedHistory(b, store, c.t, 400_000)
			wo := NewService(Config{ReopenWindow: time.Nanosecond}, testAssets, store, quietLog(), c.now)
			cfg := testConfig()
			cfg.SetDefaults()
			if err := cfg.Validate(testAssets); err != nil {
				b.Fatal(err)
			}
			e := rules.NewEngine(cfg, testAssets, rules.Deps{Store: store, OnFire: wo, Log: quietLog(), Now: c.now})
			if err := e.Load(context.Background()); err != nil {
				b.Fatal(err)
			}
			reports := NewReports(store, rules.NewEquipment(e, store), Config{}, time.Now) // the screens' clock: real time, so the 30 s cache ages as it would
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range screens {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(200 * time.Millisecond)
					defer tick.Stop()
					for ctx.Err() == nil {
						e.Alarms(func(a *rules.Alarm) bool { return a.State != rules.StateNormal })
						if _, err := store.WorkOrders(ctx, Filter{Open: true, Limit: 200}); err != nil && ctx.Err() == nil {
							b.Error(err)
							return
						}
						if _, err := reports.MonthToDate(ctx); err != nil && ctx.Err() == nil {
							b.Error(err)
							return
						}
						select {
						case <-ctx.Done():
						case <-tick.C:
						}
					}
				}()
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				v := 0.5 // normal
				if i%2 == 0 {
					v = 0.0 // mains lost: fires, opens (or appends to) a work order
				}
				start := time.Now()
				e.Process([]collectors.Point{pt("b3-panel", "mains_present", collectors.Bool(v > 0))})
				lat = append(lat, time.Since(start))
				c.advance(time.Second)
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// seedHistory stores n transitions of other alarms over the previous year.
func seedHistory(b *testing.B, store *sqlite.Rules, now time.Time, n int) {
	b.Helper()
	const batch = 2000
	start := now.AddDate(-1, 0, 0)
	step := now.Sub(start) / time.Duration(n)
	for i := 0; i < n; i += batch {
		id := fmt.Sprintf("old-rule:asset-%03d", (i/batch)%300)
		a := &rules.Alarm{ID: id, Rule: "old-rule", Asset: fmt.Sprintf("asset-%03d", (i/batch)%300), State: rules.StateNormal}
		tr := make([]rules.Transition, 0, batch)
		for j := range batch {
			from, to := rules.StateNormal, rules.StateUnacked
			if j%2 == 1 {
				from, to = to, from
			}
			tr = append(tr, rules.Transition{AlarmID: id, From: from, To: to, At: start.Add(time.Duration(i+j) * step), By: rules.ByEngine})
		}
		if err := store.SaveAlarm(context.Background(), a, tr); err != nil {
			b.Fatal(err)
		}
	}
}
