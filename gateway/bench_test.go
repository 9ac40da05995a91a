package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/gateway/testenv"
)

const benchAssets = 100

// benchConfig: 100 sensors publishing 4-field JSON over MQTT, nothing else.
func benchConfig(in *testenv.Influx, broker, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: bench\nhttp: {listen: \"127.0.0.1:%d\"}\nlog: {level: warn}\nassets:\n", testenv.FreePortNoT())
	for i := 0; i < benchAssets; i++ {
		fmt.Fprintf(&b, "  - {id: s%03d, kind: sensor, building: B%d}\n", i, i%5)
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

// BenchmarkMQTTIngest: messages per CPU-second of the gateway process, end to
// end from a real Mosquitto into a real InfluxDB, with zero loss checked.
// Each iteration publishes 50,000 4-field JSON messages at QoS 1.
func BenchmarkMQTTIngest(b *testing.B) {
	const msgs = 50000
	broker := testenv.StartMosquitto(b)
	in := testenv.StartInflux(b)
	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "bench.yaml")
	cfg := benchConfig(in, broker.URL, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	listen := strings.TrimSuffix(strings.SplitN(strings.SplitN(cfg, "listen: \"", 2)[1], "\"", 2)[0], "")
	url := "http://" + listen
	cmd := exec.Command(binary, "run", "-config", cfgPath)
	cmd.Stderr = os.Stderr
	cmd.Env = os.Environ() // GATEWAY_CPUPROFILE=file profiles the gateway
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); scrape(url, "gateway_mqtt_connected") != 1; {
		if time.Now().After(deadline) {
			b.Fatal("gateway did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("bench-pub").SetMaxResumePubInFlight(1000))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)

	var cpuTotal, wallTotal time.Duration
	sent := 0
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		cpu0, _ := procCPU(cmd.Process.Pid)
		written0 := scrape(url, "gateway_influx_points_written_total")
		start := time.Now()
		toks := make([]paho.Token, 0, msgs)
		for i := 0; i < msgs; i++ {
			payload := fmt.Sprintf(`{"t":%.2f,"h":%.1f,"p":%.3f,"b":%d}`, 20+float64(i%100)/10, 40+float64(i%50), 101.3+float64(i%7)/100, 90-i%10)
			toks = append(toks, pub.Publish(fmt.Sprintf("bench/s%03d", i%benchAssets), 1, false, payload))
		}
		for _, t := range toks {
			t.Wait()
		}
		sent += msgs
		want := written0 + 4*msgs
		for deadline := time.Now().Add(2 * time.Minute); scrape(url, "gateway_influx_points_written_total") < want; {
			if time.Now().After(deadline) {
				b.Fatalf("only %v of %v points written", scrape(url, "gateway_influx_points_written_total"), want)
			}
			time.Sleep(200 * time.Millisecond) // scraping costs the gateway CPU: poll gently
		}
		wallTotal += time.Since(start)
		cpu1, _ := procCPU(cmd.Process.Pid)
		cpuTotal += cpu1 - cpu0
	}
	b.StopTimer()
	_, rss := procCPU(cmd.Process.Pid)
	if bad := scrape(url, "gateway_points_dropped_total"); bad > 0 {
		b.Fatalf("%v points dropped", bad)
	}
	stored := in.Query(b, "SELECT count(temperature) FROM sensor")
	b.ReportMetric(float64(cpuTotal.Microseconds())/float64(sent), "µs-cpu/msg")
	b.ReportMetric(float64(sent)/cpuTotal.Seconds(), "msgs/cpu-s")
	b.ReportMetric(float64(sent)/wallTotal.Seconds(), "msgs/s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	b.Logf("%d messages, gateway CPU %s, wall %s; InfluxDB count: %s", sent, cpuTotal, wallTotal, stored)
}
