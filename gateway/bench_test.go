package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/propgate/gateway/internal/testenv"
)

// benchConfig: sensors publishing 4-field JSON over MQTT; with rules, each
// of their fields has a threshold rule (assets × 4 rules).
func benchConfig(in *testenv.Influx, broker, dir string, assets int, withRules bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: bench\nhttp: {listen: \"127.0.0.1:%d\"}\nlog: {level: warn}\nassets:\n", testenv.FreePortNoT())
	for i := 0; i < assets; i++ {
		fmt.Fprintf(&b, "  - {id: s%04d, kind: sensor, building: B%d}\n", i, i%5)
	}
	fmt.Fprintf(&b, "rules:\n  database: %q\n  rules:\n", filepath.Join(dir, "gw.db"))
	if withRules {
		for i := 0; i < assets; i++ {
			for _, f := range []string{"temperature", "humidity", "pressure", "battery"} {
				fmt.Fprintf(&b, "    - {id: r%04d-%s, target: {asset: s%04d}, field: %s, threshold: {above: 1000, deadband: 1}, priority: high}\n", i, f, i, f)
			}
		}
	} else {
		b.WriteString("    []\n")
	}
	fmt.Fprintf(&b, `influxdb: {url: %q, bucket: %q, batch_size: 5000, flush_interval: 1s, queue: {dir: %q}}
mqtt:
  broker: %s
  client_id: gateway-bench
  subscriptions:
    - topic: bench/{asset}
      asset: "{asset}"
      fields:
        - {name: temperature, path: t}
        - {name: humidity, path: h}
        - {name: pressure, path: p}
        - {name: battery, path: b}
`, in.URL, in.Bucket(), filepath.Join(dir, "queue"), broker)
	return b.String()
}

// procCPU returns user+system CPU time and peak RSS of a process.
func procCPU(pid int) (time.Duration, int64) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var hwm int64
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			hwm, _ = strconv.ParseInt(strings.Fields(line)[1], 10, 64)
		}
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, hwm * 1024 // USER_HZ is 100 on Linux
}

func scrape(url, metric string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, metric+" ") || strings.HasPrefix(line, metric+"{") {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// publishLoad publishes n 4-field JSON messages at QoS 1 over `assets` topics.
func publishLoad(b *testing.B, pub paho.Client, n, assets int) {
	toks := make([]paho.Token, 0, n)
	for i := 0; i < n; i++ {
		payload := fmt.Sprintf(`{"t":%.2f,"h":%.1f,"p":%.3f,"b":%d}`, 20+float64(i%100)/10, 40+float64(i%50), 101.3+float64(i%7)/100, 90-i%10)
		toks = append(toks, pub.Publish(fmt.Sprintf("bench/s%04d", i%assets), 1, false, payload))
	}
	for _, t := range toks {
		if t.Wait(); t.Error() != nil {
			b.Fatal(t.Error())
		}
	}
}

func publisherFor(b *testing.B, broker string) paho.Client {
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("bench-pub").SetMaxResumePubInFlight(1000))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	b.Cleanup(func() { pub.Disconnect(100) })
	return pub
}

// ingest publishes msgs messages per iteration to a running consumer process
// and waits until stored() reaches the expected count; it reports the
// consumer's CPU per message, throughput and peak RSS.
func ingest(b *testing.B, pid int, pub paho.Client, msgs, assets int, stored func() float64) {
	var cpuTotal, wallTotal time.Duration
	sent := 0
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		cpu0, _ := procCPU(pid)
		want := stored() + float64(msgs)
		start := time.Now()
		publishLoad(b, pub, msgs, assets)
		sent += msgs
		for deadline := time.Now().Add(2 * time.Minute); stored() < want; {
			if time.Now().After(deadline) {
				b.Fatalf("only %v of %v messages stored", stored(), want)
			}
			time.Sleep(200 * time.Millisecond) // polling costs the consumer CPU: poll gently
		}
		wallTotal += time.Since(start)
		cpu1, _ := procCPU(pid)
		cpuTotal += cpu1 - cpu0
	}
	b.StopTimer()
	_, rss := procCPU(pid)
	b.ReportMetric(float64(cpuTotal.Microseconds())/float64(sent), "µs-cpu/msg")
	b.ReportMetric(float64(sent)/cpuTotal.Seconds(), "msgs/cpu-s")
	b.ReportMetric(float64(sent)/wallTotal.Seconds(), "msgs/s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	b.Logf("%d messages, consumer CPU %s, wall %s", sent, cpuTotal, wallTotal)
}

func startProcess(b *testing.B, env []string, argv ...string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	return cmd
}

const benchMsgs = 50000

// BenchmarkMQTTIngest: CPU of the gateway process per message, end to end
// from a real Mosquitto into a real InfluxDB, with zero loss checked (every
// message's four fields counted in InfluxDB, no drop counted).
// GATEWAY_CPUPROFILE=file writes a CPU profile of the gateway.
func BenchmarkMQTTIngest(b *testing.B) { benchIngest(b, 100, false) }

// BenchmarkMQTTIngest10kRules: the same with 10,000 rules active (2,500
// assets, a threshold rule on each of their four fields).
func BenchmarkMQTTIngest10kRules(b *testing.B) { benchIngest(b, 2500, true) }

func benchIngest(b *testing.B, assets int, withRules bool) {
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "bench.yaml")
	cfg := benchConfig(in, broker.URL, dir, assets, withRules)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	url := "http://" + strings.SplitN(strings.SplitN(cfg, "listen: \"", 2)[1], "\"", 2)[0]
	cmd := startProcess(b, nil, binary, "run", "-config", cfgPath)
	for deadline := time.Now().Add(20 * time.Second); scrape(url, "gateway_mqtt_connected") != 1; {
		if time.Now().After(deadline) {
			b.Fatal("gateway did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pub := publisherFor(b, broker.URL)
	ingest(b, cmd.Process.Pid, pub, benchMsgs, assets, func() float64 { return scrape(url, "gateway_influx_points_written_total") / 4 })
	if bad := scrape(url, "gateway_points_dropped_total"); bad > 0 {
		b.Fatalf("%v points dropped", bad)
	}
	if got, want := countInflux(b, in, "SELECT count(temperature) FROM sensor"), benchMsgs*b.N; got != want {
		b.Fatalf("InfluxDB holds %d messages, published %d", got, want)
	}
}

// BenchmarkMQTTIngestTelegraf runs the same load through Telegraf's
// mqtt_consumer (QoS 1, persistent session) and influxdb_v2 output, for a
// side-by-side comparison. TELEGRAF=/path/to/telegraf enables it.
func BenchmarkMQTTIngestTelegraf(b *testing.B) {
	bin := os.Getenv("TELEGRAF")
	if bin == "" {
		b.Skip("TELEGRAF is not set: no Telegraf binary to compare with")
	}
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	conf := filepath.Join(b.TempDir(), "telegraf.conf")
	toml := fmt.Sprintf(`[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true
  quiet = true
[[inputs.mqtt_consumer]]
  servers = [%q]
  topics = ["bench/+"]
  qos = 1
  client_id = "telegraf-bench"
  persistent_session = true
  max_undelivered_messages = 1000
  data_format = "json"
[[outputs.influxdb_v2]]
  urls = [%q]
  token = ""
  organization = ""
  bucket = %q
`, broker.URL, in.URL, in.Bucket())
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := startProcess(b, nil, bin, "--config", conf)
	time.Sleep(3 * time.Second) // Telegraf has no readiness endpoint; let it subscribe
	pub := publisherFor(b, broker.URL)
	ingest(b, cmd.Process.Pid, pub, benchMsgs, 100, func() float64 {
		return float64(countInflux(b, in, "SELECT count(t) FROM mqtt_consumer"))
	})
}

// countInflux runs an InfluxQL count query and adds up every count it returns.
func countInflux(tb testing.TB, in *testenv.Influx, q string) int {
	tb.Helper()
	body := in.Query(tb, q)
	var res struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || len(res.Results) == 0 {
		tb.Fatalf("count query %q: %v %s", q, err, body)
	}
	total := 0
	for _, series := range res.Results[0].Series {
		for _, row := range series.Values {
			for _, v := range row[1:] {
				if n, ok := v.(float64); ok {
					total += int(n)
				}
			}
		}
	}
	return total
}

// BenchmarkAlarmToNotification: while the ingest load runs (50,000 messages
// per iteration), a fault reading is published every 100 ms for a different
// asset; its rule fires (immediate route) and a local webhook receiver
// records when the notification arrives. Latency = arrival − publish of the
// fault message: MQTT, ingest, rule evaluation, routing and delivery.
func BenchmarkAlarmToNotification(b *testing.B) {
	const assets = 100
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Alerts []string }
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		for _, a := range m.Alerts {
			asset := strings.SplitN(strings.SplitN(a, ":", 2)[1], "@", 2)[0]
			if _, ok := arrived[asset]; !ok {
				arrived[asset] = time.Now()
			}
		}
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer recv.Close()
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	dir := b.TempDir()
	cfg := benchConfig(in, broker.URL, dir, assets, false)
	cfg = strings.Replace(cfg, "  rules:\n    []\n", "  rules:\n    - {id: too-hot, target: {kind: sensor}, field: temperature, threshold: {above: 1000}, priority: critical}\n", 1)
	cfg += fmt.Sprintf(`alerts:
  base_url: http://127.0.0.1:1
  link_secret: bench-link-secret-0123456789
  database: %q
  channels: {hook: {type: webhook, url: %q}}
  people: [{id: eng, contacts: [{channel: hook}]}]
  teams: [{id: e, rotation: {members: [eng], start: 2026-01-01T00:00:00Z, shift: 24h, time_zone: UTC}}]
  policies: [{id: p, levels: [{notify: [team:e], wait: 1h}]}]
  routes: [{rules: [too-hot], policy: p, immediate: true}]
`, filepath.Join(dir, "alerts.db"), recv.URL)
	cfgPath := filepath.Join(dir, "bench.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	url := "http://" + strings.SplitN(strings.SplitN(cfg, "listen: \"", 2)[1], "\"", 2)[0]
	startProcess(b, nil, binary, "run", "-config", cfgPath)
	for deadline := time.Now().Add(20 * time.Second); scrape(url, "gateway_mqtt_connected") != 1; {
		if time.Now().After(deadline) {
			b.Fatal("gateway did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	load := publisherFor(b, broker.URL)
	faults := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("bench-faults"))
	if tok := faults.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer faults.Disconnect(100)
	var lat []time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		mu.Lock()
		clear(arrived)
		mu.Unlock()
		done := make(chan struct{})
		go func() { publishLoad(b, load, benchMsgs, assets); close(done) }()
		published := map[string]time.Time{}
		for i := 0; i < 20; i++ {
			time.Sleep(100 * time.Millisecond)
			asset := fmt.Sprintf("s%04d", i)
			published[asset] = time.Now()
			faults.Publish("bench/"+asset, 1, false, `{"t":5000,"h":1,"p":1,"b":1}`).Wait()
		}
		<-done
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := len(arrived)
			mu.Unlock()
			if n >= len(published) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d notifications arrived", n, len(published))
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		for asset, t := range published {
			lat = append(lat, arrived[asset].Sub(t))
		}
		mu.Unlock()
		// clear the faults for the next iteration
		for asset := range published {
			faults.Publish("bench/"+asset, 1, false, `{"t":20,"h":1,"p":1,"b":1}`).Wait()
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("%d alarms under load: p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(lat), q(0.5), q(0.99), float64(lat[len(lat)-1].Microseconds())/1000)
}

// BenchmarkWebsocketFanout: 100 websocket clients connected while the
// 50,000-message ingest load runs; every client reads everything. Reports
// readings and messages delivered per second per client and in all.
func BenchmarkWebsocketFanout(b *testing.B) {
	const clients = 100
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	dir := b.TempDir()
	cfg := benchConfig(in, broker.URL, dir, 100, false) + fmt.Sprintf(`dashboard:
  wall_token: bench-wall-token-123
  audit_database: %q
`, filepath.Join(dir, "audit.db"))
	cfgPath := filepath.Join(dir, "bench.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	listen := strings.SplitN(strings.SplitN(cfg, "listen: \"", 2)[1], "\"", 2)[0]
	url := "http://" + listen
	startProcess(b, nil, binary, "run", "-config", cfgPath)
	for deadline := time.Now().Add(20 * time.Second); scrape(url, "gateway_mqtt_connected") != 1; {
		if time.Now().After(deadline) {
			b.Fatal("gateway did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var readings, messages atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+listen+"/ws?token=bench-wall-token-123", nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				messages.Add(1)
				readings.Add(int64(bytes.Count(msg, []byte(`"field":`))))
			}
		}(c)
	}
	pub := publisherFor(b, broker.URL)
	b.ResetTimer()
	start := time.Now()
	r0, m0 := readings.Load(), messages.Load()
	for it := 0; it < b.N; it++ {
		want := scrape(url, "gateway_influx_points_written_total") + 4*benchMsgs
		publishLoad(b, pub, benchMsgs, 100)
		for deadline := time.Now().Add(time.Minute); scrape(url, "gateway_influx_points_written_total") < want; {
			if time.Now().After(deadline) {
				b.Fatal("ingest did not finish")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	r, m := readings.Load()-r0, messages.Load()-m0
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if d := scrape(url, "gateway_ws_clients_dropped_total"); d != 0 {
		b.Fatalf("%v clients dropped", d)
	}
	b.ReportMetric(float64(r)/elapsed.Seconds(), "readings/s")
	b.ReportMetric(float64(r)/elapsed.Seconds()/clients, "readings/s/client")
	b.ReportMetric(float64(m)/elapsed.Seconds()/clients, "msgs/s/client")
	b.Logf("%d clients, %s: %d messages and %d readings delivered, none dropped", clients, elapsed.Round(time.Millisecond), m, r)
}

// BenchmarkMQTTToScreen: the demo site with the wall display open in
// headless Chromium; an elevator's floor is published over MQTT and the
// benchmark polls the page until the tile shows it. Latency = publish to
// the value on screen (polling adds ~1-3 ms).
func BenchmarkMQTTToScreen(b *testing.B) {
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	s := newSite(b, in, broker)
	s.env = append(s.env, "SIMULATOR=false") // the benchmark is the only publisher for the car
	s.start()
	alloc := chromium(b)
	tab, cancel := newBrowser(alloc)
	defer cancel()
	if err := chromedp.Run(tab, chromedp.Navigate(s.url+"/?token=demo-wall-display-token&lang=en"),
		chromedp.WaitVisible(`.asset[data-asset="b5-lift-1"]`)); err != nil {
		b.Fatal(err)
	}
	pub := publisherFor(b, broker.URL)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N*20; i++ {
		floor := 100 + i
		sent := time.Now()
		pub.Publish("yushan/elevator/b5-lift-1", 1, false, fmt.Sprintf(`{"floor":%d,"door":"closed","running":true,"between_floors":false,"fault_code":0,"alarm":false,"trapped":0,"load_kg":0,"ts":%d}`, floor, sent.UnixMilli())).Wait()
		for {
			var text string
			// One evaluation in the page: the wall re-renders its tiles as data arrives.
			if err := chromedp.Run(tab, chromedp.Evaluate(`(document.querySelector('.asset[data-asset="b5-lift-1"] .val')||{}).textContent||""`, &text)); err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(text, fmt.Sprintf("%dF", floor)) {
				break
			}
			if time.Since(sent) > 5*time.Second {
				b.Fatalf("floor %d not on screen after 5 s (shows %q)", floor, text)
			}
		}
		lat = append(lat, time.Since(sent))
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.Logf("%d updates: p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(lat), q(0.5), q(0.99), float64(lat[len(lat)-1].Microseconds())/1000)
}
