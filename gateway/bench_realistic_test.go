package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	per := max(1, rate/100)
	toks := make([]paho.Token, 0, n)
	next := time.Now()
	for i := from; i < from+n; {
		for c := 0; c < per && i < from+n; c, i = c+1, i+1 {
			topic, payload := rbMessage(fleet, i)
			toks = append(toks, pub.Publish(topic, 1, false, payload))
		}
		next = next.Add(tick)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	for _, t := range toks {
		if t.Wait(); t.Error() != nil {
			b.Fatal(t.Error())
		}
	}
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
func BenchmarkRealisticIngest(b *testing.B) {
	n, rate, msgs := envInt("BENCH_ASSETS", 1000), envInt("BENCH_RATE", 10000), envInt("BENCH_MSGS", 60000)
	fleet := rbFleet(n)
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	in.Query(b, "CREATE DATABASE telegraf")
	dir := b.TempDir()
	port := testenv.FreePortNoT()
	gwConf := filepath.Join(dir, "gateway.yaml")
	rbRender(b, "realistic.yaml", gwConf, map[string]any{"HTTPPort": port, "Dir": dir, "Assets": fleet,
		"InfluxURL": in.URL, "Bucket": in.Bucket(), "Broker": broker.URL})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	gw := startProcess(b, nil, binary, "run", "-config", gwConf)
	for deadline := time.Now().Add(30 * time.Second); scrape(url, "gateway_mqtt_connected") != 1; {
		if time.Now().After(deadline) {
			b.Fatal("gateway did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}

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

	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		targets := make([]int, len(consumers))
		cpu0 := make([]time.Duration, len(consumers))
		for ci, c := range consumers {
			targets[ci] = target(c, sent, msgs)
			cpu0[ci], _ = procCPU(c.pid)
		}
		start := time.Now()
		publishPaced(b, pub, fleet, sent, msgs, rate)
		sent += msgs
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
		loss["telegraf"] = (sent - tgFrom) - (sum(rbCounts(b, in, "telegraf")) - tgBase)
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
