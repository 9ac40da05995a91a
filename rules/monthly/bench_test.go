package monthly_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/workorder"
)

// benchSite is a month (November 2026) with 1,000,000 alarm transitions
// (500,000 firings and their returns, over 300 alarms of 100 assets, a
// tenth of them device faults) and 10,000 work orders, on a real SQLite
// file, with the engine that owns those alarms.
func benchSite(b *testing.B) (*sqlite.Rules, *rules.Engine, []collectors.Asset, time.Time) {
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
	e := rules.NewEngine(rc, assets, rules.Deps{Store: store, Log: log, Now: func() time.Time { return from }})
	if seeded != "" && !strings.HasPrefix(seeded, "save:") {
		if err := e.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
		return store, e, assets, from
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
	c := &clock{t: from}
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
		return benchSite(b)
	}
	return store, e, assets, from
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
// order (GET /api/v1/kpis) and the alarm-system health (GET
// /api/v1/alarm-kpis) over 1,000,000 alarm transitions and 10,000 work
// orders; "ingest-p99-µs" is the latency of an alarm write (the ingest
// path: alarm row and transitions committed) made every 5 ms while the
// figures are computed.
func BenchmarkMonthKPIs(b *testing.B) {
	store, e, _, from := benchSite(b)
	to := from.AddDate(0, 1, 0)
	now := func() time.Time { return to }
	newKPIs := func() func() error {
		reports := workorder.NewReports(store, rules.NewEquipment(e, store).InZone(time.UTC), config(), now)
		return func() error { _, err := reports.KPIs(context.Background(), from, to); return err }
	}
	newHealth := func() func() error {
		health := alarmkpi.New(alarmkpi.Config{}, store, e, time.UTC, now)
		return func() error { _, err := health.Report(context.Background(), from, to); return err }
	}
	for _, c := range []struct {
		name string
		make func() func() error
		warm bool // the closed days already read once (every request after the first)
	}{
		{"kpis/cold", newKPIs, false},
		{"kpis/warm", newKPIs, true},
		{"alarm-kpis/cold", newHealth, false},
		{"alarm-kpis/warm", newHealth, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			run := c.make()
			if c.warm {
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var lat []time.Duration
			wg.Add(1)
			go func() { // the ingest path, meanwhile
				defer wg.Done()
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				a := &rules.Alarm{ID: "ingest:probe", Rule: "ingest", Asset: "probe", State: rules.StateUnacked}
				for i := 0; ctx.Err() == nil; i++ {
					start := time.Now()
					at := to.Add(time.Duration(i) * time.Millisecond)
					if err := store.SaveAlarm(ctx, a, []rules.Transition{{AlarmID: a.ID, From: rules.StateNormal, To: rules.StateUnacked, At: at, By: rules.ByEngine}}); err != nil && ctx.Err() == nil {
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
			b.ResetTimer()
			for range b.N {
				if !c.warm {
					run = c.make() // nothing kept from the last run
				}
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "ingest-p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "ingest-p99-µs")
			}
		})
	}
}
