package rules_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	. "github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

// benchEngine loads 10,000 threshold rules: 2,500 assets × 4 fields, one
// rule each, all on a real SQLite file.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func f64(v float64) *float64             { return &v }

func benchEngine(b *testing.B) (*Engine, *clock, *sqlite.Rules) {
	var assets []collectors.Asset
	for i := 0; i < 2500; i++ {
		assets = append(assets, collectors.Asset{ID: fmt.Sprintf("s%04d", i), Kind: "sensor", Building: fmt.Sprintf("B%d", i%10)})
	}
	var rs []Rule
	for i, a := range assets {
		for f := 0; f < 4; f++ {
			rs = append(rs, Rule{ID: fmt.Sprintf("r%05d", i*4+f), Target: Target{Asset: a.ID}, Field: fmt.Sprintf("f%d", f),
				Threshold: &Threshold{Above: f64(100), Deadband: 1}, Priority: High, WorkOrder: &WorkOrderSpec{Category: "test"}})
		}
	}
	store, err := sqlite.OpenRules(filepath.Join(b.TempDir(), "gw.db"), false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	c := &clock{t: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)}
	cfg := Config{Rules: rs}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wo := workorder.NewService(workorder.Config{}, assets, store, log, c.now)
	e := NewEngine(cfg, assets, Deps{Store: store, OnFire: wo, Log: log, Now: c.now})
	if err := e.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	if n := len(e.Alarms(nil)); n != 10000 {
		b.Fatalf("%d rule instances", n)
	}
	return e, c, store
}

// BenchmarkProcess10kRules: cost per point with 10,000 rules loaded, points
// in normal range (the steady state: no transitions, no writes). The batch
// of 4 points is what one MQTT message carries.
func BenchmarkProcess10kRules(b *testing.B) {
	e, _, _ := benchEngine(b)
	batch := make([]collectors.Point, 4)
	names := make([]string, 2500)
	for i := range names {
		names[i] = fmt.Sprintf("s%04d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := names[i%2500]
		for f := range batch {
			batch[f] = collectors.Point{Asset: a, Field: fieldNames[f], Value: collectors.Float(float64(i % 90)), Quality: collectors.QualityGood}
		}
		e.Process(batch)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4), "ns/point")
}

var fieldNames = []string{"f0", "f1", "f2", "f3"}

// BenchmarkAlarmToWorkOrder: from the point that activates an alarm to its
// work order committed in SQLite (alarm row, transition, order, history),
// with 10,000 rules loaded.
func BenchmarkAlarmToWorkOrder(b *testing.B) {
	e, c, store := benchEngine(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := fmt.Sprintf("s%04d", i%2500)
		f := fieldNames[(i/2500)%4]
		b.StartTimer()
		e.Process([]collectors.Point{{Asset: a, Field: f, Value: collectors.Float(150), Quality: collectors.QualityGood}})
		b.StopTimer()
		// back to normal, acknowledged, and its order closed: the next round opens a fresh one
		e.Process([]collectors.Point{{Asset: a, Field: f, Value: collectors.Float(50), Quality: collectors.QualityGood}})
		e.Ack(fmt.Sprintf("r%05d:%s", mustIdx(a)*4+(i/2500)%4, a), "bench", "")
		c.advance(48 * time.Hour) // beyond the reopen window
	}
	n, _ := store.WorkOrders(context.Background(), workorder.Filter{})
	if len(n) != b.N {
		b.Fatalf("%d work orders for %d alarms", len(n), b.N)
	}
}

func mustIdx(a string) int {
	var n int
	fmt.Sscanf(a, "s%04d", &n)
	return n
}

// BenchmarkProcessRealistic: the pump rooms of the realistic ingest
// benchmark (testdata/bench/realistic.yaml): 1,000 assets, 11 rules over
// five fields (thresholds with deadband, a state with on-delay, a rate,
// a no-data), one message of five points per op, values in range. With
// -benchmem it shows that the steady state allocates nothing.
func BenchmarkProcessRealistic(b *testing.B) {
	var assets []collectors.Asset
	for i := 0; i < 1000; i++ {
		assets = append(assets, collectors.Asset{ID: fmt.Sprintf("pump%05d", i), Kind: "pump_room", Building: fmt.Sprintf("B%d", i%12)})
	}
	t := Target{Kind: "pump_room"}
	rs := []Rule{
		{ID: "pump-low-pressure", Target: t, Field: "outlet_pressure", Threshold: &Threshold{Below: f64(0.2), Deadband: 0.05}, Priority: High, WorkOrder: &WorkOrderSpec{Category: "plumbing"}},
		{ID: "pump-high-pressure", Target: t, Field: "outlet_pressure", Threshold: &Threshold{Above: f64(1), Deadband: 0.05}, Priority: High},
		{ID: "pump-pressure-drop", Target: t, Field: "outlet_pressure", Rate: &Rate{Per: time.Minute, Below: f64(-100000)}, Priority: Medium},
		{ID: "pump-no-data", Target: t, Field: "outlet_pressure", NoData: 5 * time.Minute, Priority: High, Fault: true},
		{ID: "pump-stopped", Target: t, Field: "running", State: &StateMatch{Equals: false}, OnDelay: 30 * time.Second, Priority: High},
		{ID: "pump-overspeed", Target: t, Field: "freq", Threshold: &Threshold{Above: f64(52), Deadband: 0.5}, Priority: Medium},
		{ID: "motor-hot", Target: t, Field: "motor_temp", Threshold: &Threshold{Above: f64(80), Deadband: 2}, Priority: High},
		{ID: "motor-overheat", Target: t, Field: "motor_temp", Threshold: &Threshold{Above: f64(95), Deadband: 2}, Priority: Critical},
		{ID: "motor-heating", Target: t, Field: "motor_temp", Rate: &Rate{Per: time.Minute, Above: f64(100000)}, Priority: Medium},
		{ID: "motor-overcurrent", Target: t, Field: "motor_current", Threshold: &Threshold{Above: f64(30), Deadband: 1}, Priority: High},
		{ID: "motor-no-current", Target: t, Field: "motor_current", Threshold: &Threshold{Below: f64(0.5)}, OnDelay: time.Minute, Priority: Medium},
	}
	store, err := sqlite.OpenRules(filepath.Join(b.TempDir(), "gw.db"), false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	c := &clock{t: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)}
	cfg := Config{Rules: rs}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		b.Fatal(err)
	}
	e := NewEngine(cfg, assets, Deps{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.now})
	if err := e.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	msg := make([]collectors.Point, 5)
	fields := []string{"outlet_pressure", "running", "freq", "motor_temp", "motor_current"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := assets[i%len(assets)].ID
		c.t = c.t.Add(50 * time.Microsecond)
		vals := []collectors.Value{collectors.Float(0.4 + float64(i%7)/100), collectors.Bool(true), collectors.Float(48), collectors.Float(55), collectors.Float(12)}
		for f := range msg {
			msg[f] = collectors.Point{Asset: a, Field: fields[f], Value: vals[f], Quality: collectors.QualityGood, Time: c.t}
		}
		e.Process(msg)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/msg")
	if n := len(e.Alarms(func(a *Alarm) bool { return a.State != StateNormal })); n != 0 {
		b.Fatalf("%d alarms not normal: the load should keep every alarm resting", n)
	}
}
