package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/propgate/gateway/internal/testenv"
)

// The realistic ingest benchmark (issue 16): a site of several asset kinds
// and payload shapes with rules evaluating every message, the whole product
// wired in (engine, runner, router, hub with screens connected), durable
// acknowledgements at QoS 1; and, when TELEGRAF=/path/to/telegraf is set,
// Telegraf consuming the very same messages from the same broker at the
// same time. Configs: testdata/bench/realistic.yaml and
// testdata/bench/telegraf-realistic.conf (Go templates).

// rbAsset is one asset of the realistic fleet.
type rbAsset struct {
	ID, Kind, Building string
	shape              string // leak, temp, pump, panel, lift: the topic level and payload shape
}

// rbShapes: asset j has shape rbShapes[j%10]: 30 % leak sensors, 20 %
// temperature sensors, 20 % pump rooms, 20 % panels, 10 % elevators,
// interleaved so consecutive messages go to different subscriptions.
var rbShapes = [10]string{"leak", "temp", "pump", "leak", "panel", "temp", "pump", "leak", "panel", "lift"}

var rbKinds = map[string]string{"leak": "water_sensor", "temp": "env_sensor", "pump": "pump_room", "panel": "distribution_panel", "lift": "elevator"}

// rbPoints is the points one message of a shape carries.
var rbPoints = map[string]int{"leak": 1, "temp": 1, "pump": 5, "panel": 5, "lift": 5}

// rbCountField is a field every message of a kind carries, for counting in InfluxDB.
var rbCountField = map[string]string{"water_sensor": "leak", "env_sensor": "temperature", "pump_room": "outlet_pressure", "distribution_panel": "voltage", "elevator": "floor"}

func rbFleet(n int) []rbAsset {
	out := make([]rbAsset, n)
	for j := range out {
		shape := rbShapes[j%10]
		out[j] = rbAsset{ID: fmt.Sprintf("%s%05d", shape, j), Kind: rbKinds[shape], Building: fmt.Sprintf("B%d", j%12+1), shape: shape}
	}
	return out
}

// rbMessage is message number i (asset i%n, round k = i/n). Values are
// steady per asset; a few messages are excursions that fire an alarm (and
// for some rules a work order) which the asset's next message clears.
func rbMessage(fleet []rbAsset, i int) (topic, payload string) {
	j, k := i%len(fleet), i/len(fleet)
	a := fleet[j]
	topic = "rb/" + a.shape + "/" + a.ID
	excursion := (j*7+k)%2003 == 0 // 0.05 % of messages: a few alarms a second at full rate
	switch a.shape {
	case "leak":
		if excursion {
			return topic, "wet"
		}
		return topic, "dry"
	case "temp":
		t := 18 + float64(j%70)/10
		if excursion {
			t = 31.5
		}
		return topic, strconv.FormatFloat(t, 'f', 2, 64)
	case "pump":
		p := 0.35 + float64(j%10)/100
		if excursion {
			p = 0.12
		}
		return topic, fmt.Sprintf(`{"pump":{"outlet_pressure":%.3f,"running":true,"freq":%.1f},"motor":{"temp":%.1f,"current":%.1f}}`,
			p, 45+float64(j%5), 50+float64(j%20), 10+float64(j%15)/2)
	case "panel":
		breaker := "closed"
		if excursion {
			breaker = "tripped"
		}
		return topic, fmt.Sprintf(`{"v":%.1f,"i":%.1f,"kw":%.2f,"breaker":%q,"t":%.1f}`,
			220+float64(j%10), 15+float64(j%30), 3+float64(j%40)/10, breaker, 35+float64(j%10))
	}
	fault := 0
	if excursion {
		fault = 17
	}
	return topic, fmt.Sprintf(`{"floor":%d,"door":"closed","running":true,"fault_code":%d,"load_kg":%d}`, j%30+1, fault, 300+j%500)
}

// rbRender fills a template from testdata/bench.
func rbRender(tb testing.TB, name, out string, data any) {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(tb), "testdata", "bench", name))
	if err != nil {
		tb.Fatal(err)
	}
	t := template.Must(template.New(name).Parse(string(src)))
	f, err := os.Create(out)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := t.Execute(f, data); err != nil {
		tb.Fatal(err)
	}
}

// envDuration reads a duration like 100ms or 30s; unset is def.
func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		tb.Fatalf("%s=%q: want a duration like 100ms or 30s", name, v)
	}
	return d
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// publishPaced publishes messages [from, from+n) at rate messages per
// second (QoS 1) and waits for every PUBACK.
func publishPaced(b *testing.B, pub paho.Client, fleet []rbAsset, from, n, rate int) {
	const tick = 10 * time.Millisecond
	// Tokens are waited for once more than window are outstanding (long
	// before that, in practice, they are complete): a soak of millions of
	// messages keeps the publisher's memory bounded.
	const window = 50000
	per := max(1, rate/100)
	toks := make([]paho.Token, 0, min(n, 2*window))
	wait := func(ts []paho.Token) {
		for _, t := range ts {
			if t.Wait(); t.Error() != nil {
				b.Fatal(t.Error())
			}
		}
	}
	next := time.Now()
	for i := from; i < from+n; {
		for c := 0; c < per && i < from+n; c, i = c+1, i+1 {
			topic, payload := rbMessage(fleet, i)
			toks = append(toks, pub.Publish(topic, 1, false, payload))
		}
		if len(toks) >= 2*window {
			wait(toks[:window])
			toks = append(toks[:0], toks[window:]...)
		}
		next = next.Add(tick)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	wait(toks)
}

// rbPointsIn is the points carried by messages [from, from+n).
func rbPointsIn(fleet []rbAsset, from, n int) int {
	total := 0
	for i := from; i < from+n; i++ {
		total += rbPoints[fleet[i%len(fleet)].shape]
	}
	return total
}

// rbCounts counts stored messages per kind in one InfluxDB database.
func rbCounts(tb testing.TB, in *testenv.Influx, db string) map[string]int {
	out := map[string]int{}
	for kind, field := range rbCountField {
		q := fmt.Sprintf("SELECT count(%q) FROM %q", field, kind)
		out[kind] = countInfluxDB(tb, in, db, q)
	}
	return out
}

func countInfluxDB(tb testing.TB, in *testenv.Influx, db, q string) int {
	saved := in.Database
	in.Database = db
	defer func() { in.Database = saved }()
	return countInflux(tb, in, q)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// consumer is one process under measurement.
type consumer struct {
	name   string
	pid    int
	stored func() int // messages (or points, see unit) stored so far
	cpu    []time.Duration
	done   []time.Duration // wall time from the start of publishing until all was stored
}

// BenchmarkRealisticIngest: BENCH_ASSETS (default 1,000) assets of five kinds
// publishing five payload shapes, 10-11 rules evaluating every message,
// 5 websocket screens connected, durable PUBACKs; each iteration publishes
// BENCH_MSGS (default 60,000) messages at BENCH_RATE (default 10,000) per
// second. With TELEGRAF set, Telegraf consumes the same messages at the
// same time. Reported: CPU per message of each process (from /proc), peak
// RSS, loss counted in InfluxDB. GATEWAY_CPUPROFILE=file profiles the gateway.
//
// Beside the ingest, while each iteration publishes (docs/benchmarks.md):
//   - BENCH_SCREENS_RECONNECT=N: N more wall-display clients on /ws that
//     connect, read the snapshot, close and connect again in a loop
//     (BENCH_SCREENS_PAUSE=duration between rounds, default none), and one
//     client polling GET /api/v1/kpis and /api/v1/alarm-kpis in a loop;
//   - BENCH_PROBE=interval (e.g. 100ms): the ingest latency probe, one
//     message per interval for an extra sensor, published → visible in
//     GET /api/v1/assets/{id} (p50, p99, max);
//   - always: the gateway's VmRSS and heap in use sampled every
//     BENCH_RSS_EVERY (default 30s) from its start, logged as a series.
func BenchmarkRealisticIngest(b *testing.B) {
	n, rate, msgs := envInt("BENCH_ASSETS", 1000), envInt("BENCH_RATE", 10000), envInt("BENCH_MSGS", 60000)
	reconnecting, screensPause := envInt("BENCH_SCREENS_RECONNECT", 0), envDuration(b, "BENCH_SCREENS_PAUSE", 0)
	probeEvery, rssEvery := envDuration(b, "BENCH_PROBE", 0), envDuration(b, "BENCH_RSS_EVERY", 30*time.Second)
	fleet := rbFleet(n)
	configured := fleet
	if probeEvery > 0 {
		configured = append(slices.Clone(fleet), rbProbeAsset)
	}
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	in.Query(b, "CREATE DATABASE telegraf")
	dir := b.TempDir()
	port := testenv.FreePortNoT()
	gwConf := filepath.Join(dir, "gateway.yaml")
	rbRender(b, "realistic.yaml", gwConf, map[string]any{"HTTPPort": port, "Dir": dir, "Assets": configured,
		"InfluxURL": in.URL, "Bucket": in.Bucket(), "Broker": broker.URL})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	gw := startProcess(b, nil, binary, "run", "-config", gwConf)
	for deadline := time.Now().Add(30 * time.Second); scrape(url, "gateway_mqtt_connected") != 1; {
		if time.Now().After(deadline) {
			b.Fatal("gateway did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	memStop, memSeries := make(chan struct{}), make(chan []memSample, 1)
	memStart := time.Now()
	go sampleMemory(gw.Process.Pid, url, rssEvery, memStop, memSeries)
	defer func() {
		select {
		case <-memStop:
		default:
			close(memStop) // a failed run: stop the sampler
		}
	}()

	// Five wall screens, reading everything the hub sends.
	var screenMsgs atomic.Int64
	var wg sync.WaitGroup
	var screens []*websocket.Conn
	b.Cleanup(func() {
		for _, c := range screens {
			c.Close()
		}
		wg.Wait()
	})
	for s := 0; s < 5; s++ {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws?token=bench-wall-token-0123456789", port), nil)
		if err != nil {
			b.Fatal(err)
		}
		screens = append(screens, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				screenMsgs.Add(1)
			}
		}()
	}

	gwPoints := func() int { return int(scrape(url, "gateway_influx_points_written_total")) }
	consumers := []*consumer{{name: "gateway", pid: gw.Process.Pid, stored: gwPoints}}
	pub := publisherFor(b, broker.URL)
	sent := 0
	tgBase, tgFrom := 0, 0 // Telegraf's count once its inputs were subscribed, and the messages sent before
	if bin := os.Getenv("TELEGRAF"); bin != "" {
		conf := filepath.Join(dir, "telegraf.conf")
		rbRender(b, "telegraf-realistic.conf", conf, map[string]any{"Broker": broker.URL, "InfluxURL": in.URL, "Bucket": "telegraf/autogen"})
		tg := startProcess(b, nil, bin, "--config", conf)
		// Telegraf has no readiness signal: probe each input until its
		// measurement appears (probes are counted as sent messages).
		for deadline := time.Now().Add(60 * time.Second); ; {
			missing := 0
			for _, c := range rbCounts(b, in, "telegraf") {
				if c == 0 {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("Telegraf did not store the probe messages")
			}
			publishPaced(b, pub, fleet, sent, 10, 1000)
			sent += 10
			time.Sleep(500 * time.Millisecond)
		}
		consumers = append(consumers, &consumer{name: "telegraf", pid: tg.Process.Pid, stored: func() int { return sum(rbCounts(b, in, "telegraf")) }})
		time.Sleep(2 * time.Second) // the last probes written
		tgBase, tgFrom = consumers[1].stored(), sent
	}
	// Warm-up: every asset reports once (fields and rule memories exist).
	publishPaced(b, pub, fleet, sent, n, rate)
	sent += n
	waitStored := func(targets []int, start time.Time, it int) {
		deadline := time.Now().Add(3 * time.Minute)
		pending := len(consumers)
		for pending > 0 {
			pending = 0
			for ci, c := range consumers {
				if len(c.done) > it {
					continue
				}
				if c.stored() >= targets[ci] {
					c.done = append(c.done, time.Since(start))
					continue
				}
				pending++
			}
			if pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				for ci, c := range consumers {
					b.Logf("%s: stored %d of %d", c.name, c.stored(), targets[ci])
				}
				b.Fatal("consumers did not store everything within 3 minutes")
			}
			time.Sleep(200 * time.Millisecond) // polling costs the consumers CPU: poll gently
		}
	}
	target := func(c *consumer, from, count int) int {
		if c.name == "gateway" {
			return gwPoints() + rbPointsIn(fleet, from, count)
		}
		return c.stored() + count
	}
	// After the probes and the warm-up: everything sent so far.
	targets := []int{rbPointsIn(fleet, 0, sent)}
	if len(consumers) > 1 {
		targets = append(targets, tgBase+sent-tgFrom)
	}
	waitStored(targets, time.Now(), 0)
	for _, c := range consumers {
		c.done = nil
	}

	probes := 0 // the latency probe's messages, stored like the others
	var probeSeq atomic.Int64
	var latency durations
	var loadLogs []string
	runStart := time.Since(memStart)
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		targets := make([]int, len(consumers))
		cpu0 := make([]time.Duration, len(consumers))
		for ci, c := range consumers {
			targets[ci] = target(c, sent, msgs)
			cpu0[ci], _ = procCPU(c.pid)
		}
		start := time.Now()
		load := newRBLoad()
		if reconnecting > 0 {
			load.reconnectingScreens(port, reconnecting, screensPause)
		}
		if probeEvery > 0 {
			load.latencyProbe(b, broker.URL, port, probeEvery, &probeSeq)
		}
		publishPaced(b, pub, fleet, sent, msgs, rate)
		sent += msgs
		load.end() // every probe acknowledged by the broker
		for ci := range targets {
			targets[ci] += int(load.probes.Load()) // one point (gateway) or one message (Telegraf) each
		}
		probes += int(load.probes.Load())
		latency.d = append(latency.d, load.latency.d...)
		loadLogs = append(loadLogs, load.summary(time.Since(start), reconnecting, probeEvery))
		waitStored(targets, start, it)
		for ci, c := range consumers {
			cpu1, _ := procCPU(c.pid)
			c.cpu = append(c.cpu, cpu1-cpu0[ci])
		}
	}
	b.StopTimer()

	// Loss: every message counted in InfluxDB, per kind.
	want := map[string]int{}
	for i := 0; i < sent; i++ {
		want[fleet[i%n].Kind]++
	}
	want[rbProbeAsset.Kind] += probes
	gwCounts := rbCounts(b, in, in.Database)
	loss := map[string]int{"gateway": sum(want) - sum(gwCounts)}
	for kind, w := range want {
		if gwCounts[kind] != w {
			b.Errorf("gateway: InfluxDB holds %d %s messages, %d were published", gwCounts[kind], kind, w)
		}
	}
	if bad := scrape(url, "gateway_points_dropped_total"); bad > 0 {
		b.Errorf("gateway counted %v points dropped", bad)
	}
	if len(consumers) > 1 {
		loss["telegraf"] = (sent + probes - tgFrom) - (sum(rbCounts(b, in, "telegraf")) - tgBase)
	}
	total := float64(msgs * b.N)
	perMsg := map[string]float64{}
	for _, c := range consumers {
		var cpu time.Duration
		for _, d := range c.cpu {
			cpu += d
		}
		_, rss := procCPU(c.pid)
		perMsg[c.name] = float64(cpu.Microseconds()) / total
		b.ReportMetric(perMsg[c.name], c.name+"-µs-cpu/msg")
		b.ReportMetric(float64(rss)/(1<<20), c.name+"-peak-rss-MiB")
		b.ReportMetric(float64(loss[c.name]), c.name+"-lost-msgs")
		runs := make([]string, len(c.cpu))
		for i, d := range c.cpu {
			runs[i] = fmt.Sprintf("%.1f µs/msg in %s", float64(d.Microseconds())/float64(msgs), c.done[i].Round(10*time.Millisecond))
		}
		b.Logf("%s: %s; peak RSS %.1f MiB; lost %d of %d messages", c.name, strings.Join(runs, ", "), float64(rss)/(1<<20), loss[c.name], sum(want))
	}
	if t, ok := perMsg["telegraf"]; ok && perMsg["gateway"] > 0 {
		b.ReportMetric(t/perMsg["gateway"], "telegraf/gateway-cpu")
	}
	b.ReportMetric(float64(rate), "publish-msgs/s")
	b.Logf("%d assets, %d messages per iteration at %d msg/s; %d screen messages; gateway alarms: %s", n, msgs, rate, screenMsgs.Load(),
		alarmSummary(url))
	for i, l := range loadLogs {
		b.Logf("run %d: %s", i+1, l)
	}
	if probeEvery > 0 {
		b.ReportMetric(float64(latency.quantile(0.5).Microseconds())/1000, "probe-p50-ms")
		b.ReportMetric(float64(latency.quantile(0.99).Microseconds())/1000, "probe-p99-ms")
		b.ReportMetric(float64(latency.quantile(1).Microseconds())/1000, "probe-max-ms")
	}
	if refused := scrape(url, "gateway_ws_clients_refused_total"); refused > 0 {
		b.Logf("gateway refused %v websocket connections (client cap)", refused)
	}

	// Memory over time: flat, or growing?
	close(memStop)
	series := <-memSeries
	var lines []string
	marked := false
	for _, m := range series {
		mark := ""
		if m.at >= runStart && !marked {
			mark, marked = "  (first sample of the measured run, which started at "+runStart.Round(time.Second).String()+")", true
		}
		lines = append(lines, fmt.Sprintf("  %8s  VmRSS %6s MiB  heap in use %6s MiB%s", m.at.Round(time.Second), mib(m.rss), mib(m.heap), mark))
	}
	b.Logf("gateway memory every %s (from its start; VmRSS from /proc, heap from go_memstats_heap_inuse_bytes):\n%s", rssEvery, strings.Join(lines, "\n"))
	if len(series) > 0 {
		last := series[len(series)-1]
		b.ReportMetric(last.rss/(1<<20), "gateway-end-rss-MiB")
		b.ReportMetric(last.heap/(1<<20), "gateway-end-heap-MiB")
	}
}

// alarmSummary reads the gateway's alarm metrics, for the log.
func alarmSummary(url string) string {
	var out []string
	for _, m := range []string{"gateway_rules_store_errors_total", "gateway_mqtt_acked_messages_total", "gateway_points_collected_total",
		"go_memstats_heap_alloc_bytes", "go_memstats_next_gc_bytes", "go_memstats_heap_sys_bytes", "go_gc_duration_seconds_count"} {
		out = append(out, fmt.Sprintf("%s=%v", strings.TrimPrefix(m, "gateway_"), scrape(url, m)))
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// rbWallToken is the wall display's token in testdata/bench/realistic.yaml.
const rbWallToken = "bench-wall-token-0123456789"

// rbProbeAsset is an extra temperature sensor that only the latency probe
// publishes for, so that nothing else overwrites the value it waits for.
var rbProbeAsset = rbAsset{ID: "tprobe", Kind: "env_sensor", Building: "B1", shape: "temp"}

// durations collects timings from several goroutines.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (ds *durations) add(d time.Duration) {
	ds.mu.Lock()
	ds.d = append(ds.d, d)
	ds.mu.Unlock()
}

// summary is "p50 …, p99 …, max … (n …)".
func (ds *durations) summary() string {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if len(ds.d) == 0 {
		return "none"
	}
	s := slices.Clone(ds.d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n %d)", ms(q(0.5)), ms(q(0.99)), ms(s[len(s)-1]), len(s))
}

func (ds *durations) quantile(p float64) time.Duration {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if len(ds.d) == 0 {
		return 0
	}
	s := slices.Clone(ds.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// rbLoad is what runs beside the ingest during the measured run: screens
// reconnecting in a loop, a KPI poller, the latency probe. stop ends them
// and waits.
type rbLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	connects, connectErrs atomic.Int64 // reconnecting screens: snapshots read, failures
	snapshotBytes         atomic.Int64
	snapshot              durations // dial until the first message (the snapshot) was read
	kpiReqs, kpiErrs      atomic.Int64
	kpi                   durations // one KPI request
	probes, probeLost     atomic.Int64
	latency               durations // probe published → value visible in GET /api/v1/assets/tprobe
}

func newRBLoad() *rbLoad { return &rbLoad{stop: make(chan struct{})} }

func (l *rbLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *rbLoad) end() { close(l.stop); l.wg.Wait() }

// summary is one run's side load, for the log.
func (l *rbLoad) summary(took time.Duration, screens int, probe time.Duration) string {
	var parts []string
	if screens > 0 {
		c := l.connects.Load()
		avg := int64(0)
		if c > 0 {
			avg = l.snapshotBytes.Load() / c
		}
		parts = append(parts, fmt.Sprintf("%d reconnecting screens: %d snapshots (%.1f/s, %d KB each), %d failed; connect → snapshot %s",
			screens, c, float64(c)/took.Seconds(), avg/1000, l.connectErrs.Load(), l.snapshot.summary()),
			fmt.Sprintf("KPI poller: %d requests (%.1f/s), %d failed; %s", l.kpiReqs.Load(), float64(l.kpiReqs.Load())/took.Seconds(), l.kpiErrs.Load(), l.kpi.summary()))
	}
	if probe > 0 {
		parts = append(parts, fmt.Sprintf("ingest latency (probe every %s, published → in GET /api/v1/assets/%s): %s, %d of %d not seen within 5 s",
			probe, rbProbeAsset.ID, l.latency.summary(), l.probeLost.Load(), l.probes.Load()))
	}
	if len(parts) == 0 {
		return "no side load (BENCH_SCREENS_RECONNECT, BENCH_PROBE unset)"
	}
	return strings.Join(parts, "; ")
}

// reconnectingScreens starts n wall-display clients on the real /ws with
// the wall token that connect, read the first message (the snapshot),
// close and connect again, pausing pause between rounds (0: none), and
// one client polling GET /api/v1/kpis and /api/v1/alarm-kpis in a loop.
func (l *rbLoad) reconnectingScreens(port, n int, pause time.Duration) {
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10}
	for s := 0; s < n; s++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stopped() {
				t0 := time.Now()
				c, _, err := dialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws?token=%s", port, rbWallToken), nil)
				if err != nil {
					l.connectErrs.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, msg, err := c.ReadMessage()
				c.Close()
				if err != nil {
					l.connectErrs.Add(1)
					continue
				}
				l.snapshot.add(time.Since(t0))
				l.connects.Add(1)
				l.snapshotBytes.Add(int64(len(msg)))
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		client := &http.Client{Timeout: 10 * time.Second}
		month := time.Now().UTC().Format("2006-01")
		paths := []string{"/api/v1/kpis", "/api/v1/alarm-kpis", "/api/v1/kpis?from=" + month + "-01", "/api/v1/alarm-kpis?from=" + month + "-01"}
		for i := 0; !l.stopped(); i++ {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, paths[i%len(paths)]), nil)
			req.Header.Set("Authorization", "Bearer "+rbWallToken)
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				l.kpiErrs.Add(1)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			l.kpi.add(time.Since(t0))
			l.kpiReqs.Add(1)
			if resp.StatusCode != http.StatusOK {
				l.kpiErrs.Add(1)
			}
		}
	}()
}

// latencyProbe publishes a new value for rbProbeAsset every interval from
// its own MQTT client (QoS 1, into the same subscription as the load) and
// polls GET /api/v1/assets/tprobe every millisecond until the value is
// there: ingest latency, published → in the state cache, as a reader sees
// it (to ~1 ms). A value not seen within 5 s is counted lost.
// seq numbers the probes across iterations, so that no probe's value is the
// one the last probe left in the state.
func (l *rbLoad) latencyProbe(b *testing.B, brokerURL string, port int, interval time.Duration, seq *atomic.Int64) {
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("bench-probe"))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal("probe client:", tok.Error())
	}
	client := &http.Client{Timeout: 5 * time.Second}
	read := func() (float64, bool) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/api/v1/assets/%s", port, rbProbeAsset.ID), nil)
		req.Header.Set("Authorization", "Bearer "+rbWallToken)
		resp, err := client.Do(req)
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var a struct {
			Fields map[string]struct {
				Value *float64 `json:"value"`
			} `json:"fields"`
		}
		if json.NewDecoder(resp.Body).Decode(&a) != nil || a.Fields["temperature"].Value == nil {
			return 0, false
		}
		return *a.Fields["temperature"].Value, true
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer pub.Disconnect(100)
		next := time.Now()
		for !l.stopped() {
			// Normal temperatures (no rule fires), each differing from the last.
			payload := strconv.FormatFloat(18+float64(seq.Add(1)%600)/100, 'f', 2, 64)
			want, _ := strconv.ParseFloat(payload, 64)
			t0 := time.Now()
			tok := pub.Publish("rb/temp/"+rbProbeAsset.ID, 1, false, payload)
			l.probes.Add(1)
			seen := false
			for deadline := t0.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if v, ok := read(); ok && v == want {
					l.latency.add(time.Since(t0))
					seen = true
					break
				}
			}
			tok.Wait()
			if !seen {
				l.probeLost.Add(1)
			}
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else {
				next = time.Now()
			}
		}
	}()
}

// memSample is the gateway's memory at one moment.
type memSample struct {
	at        time.Duration
	rss, heap float64 // bytes: VmRSS, go_memstats_heap_inuse_bytes (-1 when unreadable)
}

// sampleMemory reads the gateway's VmRSS and its heap in use (from
// /metrics) every interval until stop is closed, and once more at the end.
func sampleMemory(pid int, url string, interval time.Duration, stop <-chan struct{}, out chan<- []memSample) {
	start := time.Now()
	var series []memSample
	sample := func() {
		series = append(series, memSample{at: time.Since(start), rss: float64(procRSS(pid)), heap: scrape(url, "go_memstats_heap_inuse_bytes")})
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sample()
	for {
		select {
		case <-tick.C:
			sample()
		case <-stop:
			sample()
			out <- series
			return
		}
	}
}

// procRSS is a process's resident set (VmRSS) in bytes, 0 if unreadable.
func procRSS(pid int) int64 {
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func mib(bytes float64) string {
	if bytes < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", bytes/(1<<20))
}
