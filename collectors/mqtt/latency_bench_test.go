package mqtt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/collectors/influx"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/internal/testenv"
	"github.com/propgate/gateway/rules"
)

// latencyRecorder is a processor after the rules engine: the point is in
// the state cache and evaluated by then.
type latencyRecorder struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (l *latencyRecorder) Process(pts []collectors.Point) {
	d := time.Since(pts[0].Time) // the message's publish time (its ts field)
	l.mu.Lock()
	l.lat = append(l.lat, d)
	l.mu.Unlock()
}

// BenchmarkIngestLatency: BENCH_RATE (default 20,000) QoS 1 messages a
// second for BENCH_SECONDS (default 5) over 1,000 pump rooms, each message
// carrying its publish time (unix ns); the ingest path of the gateway — the
// collector on paho, the state cache, the rules engine with the realistic
// benchmark's 11 pump rules, the InfluxDB writer's durable disk queue with
// a PUBACK after fdatasync (ack_batch 256) — and a last processor that
// records publish → point in the state cache and evaluated. Reports p50,
// p99 and max. InfluxDB itself is not running: points stay on the queue.
func BenchmarkIngestLatency(b *testing.B) {
	rate, secs := envIntOr("BENCH_RATE", 20000), envIntOr("BENCH_SECONDS", 5)
	broker := testenv.StartMosquitto(b)
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var assets []collectors.Asset
	for i := 0; i < 1000; i++ {
		assets = append(assets, collectors.Asset{ID: fmt.Sprintf("pump%05d", i), Kind: "pump_room", Building: fmt.Sprintf("B%d", i%12+1)})
	}
	reg := prometheus.NewRegistry()
	metrics := collectors.NewMetrics(reg)
	w := influx.New(influx.Config{URL: "http://127.0.0.1:1", Bucket: "bench", Queue: influx.QueueConfig{Dir: filepath.Join(dir, "queue")}}, "bench", assets, reg, metrics.Dropped, log)
	if err := w.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer w.Stop(0)
	state := collectors.NewState(assets)
	state.TrackChanges()
	pipe := collectors.NewPipeline(state, w, metrics, log)
	store, err := sqlite.OpenRules(filepath.Join(dir, "gw.db"), false)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	t := rules.Target{Kind: "pump_room"}
	f := func(v float64) *float64 { return &v }
	rcfg := rules.Config{Rules: []rules.Rule{
		{ID: "pump-low-pressure", Target: t, Field: "outlet_pressure", Threshold: &rules.Threshold{Below: f(0.2), Deadband: 0.05}, Priority: rules.High},
		{ID: "pump-high-pressure", Target: t, Field: "outlet_pressure", Threshold: &rules.Threshold{Above: f(1), Deadband: 0.05}, Priority: rules.High},
		{ID: "pump-pressure-drop", Target: t, Field: "outlet_pressure", Rate: &rules.Rate{Per: time.Minute, Below: f(-100000)}, Priority: rules.Medium},
		{ID: "pump-no-data", Target: t, Field: "outlet_pressure", NoData: 5 * time.Minute, Priority: rules.High, Fault: true},
		{ID: "pump-stopped", Target: t, Field: "running", State: &rules.StateMatch{Equals: false}, OnDelay: 30 * time.Second, Priority: rules.High},
		{ID: "pump-overspeed", Target: t, Field: "freq", Threshold: &rules.Threshold{Above: f(52), Deadband: 0.5}, Priority: rules.Medium},
		{ID: "motor-hot", Target: t, Field: "motor_temp", Threshold: &rules.Threshold{Above: f(80), Deadband: 2}, Priority: rules.High},
		{ID: "motor-overheat", Target: t, Field: "motor_temp", Threshold: &rules.Threshold{Above: f(95), Deadband: 2}, Priority: rules.Critical},
		{ID: "motor-heating", Target: t, Field: "motor_temp", Rate: &rules.Rate{Per: time.Minute, Above: f(100000)}, Priority: rules.Medium},
		{ID: "motor-overcurrent", Target: t, Field: "motor_current", Threshold: &rules.Threshold{Above: f(30), Deadband: 1}, Priority: rules.High},
		{ID: "motor-no-current", Target: t, Field: "motor_current", Threshold: &rules.Threshold{Below: f(0.5)}, OnDelay: time.Minute, Priority: rules.Medium},
	}}
	rcfg.SetDefaults()
	if err := rcfg.Validate(assets); err != nil {
		b.Fatal(err)
	}
	engine := rules.NewEngine(rcfg, assets, rules.Deps{Store: store, Log: log, Now: time.Now})
	if err := engine.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go engine.Run(ctx)
	pipe.AddProcessor(engine)
	rec := &latencyRecorder{}
	pipe.AddProcessor(rec)

	cfg := Config{Broker: broker.URL, ClientID: "latency-bench", AckBatch: envIntOr("BENCH_ACK_BATCH", 256), Subs: []Subscription{{
		Topic: "rb/pump/{asset}", Asset: "{asset}", Timestamp: &Timestamp{Path: "ts", Format: TimeUnixNs},
		Fields: []Field{{Name: "outlet_pressure", Path: "pump.outlet_pressure"}, {Name: "running", Path: "pump.running", Type: TypeBool},
			{Name: "freq", Path: "pump.freq"}, {Name: "motor_temp", Path: "motor.temp"}, {Name: "motor_current", Path: "motor.current"}},
	}}}
	c := New(cfg, nil, NewMetrics(reg), log)
	if err := c.Start(ctx, pipe); err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(c.metrics.Connected) != 1; {
		if time.Now().After(deadline) {
			b.Fatal("collector did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("latency-pub").SetMaxResumePubInFlight(1000))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	msgs := rate * secs
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		rec.mu.Lock()
		rec.lat = rec.lat[:0]
		rec.mu.Unlock()
		const tick = time.Millisecond
		per := max(1, rate/1000)
		next := time.Now()
		for i := 0; i < msgs; {
			for k := 0; k < per && i < msgs; k, i = k+1, i+1 {
				j := i % len(assets)
				payload := `{"pump":{"outlet_pressure":` + strconv.FormatFloat(0.35+float64(j%10)/100, 'f', 3, 64) +
					`,"running":true,"freq":48.0},"motor":{"temp":55.0,"current":12.5},"ts":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`
				pub.Publish("rb/pump/"+assets[j].ID, 1, false, payload)
			}
			next = next.Add(tick)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		for deadline := time.Now().Add(time.Minute); ; {
			rec.mu.Lock()
			n := len(rec.lat)
			rec.mu.Unlock()
			if n >= msgs {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d messages arrived", n, msgs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b.StopTimer()
	rec.mu.Lock()
	lat := slices.Clone(rec.lat)
	rec.mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(rate), "msgs/s")
}
