package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/propgate/gateway/collectors/queue"
	"github.com/propgate/gateway/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gateway-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gateway")
	// Test clients act as the demo operator on the gateway's API.
	http.DefaultClient.Transport = operatorTransport{http.DefaultTransport}
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build gateway: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// operatorToken is the demo operator's bearer token (configs/demo.yaml).
const operatorToken = "demo-operator-token"

type operatorTransport struct{ next http.RoundTripper }

func (t operatorTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if (strings.HasPrefix(r.URL.Path, "/api/v1/") || strings.HasPrefix(r.URL.Path, "/demo/")) && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+operatorToken)
	}
	return t.next.RoundTrip(r)
}

// site is one gateway process running configs/demo.yaml against test services.
type site struct {
	t      testing.TB
	env    []string
	url    string
	data   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	config string // default configs/demo.yaml
	// stderrFile, when set, receives the log instead of stderr (a stream
	// the test names in JOURNAL_STREAM).
	stderrFile *os.File
	// bin, when set, runs another binary (an upgrade).
	bin string
}

func newSite(t testing.TB, in *testenv.Influx, broker *testenv.Mosquitto) *site {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s := &site{t: t, url: "http://" + listen, data: t.TempDir()}
	s.env = append(os.Environ(),
		"INFLUX_URL="+in.URL, "INFLUX_BUCKET="+in.Bucket(), "MQTT_BROKER="+broker.URL,
		"GATEWAY_DATA="+s.data, "GATEWAY_LISTEN="+listen, "GATEWAY_PUBLIC_URL=http://"+listen, "SCHEDULE_DRILLS=false",
		fmt.Sprintf("SIM_MODBUS_PUMPS=%d", testenv.FreePort(t)), fmt.Sprintf("SIM_MODBUS_PANELS=%d", testenv.FreePort(t)))
	return s
}

func (s *site) start() {
	s.t.Helper()
	s.stderr = &bytes.Buffer{}
	config := s.config
	if config == "" {
		dir := s.t.TempDir()
		config = filepath.Join(dir, "demo.yaml")
		if err := os.WriteFile(config, demoYAML(s.t), 0o600); err != nil {
			s.t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(testenv.RepoRoot(s.t), "configs", "playbooks"), filepath.Join(dir, "playbooks")); err != nil {
			s.t.Fatal(err)
		}
	}
	bin := binary
	if s.bin != "" {
		bin = s.bin
	}
	s.cmd = exec.Command(bin, "run", "-config", config)
	s.cmd.Env = s.env
	s.cmd.Stderr = s.stderr
	if s.stderrFile != nil {
		s.cmd.Stderr = s.stderrFile
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	s.waitFor("healthz 200", 20*time.Second, func() bool {
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// registerDates are the demo register's dates that start reminders as the
// calendar moves (certificates, warranties).
var registerDates = regexp.MustCompile(`((?:expires|warranty[a-z_]*):\s*)"?\d{4}-\d{2}-\d{2}"?`)

// demoYAML is configs/demo.yaml with the register's expiry and warranty
// dates moved far ahead: the shipped demo's dates are real calendar dates,
// so its certificate reminders (30, 7, 1 days) change from one day to the
// next and would make what a test sees depend on when it runs. Tests of the
// reminders set their own dates.
func demoYAML(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !registerDates.Match(raw) {
		t.Fatal("configs/demo.yaml has no register dates to pin: update demoYAML")
	}
	return registerDates.ReplaceAll(raw, []byte("${1}2099-12-31"))
}

func (s *site) waitFor(what string, within time.Duration, ok func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %s; gateway log:\n%s", what, within, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *site) stop(sig syscall.Signal) {
	s.t.Helper()
	s.cmd.Process.Signal(sig)
	err := s.cmd.Wait()
	if sig == syscall.SIGTERM && err != nil {
		s.t.Fatalf("gateway exited with %v after SIGTERM; log:\n%s", err, s.stderr)
	}
}

func (s *site) getJSON(path string, v any) {
	s.t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) post(path string) {
	s.t.Helper()
	resp, err := http.Post(s.url+path, "application/json", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		s.t.Fatalf("POST %s: %s %s", path, resp.Status, body)
	}
}

type field struct {
	Value   any       `json:"value"`
	Quality string    `json:"quality"`
	Time    time.Time `json:"time"`
}

type asset struct {
	ID     string           `json:"id"`
	Fields map[string]field `json:"fields"`
}

func (s *site) asset(id string) asset {
	var a asset
	s.getJSON("/api/v1/assets/"+id, &a)
	return a
}

func (s *site) metric(name string) float64 {
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return f
}

// waitTicks waits until the counter has advanced by n: the gateway has
// done that many more passes (instead of sleeping and hoping it did).
func (s *site) waitTicks(counter string, n float64) {
	s.t.Helper()
	base := s.metric(counter)
	if base < 0 {
		s.t.Fatalf("no metric %s", counter)
	}
	s.waitFor(fmt.Sprintf("%v more %s", n, counter), 30*time.Second, func() bool { return s.metric(counter) >= base+n })
}

// observer is an independent MQTT subscriber recording what the simulated
// elevators publish: (asset, timestamp) → floor.
type observer struct {
	mu   sync.Mutex
	msgs map[string]int64
	c    paho.Client
}

func observe(t *testing.T, broker string) *observer {
	o := &observer{msgs: map[string]int64{}}
	o.c = paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("observer"))
	if tok := o.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	tok := o.c.Subscribe("yushan/elevator/+", 1, func(_ paho.Client, m paho.Message) {
		var p struct {
			Floor int64 `json:"floor"`
			TS    int64 `json:"ts"`
		}
		if json.Unmarshal(m.Payload(), &p) == nil {
			o.mu.Lock()
			o.msgs[fmt.Sprintf("%s@%d", strings.TrimPrefix(m.Topic(), "yushan/elevator/"), p.TS)] = p.Floor
			o.mu.Unlock()
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { o.c.Disconnect(100) })
	return o
}

// between returns the observed messages with a timestamp in [from, cut).
func (o *observer) between(from, cut time.Time) map[string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int64{}
	for k, v := range o.msgs {
		ts, _ := strconv.ParseInt(k[strings.LastIndexByte(k, '@')+1:], 10, 64)
		if ts >= from.UnixMilli() && ts < cut.UnixMilli() {
			out[k] = v
		}
	}
	return out
}

// subscribed waits until the gateway's MQTT collector has its
// subscriptions, and returns when: messages published before it are not
// the gateway's to receive (the simulator may publish first).
func (s *site) subscribed() time.Time {
	s.t.Helper()
	s.waitFor("MQTT subscribed", 20*time.Second, func() bool { return s.metric("gateway_mqtt_connected") == 1 })
	return time.Now()
}

// flux runs a Flux query through the 2.x API and returns "asset@unixms" → value.
func flux(t *testing.T, in *testenv.Influx, q string) map[string]any {
	t.Helper()
	c := influxdb2.NewClient(in.URL, "")
	defer c.Close()
	res, err := c.QueryAPI("").Query(context.Background(), q)
	if err != nil {
		t.Fatalf("flux: %v\n%s", err, q)
	}
	out := map[string]any{}
	for res.Next() {
		r := res.Record()
		out[fmt.Sprintf("%v@%d", r.ValueByKey("asset"), r.Time().UnixMilli())] = r.Value()
	}
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	return out
}

// The simulated site → gateway → InfluxDB, values read back through Flux and
// compared with what an independent subscriber saw and what the API showed.
func TestSimulatedSiteToInfluxDBIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	in := testenv.StartInflux(t)
	obs := observe(t, broker.URL)
	s := newSite(t, in, broker)
	s.start()
	from := s.subscribed()

	s.waitFor("panel polled", 10*time.Second, func() bool { return s.asset("b3-power-panel").Fields["mains_present"].Value == true })
	s.waitTicks("gateway_rules_ticks_total", 2) // a few ticks of normal operation
	s.post("/api/v1/simulator/scenarios/power-outage")
	s.waitFor("outage seen over Modbus", 10*time.Second, func() bool { return s.asset("b3-power-panel").Fields["mains_present"].Value == false })
	s.waitFor("trapped car seen over MQTT", 10*time.Second, func() bool {
		f := s.asset("b3-lift-1").Fields["trapped"]
		return f.Value != nil && f.Value.(float64) > 0
	})
	s.waitFor("a dozen elevator messages observed", 20*time.Second, func() bool {
		return len(obs.between(from, time.Now().Add(-1500*time.Millisecond))) >= 12
	})
	panel := s.asset("b3-power-panel")
	cut := time.Now().Add(-1500 * time.Millisecond)
	s.stop(syscall.SIGTERM) // graceful: everything received is flushed

	// MQTT path: every elevator message published before the cut is stored
	// with its own timestamp and value.
	seen := obs.between(from, cut)
	if len(seen) < 12 {
		t.Fatalf("observer saw only %d elevator messages before %s (%d in all); log:\n%s", len(seen), cut, len(obs.msgs), s.stderr)
	}
	stored := flux(t, in, `from(bucket: "`+in.Bucket()+`") |> range(start: -10m) |> filter(fn: (r) => r._measurement == "elevator" and r._field == "floor")`)
	for k, floor := range seen {
		if v, ok := stored[k]; !ok || v != floor {
			t.Errorf("elevator message %s (floor %d): InfluxDB has %v (present %v)", k, floor, v, ok)
		}
	}
	// Modbus path: the panel's last voltage and mains state as the API showed them.
	for fieldName, want := range map[string]any{"voltage_a": panel.Fields["voltage_a"].Value, "mains_present": false} {
		f := panel.Fields[fieldName]
		got := flux(t, in, `from(bucket: "`+in.Bucket()+`") |> range(start: -10m) |> filter(fn: (r) => r._measurement == "distribution_panel" and r.asset == "b3-power-panel" and r._field == "`+fieldName+`")`)
		v, ok := got[fmt.Sprintf("b3-power-panel@%d", f.Time.UnixMilli())]
		if !ok || fmt.Sprint(v) != fmt.Sprint(want) {
			t.Errorf("%s at %s: InfluxDB has %v (present %v), API showed %v", fieldName, f.Time, v, ok, want)
		}
	}
	// Before the outage the panel read mains present with ~230 V.
	volts := flux(t, in, `from(bucket: "`+in.Bucket()+`") |> range(start: -10m) |> filter(fn: (r) => r.asset == "b3-power-panel" and r._field == "voltage_a") |> max()`)
	for _, v := range volts {
		if f, _ := v.(float64); f < 220 || f > 240 {
			t.Errorf("max voltage_a %v, want about 230", v)
		}
	}
}

// Gateway killed (SIGKILL) while points are queued on disk, InfluxDB back,
// gateway restarted: the queued points are delivered, and no elevator
// message published before the kill is missing.
func TestSIGKILLWithQueuedPointsDeliversThemOnRestartIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	in := testenv.StartInflux(t)
	obs := observe(t, broker.URL)
	in.Stop() // InfluxDB away: everything goes to the disk queue
	s := newSite(t, in, broker)
	s.start()
	from := s.subscribed()
	s.waitFor("points queued on disk", 20*time.Second, func() bool { return s.metric("gateway_influx_queue_points") > 300 })
	kill := time.Now()
	s.stop(syscall.SIGKILL)

	q, err := queue.Open(queue.Options{Dir: filepath.Join(s.data, "queue")})
	if err != nil {
		t.Fatal(err)
	}
	queued := q.Stats().Points
	q.Close()
	if queued < 300 {
		t.Fatalf("only %d points on disk after SIGKILL", queued)
	}

	in.Start()
	s.start()
	s.waitFor("queue drained", 30*time.Second, func() bool { return s.metric("gateway_influx_queue_points") == 0 })
	s.stop(syscall.SIGTERM)

	stored := countInflux(t, in, fmt.Sprintf(`SELECT count(*) FROM /.*/ WHERE time <= %d`, kill.UnixNano()))
	if stored < queued {
		t.Fatalf("InfluxDB holds %d points from before the kill; %d were queued on disk", stored, queued)
	}
	seen := obs.between(from, kill.Add(-time.Second))
	if len(seen) < 3 {
		t.Fatalf("observer saw only %d elevator messages before the kill", len(seen))
	}
	got := flux(t, in, `from(bucket: "`+in.Bucket()+`") |> range(start: -10m) |> filter(fn: (r) => r._measurement == "elevator" and r._field == "floor")`)
	for k, floor := range seen {
		if v, ok := got[k]; !ok || v != floor {
			t.Errorf("elevator message %s (floor %d) lost across SIGKILL: InfluxDB has %v", k, floor, v)
		}
	}
	t.Logf("%d points queued at SIGKILL, %d stored from before the kill, %d elevator messages checked", queued, stored, len(seen))
}

func TestCheckCommand(t *testing.T) {
	out, err := exec.Command(binary, "check", "-config", filepath.Join("config", "testdata", "bad_address.yaml")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `bad_address.yaml:8: modbus.devices[0].address: "127.0.0.1" is not host:port`) {
		t.Fatalf("check of a bad config: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "check", "-config", filepath.Join("..", "configs", "demo.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok (17 assets, 8 Modbus devices, 3 MQTT subscriptions, 33 rules, 6 playbooks)") {
		t.Fatalf("check of the demo config: %v\n%s", err, out)
	}
}
