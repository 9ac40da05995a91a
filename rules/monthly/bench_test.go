package monthly_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/monthly"
	"github.com/propgate/gateway/rules/workorder"
)

// benchSite is a month (November 2026) with 1,000,000 alarm transitions
// (500,000 firings and their returns, over the 150 alarms of 100 assets,
// 50 of them device faults) and 10,000 work orders, on a real SQLite file,
// with the engine that owns those alarms (its clock is c).
func benchSite(b *testing.B, c *clock) (*sqlite.Rules, *rules.Engine, []collectors.Asset, string) {
	b.Helper()
	var assets []collectors.Asset
	for i := range 100 {
		assets = append(assets, collectors.Asset{ID: fmt.Sprintf("a%03d", i), Kind: collectors.AssetKind([]string{"pump_room", "distribution_panel", "water_sensor", "elevator"}[i%4])})
	}
	rc := rules.Config{Rules: []rules.Rule{
		{ID: "r1", Target: rules.Target{Kind: "pump_room"}, Field: "f1", State: &rules.StateMatch{Equals: true}, Priority: rules.Low},
		{ID: "r2", Target: rules.Target{Kind: "distribution_panel"}, Field: "f2", State: &rules.StateMatch{Equals: true}, Priority: rules.Medium},
		{ID: "r3", Target: rules.Target{Kind: "water_sensor"}, Field: "f3", State: &rules.StateMatch{Equals: true}, Priority: rules.High},
		{ID: "r4", Target: rules.Target{Kind: "elevator"}, Field: "f4", State: &rules.StateMatch{Equals: true}, Priority: rules.Critical},
		{ID: "comm", Target: rules.Target{Kind: "pump_room"}, Field: "comm_lost", State: &rules.StateMatch{Equals: true}, Priority: rules.High, Fault: true},
		{ID: "comm2", Target: rules.Target{Kind: "distribution_panel"}, Field: "comm_lost", State: &rules.StateMatch{Equals: true}, Priority: rules.High, Fault: true},
	}}
	rc.SetDefaults()
	if err := rc.Validate(assets); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "gw.db")
	seeded := os.Getenv("BENCH_MONTH_DB") // a file seeded by an earlier run, copied (the seed is deterministic)
	if seeded != "" {
		if data, err := os.ReadFile(seeded); err == nil {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				b.Fatal(err)
			}
		} else {
			seeded = "save:" + seeded
		}
	}
	store, err := sqlite.OpenRules(path, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c.t = from
	e := rules.NewEngine(rc, assets, rules.Deps{Store: store, Log: log, Now: c.now})
	if seeded != "" && !strings.HasPrefix(seeded, "save:") {
		if err := e.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
		return store, e, assets, path
	}
	var ids []string
	for _, a := range e.Alarms(func(*rules.Alarm) bool { return true }) {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	const transitions = 1_000_000
	const batch = 5000
	step := 30 * 24 * time.Hour / transitions
	for i := 0; i < transitions; i += batch {
		tr := make([]rules.Transition, 0, batch)
		for j := i; j < i+batch; j += 2 {
			id := ids[(j/2)%len(ids)]
			at := from.Add(time.Duration(j) * step)
			tr = append(tr, rules.Transition{AlarmID: id, From: rules.StateNormal, To: rules.StateUnacked, At: at, By: rules.ByEngine},
				rules.Transition{AlarmID: id, From: rules.StateUnacked, To: rules.StateNormal, At: at.Add(step), By: rules.ByEngine})
		}
		id := ids[(i/batch)%len(ids)]
		rule, asset, _ := cut(id)
		if err := store.SaveAlarm(context.Background(), &rules.Alarm{ID: id, Rule: rule, Asset: asset, State: rules.StateNormal}, tr); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range ids { // every alarm has its row
		rule, asset, _ := cut(id)
		if err := store.SaveAlarm(context.Background(), &rules.Alarm{ID: id, Rule: rule, Asset: asset, State: rules.StateNormal}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	cfg := config()
	svc := workorder.NewService(cfg, assets, store, log, c.now)
	for i := range 10_000 {
		c.t = from.Add(time.Duration(i) * 259 * time.Second) // spread over the month
		w, err := svc.Create(context.Background(), workorder.WorkOrder{Category: "plumbing", Asset: assets[i%100].ID, Description: "x", Room: "1-101"}, "chen.jing")
		if err != nil {
			b.Fatal(err)
		}
		if i%3 != 0 {
			c.t = c.t.Add(20 * time.Minute)
			svc.Transition(context.Background(), w.ID, workorder.Accepted, "wang.li", "")
			c.t = c.t.Add(2 * time.Hour)
			svc.Transition(context.Background(), w.ID, workorder.Resolved, "wang.li", "")
		}
	}
	if file, ok := strings.CutPrefix(seeded, "save:"); ok { // keep it for the next run, and open the copy
		store.Close()
		data, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(file, data, 0o600)
		}
		if err != nil {
			b.Fatal(err)
		}
		return benchSite(b, c)
	}
	return store, e, assets, path
}

func cut(id string) (string, string, bool) {
	for i := range id {
		if id[i] == ':' {
			return id[:i], id[i+1:], true
		}
	}
	return id, "", false
}

// BenchmarkMonthKPIs: a month's work-order KPIs with equipment in good
// order (GET /api/v1/kpis, month to date on 30 November at 18:00: 29 days
// over, today live), the alarm system's health for the same stretch (GET
// /api/v1/alarm-kpis) and the monthly report of November built on
// 1 December (GET /api/v1/reports/monthly&format=xlsx, every section), over
// 1,000,000 alarm transitions and 10,000 work orders in a real SQLite file.
//
// Three states: "first" is the first request ever (no day kept anywhere:
// every transition read); "restart" is the first request after a restart
// (the days the store keeps, nothing in memory); "warm" is every request
// after that, 30 s apart (the screens' month-to-date cadence). The
// ingest-p50/p99-µs metrics are the latency of an alarm write (the ingest
// path: alarm row and transition committed) made every 5 ms meanwhile.
func BenchmarkMonthKPIs(b *testing.B) {
	c := &clock{}
	store, e, assets, path := benchSite(b, c)
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mtd := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	reportDay := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	forget := func() { // the days kept in the store, as before the first request ever
		if _, err := raw.Exec(`DELETE FROM kpi_days`); err != nil {
			b.Fatal(err)
		}
	}
	type figures struct {
		kpis    func(to time.Time) error
		health  func(to time.Time) error
		monthly func(time.Time) error
	}
	build := func() figures {
		equip := rules.NewEquipment(e, store).InZone(time.UTC)
		reports := workorder.NewReports(store, equip, config(), c.now)
		health := alarmkpi.New(alarmkpi.Config{}, store, e, time.UTC, c.now)
		report := monthly.New(monthly.Deps{Orders: reports, Equipment: equip, Alarms: health, Incidents: store, Assets: assets, Config: config(), Site: "bench", Now: c.now})
		return figures{
			kpis:   func(to time.Time) error { _, err := reports.KPIs(context.Background(), from, to); return err },
			health: func(to time.Time) error { _, err := health.Report(context.Background(), from, to); return err },
			monthly: func(time.Time) error {
				r, err := report.Build(context.Background(), "2026-11")
				if err == nil {
					err = r.XLSX(io.Discard)
				}
				return err
			},
		}
	}
	for _, fig := range []struct {
		name string
		now  time.Time
		run  func(figures, time.Time) error
	}{
		{"kpis", mtd, func(f figures, now time.Time) error { return f.kpis(now) }},
		{"alarm-kpis", mtd, func(f figures, now time.Time) error { return f.health(now) }},
		{"monthly", reportDay, func(f figures, now time.Time) error { return f.monthly(now) }},
	} {
		for _, state := range []string{"first", "restart", "warm"} {
			b.Run(fig.name+"/"+state, func(b *testing.B) {
				c.t = fig.now
				forget()
				f := build()
				if state != "first" {
					if err := fig.run(f, c.t); err != nil { // the days are kept
						b.Fatal(err)
					}
				}
				stop := probeIngest(b, store)
				cpu := cpuTime()
				b.ResetTimer()
				for range b.N {
					switch state {
					case "first":
						b.StopTimer()
						forget()
						f = build()
						b.StartTimer()
					case "restart":
						f = build()
					case "warm":
						if fig.now.Equal(mtd) {
							c.t = c.t.Add(30 * time.Second)
						}
					}
					if err := fig.run(f, c.t); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
				stop()
			})
		}
	}
}

// cpuTime is the process's user and system time (with the ingest probe's
// small share): on a shared machine, what a request costs regardless of
// how long it waited for a core. ("first" iterations also count the
// dropping of the kept days between them.)
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// probeIngest writes an alarm transition every 5 ms (the ingest path)
// until stop, which reports the writes' latency.
func probeIngest(b *testing.B, store *sqlite.Rules) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var lat []time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		a := &rules.Alarm{ID: "ingest:probe", Rule: "ingest", Asset: "probe", State: rules.StateUnacked}
		for ctx.Err() == nil {
			start := time.Now()
			if err := store.SaveAlarm(ctx, a, []rules.Transition{{AlarmID: a.ID, From: rules.StateNormal, To: rules.StateUnacked, At: start, By: rules.ByEngine}}); err != nil && ctx.Err() == nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(start))
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		if len(lat) > 0 {
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "ingest-p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "ingest-p99-µs")
		}
	}
}
