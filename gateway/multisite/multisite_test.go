package multisite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "multisite-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gateway")
	if out, err := exec.Command("go", "build", "-o", binary, "..").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build gateway: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuf is a process's output, read while it runs.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// gw is one gateway process (a site or the center) and its API.
type gw struct {
	t     *testing.T
	name  string
	url   string
	token string
	args  []string
	env   []string
	cmd   *exec.Cmd
	log   *logBuf
}

func (g *gw) start() {
	g.t.Helper()
	g.log = &logBuf{}
	g.cmd = exec.Command(binary, g.args...)
	g.cmd.Env, g.cmd.Stderr = g.env, g.log
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			g.cmd.Wait()
		}
	})
	g.waitFor("healthz", 30*time.Second, func() bool {
		resp, err := http.Get(g.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (g *gw) waitFor(what string, within time.Duration, ok func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: %s not within %s; %s's log:\n%s", g.name, what, within, g.name, g.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends a request with token (the gateway's operator token when
// empty) and decodes a JSON answer into out (when not nil).
func (g *gw) call(token, method, path, body string, out any) (int, string) {
	g.t.Helper()
	if token == "" {
		token = g.token
	}
	req, _ := http.NewRequest(method, g.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			g.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func (g *gw) get(path string, out any) {
	g.t.Helper()
	if code, body := g.call("", "GET", path, "", out); code != 200 {
		g.t.Fatalf("%s GET %s: %d %s", g.name, path, code, body)
	}
}

// wan is the WAN between the sites' bridges and the center's broker: a
// TCP relay that can be cut (every connection closed, new ones refused)
// and restored on the same address.
type wan struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newWAN(t *testing.T, target string) *wan {
	w := &wan{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	w.serve(ln)
	t.Cleanup(w.cut)
	return w
}

func (w *wan) serve(ln net.Listener) {
	w.mu.Lock()
	w.ln = ln
	w.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", w.target)
			if err != nil {
				c.Close()
				continue
			}
			w.mu.Lock()
			w.conns = append(w.conns, c, up)
			w.mu.Unlock()
			go func() { io.Copy(up, c); up.Close(); c.Close() }()
			go func() { io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
}

func (w *wan) cut() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln != nil {
		w.ln.Close()
		w.ln = nil
	}
	for _, c := range w.conns {
		c.Close()
	}
	w.conns = nil
}

func (w *wan) restore() {
	w.t.Helper()
	ln, err := net.Listen("tcp", w.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	w.serve(ln)
}

// bridge is a site broker's Mosquitto bridge to the center (the same
// lines as scripts/run-multisite.sh and docs/multisite.md).
func bridge(site, center string) string {
	return fmt.Sprintf(`
connection center
address %s
remote_clientid bridge-%s
cleansession false
bridge_protocol_version mqttv311
try_private true
restart_timeout 1
keepalive_interval 5
notifications false
topic propgate/v1/site/%s/event/# out 1
topic propgate/v1/site/%s/status out 1
topic propgate/v1/site/%s/cmd in 1
`, center, site, site, site, site)
}

type alarmView struct {
	ID     string    `json:"id"`
	Site   string    `json:"site"`
	State  string    `json:"state"`
	Acked  bool      `json:"acked"`
	AckBy  string    `json:"ack_by"`
	Since  time.Time `json:"since"`
	Active bool      `json:"active"`
}

type orderView struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Version int    `json:"version"`
	Rule    string `json:"rule"`
	AlarmID string `json:"alarm_id"`
}

type siteView struct {
	Site         string         `json:"site"`
	Name         string         `json:"name"`
	Online       bool           `json:"online"`
	OfflineSince *time.Time     `json:"offline_since"`
	ActiveAlarms map[string]int `json:"active_alarms"`
	CompleteTo   int64          `json:"complete_to"`
	HeadSeq      int64          `json:"head_seq"`
}

type commandView struct {
	ID     string `json:"id"`
	Site   string `json:"site"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

const lowPressure = "pump-low-pressure:b3-pump-room"

// Two real site gateways (the demo's simulated site each, with its own
// config, SQLite and Mosquitto bridged to the center's) and a real
// center (gateway center, PostgreSQL):
//   - both sites show at the center, including what they sent before the
//     center's session existed (gap detection and replay);
//   - an outage at one site reaches the center's alarm list within 2 s;
//   - acknowledging it at the center acknowledges it at the site (the
//     site's own alarm says who); a regional user sees only their sites;
//   - the same command redelivered (twice, straight onto the center's
//     broker) is applied once;
//   - the WAN cut (the bridge's connection to the center dropped and
//     refused) while alarms and work orders change at the site and an
//     operator acknowledges at the center: the site shows offline with
//     since when; restored, the command is applied and the center's
//     records equal the site's exactly.
func TestMultisiteIntegration(t *testing.T) {
	testenv.Integration(t)
	pg := testenv.StartPostgres(t)
	dbURL := pg.NewDatabase(t)
	influx := testenv.StartInflux(t)
	central := testenv.StartMosquitto(t)
	links := map[string]*wan{} // each site's own WAN
	root := testenv.RepoRoot(t)
	demo, err := os.ReadFile(filepath.Join(root, "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	sites := map[string]*gw{}
	for _, id := range []string{"north-1", "south-2"} {
		links[id] = newWAN(t, central.Addr())
		local := testenv.StartMosquittoWith(t, bridge(id, links[id].addr))
		dir := t.TempDir()
		cfg := strings.Replace(string(demo), "site: yushan-garden", "site: "+id, 1)
		cfg = strings.Replace(cfg, "  dir: playbooks", "  dir: "+filepath.Join(root, "configs", "playbooks"), 1)
		cfg += "\nreplication: {every: 200ms, heartbeat: 1s}\n"
		path := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		g := &gw{t: t, name: id, url: "http://" + listen, token: "demo-operator-token", args: []string{"run", "-config", path},
			env: append(os.Environ(), "INFLUX_URL="+influx.URL, "INFLUX_BUCKET="+influx.Bucket(), "MQTT_BROKER="+local.URL,
				"GATEWAY_DATA="+dir, "GATEWAY_LISTEN="+listen, "GATEWAY_PUBLIC_URL=http://"+listen, "SCHEDULE_DRILLS=false",
				fmt.Sprintf("SIM_MODBUS_PUMPS=%d", testenv.FreePort(t)), fmt.Sprintf("SIM_MODBUS_PANELS=%d", testenv.FreePort(t)))}
		g.start()
		sites[id] = g
	}
	north := sites["north-1"]

	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	centerCfg := fmt.Sprintf(`site: center
site_name: 集团监控中心
demo: true
http: {listen: %q}
center:
  database: %q
  broker: %s
  offline_after: 3s
  gap_wait: 1s
  resend: 2s
  sites:
    - {id: north-1, name: 玉山花园北区, url: %q}
dashboard:
  wall_token: center-wall-token-123
  audit_database: %s/audit.db
  users:
    - {username: li.na, name: 李娜, role: operator, password: center-demo-pass, token: center-operator-token}
    - {username: wang.qiang, name: 王强, role: operator, password: center-demo-pass, token: center-north-token, sites: [north-*]}
`, listen, dbURL, central.URL, north.url+"/", dir)
	centerPath := filepath.Join(dir, "center.yaml")
	if err := os.WriteFile(centerPath, []byte(centerCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	center := &gw{t: t, name: "center", url: "http://" + listen, token: "center-operator-token", args: []string{"center", "-config", centerPath}, env: os.Environ()}
	center.start()

	// 1. Both sites at the center, complete (what each sent before the
	// center subscribed came again on the center's replay_from).
	centerSites := func(token string) map[string]siteView {
		var ss []siteView
		if code, body := center.call(token, "GET", "/api/v1/sites", "", &ss); code != 200 {
			t.Fatalf("sites: %d %s", code, body)
		}
		out := map[string]siteView{}
		for _, s := range ss {
			out[s.Site] = s
		}
		return out
	}
	center.waitFor("both sites online and complete", 30*time.Second, func() bool {
		ss := centerSites("")
		n, s := ss["north-1"], ss["south-2"]
		return n.Online && s.Online && n.CompleteTo == n.HeadSeq && s.CompleteTo == s.HeadSeq && n.HeadSeq > 0 && s.HeadSeq > 0
	})
	if ss := centerSites("center-north-token"); len(ss) != 1 || ss["north-1"].Name != "玉山花园北区" {
		t.Fatalf("a north user sees %+v", ss)
	}

	// 2. An outage at north-1 reaches the center within 2 s.
	if code, body := north.call("", "POST", "/api/v1/simulator/scenarios/pump-fault", `{"target": "b3-pump-room"}`, nil); code != 200 {
		t.Fatalf("inject: %d %s", code, body)
	}
	siteAlarm := func(g *gw, id string) alarmView {
		var a alarmView
		g.call("", "GET", "/api/v1/alarms/"+id, "", &a)
		return a
	}
	north.waitFor("the low-pressure alarm", 30*time.Second, func() bool { return siteAlarm(north, lowPressure).State == "unacknowledged" })
	seen := time.Now()
	centerAlarms := func(token, query string) map[string]alarmView {
		var as []alarmView
		if code, body := center.call(token, "GET", "/api/v1/alarms?"+query, "", &as); code != 200 {
			t.Fatalf("center alarms: %d %s", code, body)
		}
		out := map[string]alarmView{}
		for _, a := range as {
			out[a.ID] = a
		}
		return out
	}
	center.waitFor("the alarm at the center", 2*time.Second, func() bool {
		a, ok := centerAlarms("", "site=north-1")[lowPressure]
		return ok && a.State == "unacknowledged" && a.Site == "north-1"
	})
	t.Logf("site → center: %s", time.Since(seen).Round(time.Millisecond))
	if code, _ := center.call("center-north-token", "GET", "/api/v1/alarms?site=south-2", "", nil); code != http.StatusForbidden {
		t.Fatalf("a north user reading south-2's alarms: %d", code)
	}

	// 3. Acknowledged at the center: applied at the site, as li.na.
	var ack commandView
	if code, body := center.call("", "POST", "/api/v1/sites/north-1/alarms/"+lowPressure+"/ack", `{"note": "中心已派人"}`, &ack); code != 200 || ack.Status != "applied" {
		t.Fatalf("ack at the center: %d %s", code, body)
	}
	if a := siteAlarm(north, lowPressure); a.State != "acknowledged" || a.AckBy != "li.na" {
		t.Fatalf("at the site after the center's acknowledgement: %+v", a)
	}
	if code, _ := center.call("center-north-token", "POST", "/api/v1/sites/south-2/alarms/"+lowPressure+"/ack", `{}`, nil); code != http.StatusForbidden {
		t.Fatalf("a north user acknowledging at south-2: %d", code)
	}

	// 4. The same command twice more, straight onto the center's broker (a
	// redelivery), then a marker behind it: once the marker's answer is
	// back the copies were handled, and none was applied again.
	var raw json.RawMessage
	center.get("/api/v1/commands/"+ack.ID, &raw)
	pc := paho.NewClient(paho.NewClientOptions().AddBroker(central.URL).SetClientID("test-redeliver"))
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pc.Disconnect(100)
	for range 2 {
		if tok := pc.Publish("propgate/v1/site/north-1/cmd", 1, false, []byte(raw)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	if code, body := center.call("", "POST", "/api/v1/sites/north-1/alarms/no-such-alarm/ack", `{}`, nil); code != http.StatusConflict || !strings.Contains(body, "refused") {
		t.Fatalf("the marker: %d %s", code, body)
	}
	var history struct {
		History []struct{ To, By string } `json:"history"`
	}
	north.get("/api/v1/alarms/"+lowPressure, &history)
	acks := 0
	for _, h := range history.History {
		if h.To == "acknowledged" && h.By == "li.na" {
			acks++
		}
	}
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var results int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM center_events WHERE site = 'north-1' AND kind = 'command' AND key = $1`, ack.ID).Scan(&results); err != nil {
		t.Fatal(err)
	}
	if acks != 1 || results != 1 {
		t.Fatalf("the command redelivered twice: %d acknowledgements at the site, %d results at the center", acks, results)
	}

	// 5. The WAN cut. At the site: another fault, a work order moved;
	// at the center: an operator acknowledges the new alarm (it waits).
	var orders []orderView
	north.get("/api/v1/workorders?status=all", &orders)
	var pumpOrder int64
	for _, o := range orders {
		if o.AlarmID == lowPressure || strings.HasPrefix(o.Rule, "pump-") {
			pumpOrder = o.ID
		}
	}
	if pumpOrder == 0 {
		t.Fatalf("no work order for the pump fault: %+v", orders)
	}
	links["north-1"].cut()
	cutAt := time.Now()
	if code, body := north.call("", "POST", "/api/v1/workorders/"+fmt.Sprint(pumpOrder)+"/transition", `{"to": "accepted", "note": "已接单"}`, nil); code != 200 {
		t.Fatalf("transition at the site: %d %s", code, body)
	}
	if code, body := north.call("", "POST", "/api/v1/simulator/scenarios/pump-fault", `{"target": "b5-pump-room"}`, nil); code != 200 {
		t.Fatalf("inject: %d %s", code, body)
	}
	const b5 = "pump-low-pressure:b5-pump-room"
	north.waitFor("the b5 alarm", 30*time.Second, func() bool { return siteAlarm(north, b5).State == "unacknowledged" })
	if code, body := north.call("", "POST", "/api/v1/alarms/"+b5+"/ack", `{"note": "现场确认"}`, nil); code != 200 {
		t.Fatalf("ack at the site: %d %s", code, body)
	}
	var waiting commandView
	if code, body := center.call("", "POST", "/api/v1/sites/north-1/alarms/"+lowPressure+"/ack", `{"note": "again"}`, &waiting); code != http.StatusAccepted || waiting.Status != "pending" {
		t.Fatalf("a command during the cut: %d %s", code, body)
	}
	center.waitFor("north-1 offline, south-2 online", 10*time.Second, func() bool {
		ss := centerSites("")
		n := ss["north-1"]
		return !n.Online && n.OfflineSince != nil && !n.OfflineSince.Before(cutAt.Add(-3*time.Second)) && ss["south-2"].Online
	})
	t.Logf("WAN cut for %s", time.Since(cutAt).Round(time.Second))
	links["north-1"].restore()

	// 6. The center converges: every alarm and work order of north-1 the
	// same at both ends; the waiting command answered (refused: the alarm
	// was acknowledged already).
	same := func() (bool, string) {
		var sa []alarmView
		north.get("/api/v1/alarms?state=all", &sa)
		ca := centerAlarms("", "site=north-1&state=all")
		// Every alarm the center holds as the site has it now; every alarm
		// that ever left normal at the site at the center (one never
		// raised has never changed: nothing to replicate).
		for _, a := range sa {
			c, ok := ca[a.ID]
			if !ok && a.State == "normal" && a.AckBy == "" && a.Since.IsZero() {
				continue
			}
			if c.State != a.State || c.Acked != a.Acked || c.AckBy != a.AckBy || !c.Since.Equal(a.Since) {
				return false, fmt.Sprintf("alarm %s: site %+v, center %+v", a.ID, a, c)
			}
			delete(ca, a.ID)
		}
		if len(ca) != 0 {
			return false, fmt.Sprintf("alarms at the center the site does not have: %+v", ca)
		}
		var so, co []orderView
		north.get("/api/v1/workorders?status=all", &so)
		center.get("/api/v1/workorders?site=north-1&status=all", &co)
		byID := map[int64]orderView{}
		for _, o := range co {
			byID[o.ID] = o
		}
		if len(so) != len(co) {
			return false, fmt.Sprintf("%d work orders at the site, %d at the center", len(so), len(co))
		}
		for _, o := range so {
			if c := byID[o.ID]; c.Status != o.Status || c.Version != o.Version {
				return false, fmt.Sprintf("work order %d: site %+v, center %+v", o.ID, o, c)
			}
		}
		return true, ""
	}
	var why string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, w := same()
		n := centerSites("")["north-1"]
		if ok && n.Online && n.CompleteTo == n.HeadSeq {
			break
		}
		why = fmt.Sprintf("%s; north-1 at the center: %+v", w, n)
		if time.Now().After(deadline) {
			t.Fatalf("the center did not converge within 30s after the WAN came back: %s\ncenter's log:\n%s\nnorth-1's log:\n%s", why, center.log, north.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("converged %s after the WAN came back", time.Since(deadline.Add(-30*time.Second)).Round(100*time.Millisecond))
	center.waitFor("the waiting command answered", 10*time.Second, func() bool {
		var c commandView
		center.get("/api/v1/commands/"+waiting.ID, &c)
		return c.Status == "refused" || c.Status == "applied"
	})
	if a := siteAlarm(north, b5); a.State != "acknowledged" || a.AckBy != "wang.li" {
		t.Fatalf("the site's own acknowledgement during the cut: %+v", a)
	}
}
