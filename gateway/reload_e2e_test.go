package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/internal/testenv"
	"github.com/propgate/gateway/rules"
)

// The rule the first config has and the reload removes (always active: the
// simulated sensor and the load report a battery around 90-96 %).
const reloadRemovedRule = `
    - id: reload-battery-high
      name: "Reload test: battery above 50 %"
      target: {asset: b5-leak-pump-room}
      field: battery
      threshold: {above: 50}
      priority: low
      category: monitoring
`

// The rule the reload adds.
const reloadNewRule = `
    - id: reload-battery-present
      name: "Reload test: battery reported"
      target: {asset: b5-leak-pump-room}
      field: battery
      threshold: {above: 10}
      priority: low
      category: monitoring
`

// healthz is /healthz with the config's status.
type healthz struct {
	Status string `json:"status"`
	Config struct {
		File       string `json:"file"`
		LastReload *struct {
			Result        string   `json:"result"`
			Error         string   `json:"error"`
			Summary       string   `json:"summary"`
			RestartNeeded []string `json:"restart_needed"`
		} `json:"last_reload"`
	} `json:"config"`
}

type reloadAlarm struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	State       string    `json:"state"`
	AckBy       string    `json:"ack_by"`
	ActiveSince time.Time `json:"active_since"`
}

// getStatus is the status code of a GET.
func (s *site) getStatus(path string) int {
	s.t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// SIGHUP under MQTT load, three times: a valid edit (a rule's name
// changed, a rule added, a rule removed, an MQTT setting and a Modbus
// device changed), then an invalid file. The gateway applies the first
// without losing a point (every message the load published is in
// InfluxDB, although the MQTT collector restarted), keeps the state of the
// acknowledged alarm whose rule was renamed, closes the removed rule's
// alarm with a note, fires the new rule; it refuses the invalid file with
// the file:line errors `gateway check` prints, keeps running the previous
// config, and says so in /healthz and /metrics.
func TestReloadUnderLoadIntegration(t *testing.T) {
	testenv.Integration(t)
	broker := testenv.StartMosquitto(t)
	in := testenv.StartInflux(t)
	s := newSite(t, in, broker)
	dir := t.TempDir()
	demo := demoYAML(t) // the register's dates pinned: no certificate reminders by calendar
	if err := os.Symlink(filepath.Join(testenv.RepoRoot(t), "configs", "playbooks"), filepath.Join(dir, "playbooks")); err != nil {
		t.Fatal(err)
	}
	s.config = filepath.Join(dir, "gateway.yaml")
	edit := func(text, old, new string) string {
		t.Helper()
		if !strings.Contains(text, old) {
			t.Fatalf("demo.yaml has no %q", old)
		}
		return strings.Replace(text, old, new, 1)
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(s.config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first := edit(string(demo), "\n  rules:\n", "\n  rules:"+reloadRemovedRule)
	write(first)
	s.start()
	s.subscribed()

	// An alarm to keep: mains lost, acknowledged.
	s.post("/api/v1/simulator/scenarios/power-outage")
	const mains = "mains-lost:b3-power-panel"
	var before reloadAlarm
	s.waitFor("mains-lost active", 20*time.Second, func() bool {
		s.getJSON("/api/v1/alarms/"+mains, &before)
		return before.State == "unacknowledged"
	})
	if code, body := s.postJSON("/api/v1/alarms/"+mains+"/ack", `{"note": "utility called"}`); code != 200 {
		t.Fatalf("ack: %d %s", code, body)
	}
	s.getJSON("/api/v1/alarms/"+mains, &before)
	const removed, added = "reload-battery-high:b5-leak-pump-room", "reload-battery-present:b5-leak-pump-room"
	s.waitFor("the rule to remove active", 20*time.Second, func() bool {
		var a reloadAlarm
		s.getJSON("/api/v1/alarms/"+removed, &a)
		return a.State == "unacknowledged"
	})

	// The load: one sensor's readings at QoS 1, each with its own
	// timestamp (a range in the past no real reading uses), until told to stop.
	load := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("reload-load"))
	if tok := load.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer load.Disconnect(100)
	base := time.Now().Add(-time.Hour).UnixMilli()
	var published atomic.Int64
	loadStart := time.Now()
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tokens := make(chan paho.Token, 256) // in flight at once, acknowledged in order
	wg.Go(func() {
		defer close(tokens)
		tick := time.NewTicker(2 * time.Millisecond) // up to ~500 messages a second
		defer tick.Stop()
		for i := int64(0); ctx.Err() == nil; i += 2 {
			<-tick.C
			for j := i; j < i+2; j++ {
				tokens <- load.Publish("yushan/water_sensor/b5-leak-pump-room", 1, false,
					fmt.Sprintf(`{"state": "dry", "battery": %d, "ts": %d}`, 90+j%5, base+j))
			}
		}
	})
	wg.Go(func() {
		for tok := range tokens {
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Errorf("publish %d: %v", published.Load(), tok.Error())
				for range tokens {
				}
				return
			}
			published.Add(1)
		}
	})
	s.waitFor("load running", 10*time.Second, func() bool { return published.Load() > 500 })

	// Reload 1: mains-lost renamed, a rule removed, a rule added, the MQTT
	// keep-alive and one Modbus device's poll interval changed.
	second := edit(first, reloadRemovedRule, reloadNewRule)
	second = edit(second, `name: "Incoming supply lost"`, `name: "Incoming supply lost (renamed)"`)
	second = edit(second, "  client_id: gateway-yushan-garden\n", "  client_id: gateway-yushan-garden\n  keep_alive: 20s\n")
	second = edit(second, "unit_id: 4, template: fire-panel-contacts, poll_interval: 1s", "unit_id: 4, template: fire-panel-contacts, poll_interval: 2s")
	write(second)
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitFor("reload applied", 20*time.Second, func() bool { return s.metric(`gateway_config_reloads_total{result="applied"}`) == 1 })
	var h healthz
	s.getJSON("/healthz", &h)
	if h.Status != "ok" || h.Config.LastReload == nil || h.Config.LastReload.Result != "applied" ||
		!strings.Contains(h.Config.LastReload.Summary, "1 closed") || !strings.Contains(h.Config.LastReload.Summary, "collectors restarted: [modbus mqtt]") ||
		len(h.Config.LastReload.RestartNeeded) != 0 {
		t.Fatalf("healthz after the reload: %+v %+v", h, h.Config.LastReload)
	}
	var after reloadAlarm
	s.getJSON("/api/v1/alarms/"+mains, &after)
	if after.State != "acknowledged" || after.AckBy != before.AckBy || !after.ActiveSince.Equal(before.ActiveSince) || after.Name != "Incoming supply lost (renamed)" {
		t.Fatalf("the renamed rule's alarm: before %+v, after %+v", before, after)
	}
	s.waitFor("the new rule fires", 20*time.Second, func() bool {
		var a reloadAlarm
		s.getJSON("/api/v1/alarms/"+added, &a)
		return a.State == "unacknowledged"
	})
	if code := s.getStatus("/api/v1/alarms/" + removed); code != 404 {
		t.Fatalf("the removed rule's alarm: GET answered %d", code)
	}
	s.waitFor("MQTT back after its restart", 20*time.Second, func() bool { return s.metric("gateway_mqtt_connected") == 1 })
	n := published.Load()
	s.waitFor("more load after the reload", 20*time.Second, func() bool { return published.Load() > n+500 })

	// Reload 2: an invalid file. Refused with check's errors; nothing changes.
	third := edit(second, reloadNewRule, reloadNewRule+"      on_delay: soon\n")
	write(third)
	check := exec.Command(binary, "check", "-config", s.config)
	check.Env = s.env
	out, err := check.CombinedOutput()
	if err == nil {
		t.Fatalf("gateway check accepted the invalid file:\n%s", out)
	}
	want := strings.TrimSpace(strings.TrimPrefix(string(out), "gateway: invalid config:\n"))
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitFor("reload refused", 20*time.Second, func() bool { return s.metric(`gateway_config_reloads_total{result="refused"}`) == 1 })
	s.getJSON("/healthz", &h)
	if h.Config.LastReload == nil || h.Config.LastReload.Result != "refused" || strings.TrimSpace(h.Config.LastReload.Error) != want ||
		!strings.Contains(want, "gateway.yaml:") {
		t.Fatalf("healthz after the refused reload: %+v; gateway check said:\n%s", h.Config.LastReload, out)
	}
	if s.metric("gateway_config_last_reload_successful") != 0 || !strings.Contains(s.stderr.String(), "config reload refused; the running config stays") {
		t.Fatalf("the refusal is not in /metrics or the log")
	}
	var a reloadAlarm
	s.getJSON("/api/v1/alarms/"+added, &a)
	if a.State != "unacknowledged" {
		t.Fatalf("after the refused reload the new rule's alarm is %q", a.State)
	}
	s.getJSON("/api/v1/alarms/"+mains, &after)
	if after.State != "acknowledged" || after.Name != "Incoming supply lost (renamed)" {
		t.Fatalf("after the refused reload: %+v", after)
	}

	// Stop the load; every message published is stored, with its timestamp.
	stopLoad()
	wg.Wait()
	total := published.Load()
	stored := func() map[string]any {
		return flux(t, in, fmt.Sprintf(`from(bucket: "%s") |> range(start: %d, stop: %d) |> filter(fn: (r) => r._measurement == "water_sensor" and r.asset == "b5-leak-pump-room" and r._field == "battery")`,
			in.Bucket(), base/1000, (base+total)/1000+1))
	}
	var got map[string]any
	s.waitFor(fmt.Sprintf("%d load messages in InfluxDB", total), 30*time.Second, func() bool {
		got = stored()
		return int64(len(got)) >= total
	})
	for i := range total {
		if _, ok := got[fmt.Sprintf("b5-leak-pump-room@%d", base+i)]; !ok {
			t.Errorf("load message %d (ts %d) is not in InfluxDB", i, base+i)
		}
	}
	s.stop(syscall.SIGTERM)

	// The removed rule's alarm was closed, with the note, in the store.
	store, err := sqlite.OpenRules(filepath.Join(s.data, "gateway.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hist, err := store.AlarmHistory(context.Background(), removed)
	if err != nil || len(hist) == 0 {
		t.Fatalf("history of %s: %v %v", removed, hist, err)
	}
	if last := hist[len(hist)-1]; last.To != rules.StateNormal || last.Note != rules.RetiredNote {
		t.Fatalf("the removed rule's alarm ended %+v", last)
	}
	t.Logf("%d load messages (%.0f/s) across two reloads, all stored; MQTT and Modbus collectors restarted once", total, float64(total)/time.Since(loadStart).Seconds())
}
