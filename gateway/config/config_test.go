package config

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/rules/playbook"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func load(t *testing.T, name string, vars map[string]string) error {
	t.Helper()
	path := filepath.Join("testdata", name)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(path, raw, env(vars))
	return err
}

// Each fixture is a scenario; the error must say file, line, what and the fix.
func TestConfigErrors(t *testing.T) {
	cases := []struct{ file, want string }{
		{"unknown_key.yaml", `testdata/unknown_key.yaml:8: unknown key "adress"; fix: check the spelling (valid here: address, asset, comm_lost_after, max_backoff, max_gap, poll_interval, registers, serial, template, timeout, transport, unit_id)`},
		{"bad_address.yaml", `testdata/bad_address.yaml:8: modbus.devices[0].address: "127.0.0.1" is not host:port; fix: e.g. 192.168.10.20:502`},
		{"duplicate_asset.yaml", `testdata/duplicate_asset.yaml:4: assets[1].id: "pump" is declared twice (also assets[0]); fix: give each asset its own id`},
		{"undeclared_asset.yaml", `testdata/undeclared_asset.yaml:7: modbus.devices[0].asset: "pump-b9" is not declared under assets:; fix: declare it or correct the id`},
		{"impossible_register.yaml", `testdata/impossible_register.yaml:11: modbus.devices[0].registers[1].address: 65534 (+4) is outside 0..65535`},
		{"bit_on_coil.yaml", `testdata/bit_on_coil.yaml:10: modbus.devices[0].registers[0].type: coil holds bits, so the type must be bool, not uint16`},
		{"missing_template.yaml", `testdata/missing_template.yaml:7: modbus.devices[0].template: "pump-v3" is not defined under modbus.templates`},
		{"missing_env.yaml", `testdata/missing_env.yaml:4: environment variable INFLUX_TOKEN is not set; fix: export INFLUX_TOKEN, or write ${INFLUX_TOKEN:-default}`},
		{"bad_duration.yaml", "testdata/bad_duration.yaml:7: cannot unmarshal !!str `fast` into time.Duration"},
		{"mqtt_bad_topic.yaml", `testdata/mqtt_bad_topic.yaml:9: mqtt.subscriptions[0].topic: "site/lift#": level "lift#" mixes text and wildcards; fix: a level is literal, +, #, or {name}`},
		{"several_errors.yaml", "testdata/several_errors.yaml:2: log.level: \"loud\" is not a level; fix: debug, info, warn or error\n" +
			`testdata/several_errors.yaml:4: assets[0].id: "pump room" is not a valid id; fix: letters, digits, '.', '_' or '-', e.g. b3-pump-room`},
		{"empty.yaml", "testdata/empty.yaml: the file is empty; fix: start from configs/demo.yaml"},
		{"rule_two_conditions.yaml", "testdata/rule_two_conditions.yaml:7: rules.rules[0]: a rule needs exactly one of threshold, state, rate or no_data (it has 2)"},
		{"rule_unknown_suppressor.yaml", `testdata/rule_unknown_suppressor.yaml:11: rules.rules[0].suppressed_by[0].rule: "mains-gone" is not a rule id`},
		{"rule_matches_nothing.yaml", "testdata/rule_matches_nothing.yaml:8: rules.rules[0].target: matches no declared asset; fix: check the asset id, kind, building or floor"},
		{"playbooks_bad.yaml", `testdata/playbooks_bad/entrapment.yaml:15: steps[1].when[0].op: "equals" is not an operator; fix: eq, ne, gt, ge, lt or le`},
		{"playbooks_unknown_key.yaml", `testdata/playbooks_unknown_key/outage.yaml:7: unknown key "dealine"; fix: check the spelling (valid here: action, after, complete, contacts, deadline, decide, drill_only, escalate, id, note_required, on_overdue, optional, records, role, source, title, title_zh, when, when_any)`},
		{"rule_bad_priority.yaml", `testdata/rule_bad_priority.yaml:7: rules.rules[0].priority: "urgent" is not a priority; fix: critical, high, medium or low`},
		// Review 23: the simulator was on by default in any config.
		{"simulator_not_demo.yaml", `testdata/simulator_not_demo.yaml:6: simulator.enabled: the simulator publishes simulated telemetry to the broker and serves fake Modbus devices: only for a demo; fix: simulator.enabled: false (SIMULATOR=false) on a real site, or demo: true at the top level for a demo`},
		// Review 2: no dashboard: section on a reachable address meant no authentication.
		{"open_listen_no_dashboard.yaml", `testdata/open_listen_no_dashboard.yaml:2: http.listen: "0.0.0.0:8080" is reachable from other machines, but there is no dashboard: section, so nobody would have to log in; fix: add dashboard: (users, wall_token), or listen on 127.0.0.1`},
		{"tls_half.yaml", `testdata/tls_half.yaml:3: http.tls_cert: set both tls_cert and tls_key, or neither`},
		{"alerts_limit_too_high.yaml", `testdata/alerts_limit_too_high.yaml:13: alerts.channels.duty.limit.per_minute: 30 is more than a dingtalk robot takes (20 a minute; beyond it the platform throttles the robot); fix: 20 or less, or leave it out for the platform's limit`},
		{"alerts_endpoint_shared.yaml", `testdata/alerts_endpoint_shared.yaml:16: alerts.channels.sms.endpoint: "duty-group" is also channels.duty's endpoint, which sends elsewhere; fix: one endpoint name per robot, SMS account or SMTP relay`},
		// Issue 12: the service standard's settings.
		{"service_category_not_listed.yaml", `testdata/service_category_not_listed.yaml:8: rules.rules[0].workorder.category: "plumbing" is not under rules.categories; fix: one of electrical`},
		{"service_target_percent.yaml", `testdata/service_target_percent.yaml:6: rules.targets.callback: 95 is not a share; fix: a number between 0 and 1, e.g. 0.95 for 95 %`},
		{"service_bad_holiday.yaml", `testdata/service_bad_holiday.yaml:6: rules.calendar.holidays[1]: "10/02" is not a date; fix: YYYY-MM-DD, e.g. 2026-10-01`},
		// Issue 13: the register, inspection rounds and maintenance plans.
		{"register_bad_expiry.yaml", `testdata/register_bad_expiry.yaml:8: register.assets[0].certificates[0].expires: "2026/11/31" is not a date; fix: the certificate's last valid day, YYYY-MM-DD`},
		{"duty_handover_bad_team.yaml", `testdata/duty_handover_bad_team.yaml:6: duty.handover.teams[0]: "enginering" is not a team under alerts: teams:`},
		{"register_bad_phone.yaml", `testdata/register_bad_phone.yaml:6: register.contacts[0].phone: "ninety-five" is not a phone number; fix: digits, spaces, +, -, ( ), e.g. 95598`},
		{"inspections_bad_schedule.yaml", `testdata/inspections_bad_schedule.yaml:9: inspections.routes[0].schedule: "every evening at 8" is not a schedule; fix: cron minute hour day month weekday, e.g. "0 20 * * *" (daily 20:00) or "0 9 * * 1" (Mondays 09:00)`},
		{"inspections_telemetry_on_photo.yaml", `testdata/inspections_telemetry_on_photo.yaml:15: inspections.routes[0].checkpoints[0].items[0].telemetry: only readings and yes/no items can be verified from telemetry`},
		{"maintenance_two_kinds.yaml", `testdata/maintenance_two_kinds.yaml:6: maintenance.plans[0]: set exactly one of schedule (cron), every_days (with start) or run_hours`},
		// Issue 14: the phone pages' contractors.
		{"mobile_bad_phone.yaml", `testdata/mobile_bad_phone.yaml:6: mobile.contractors[0].phone: "call Otis" is not a phone number; fix: digits, spaces and '-', optionally starting with +, e.g. "+86 400 820 0000"`},
		{"service_review_time.yaml", `testdata/service_review_time.yaml:6: rules.daily_review.at: "8.30" is not a time of day; fix: HH:MM, e.g. 08:30`},
		{"service_monthly_report_to.yaml", `testdata/service_monthly_report_to.yaml:6: rules.monthly_report.to[0]: the monthly report goes out through the alert channels, and there is no alerts: section; fix: configure alerts: (people and channels) or remove monthly_report.to`},
		{"playbooks_bad_category.yaml", `testdata/playbooks_bad_category/plan.yaml:9: steps[0].action.workorder.category: "flood_damage" is not under rules.categories; fix: one of plumbing`},
		{"planned_works_bad.yaml", `testdata/planned_works_bad.yaml:10: planned_works.kinds.power.rules[1]: "mains-gone" is not a rule id (rules.rules)`},
		{"planned_works_bad_kind.yaml", `testdata/planned_works_bad_kind.yaml:8: planned_works.kinds.gas: "gas" is not a kind of planned work; fix: power, water, maintenance`},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			err := load(t, c.file, nil)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if err.Error() != c.want {
				t.Fatalf("error:\n got %s\nwant %s", err, c.want)
			}
		})
	}
}

func TestSecretsAreNotPrinted(t *testing.T) {
	err := load(t, "secret_in_bad_section.yaml", map[string]string{"INFLUX_TOKEN": "s3cr3t-t0ken"})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err = %v", err)
	}
	if want := `testdata/secret_in_bad_section.yaml:2: influxdb.url: "not a url" is not an http(s) URL; fix: e.g. http://127.0.0.1:8086`; err.Error() != want {
		t.Fatalf("err = %v", err)
	}
}

func TestDemoConfigLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Assets) != 17 || len(cfg.Modbus.Devices) != 8 || cfg.MQTT == nil || len(cfg.MQTT.Subs) != 3 || !cfg.Simulator.Enabled {
		t.Fatalf("demo config: %d assets, %d devices", len(cfg.Assets), len(cfg.Modbus.Devices))
	}
	if got := cfg.Modbus.Devices[1].Fields(); len(got) != 16 {
		t.Fatalf("template not applied: %d fields", len(got))
	}
	if cfg.InfluxDB.Queue.MaxBytes != 1<<30 || cfg.Simulator.Broker != "tcp://127.0.0.1:1883" {
		t.Fatalf("defaults/substitution: %+v %q", cfg.InfluxDB.Queue, cfg.Simulator.Broker)
	}
}

func TestEnvSubstitution(t *testing.T) {
	raw := []byte("site: ${SITE}\nhttp: {listen: \"${ADDR:-127.0.0.1:9}\"}\ninfluxdb: {url: \"http://h:1\", bucket: b, token: \"$$literal\"}\nassets: [{id: a, kind: k}]\n")
	cfg, err := Parse("x.yaml", raw, env(map[string]string{"SITE": "north"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Site != "north" || cfg.HTTP.Listen != "127.0.0.1:9" || cfg.InfluxDB.Token != "$literal" {
		t.Fatalf("got site %q listen %q token %q", cfg.Site, cfg.HTTP.Listen, cfg.InfluxDB.Token)
	}
}

// FuzzLoad: no input may crash the loader.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"unknown_key.yaml", "impossible_register.yaml", "mqtt_bad_topic.yaml", "../../../configs/demo.yaml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse("fuzz.yaml", raw, env(nil))
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// siteEnv is what an installer exports for configs/site.example.yaml.
func siteEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600)
	os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600)
	return map[string]string{
		"GATEWAY_TLS_CERT": cert, "GATEWAY_TLS_KEY": key,
		"INFLUX_URL": "http://10.0.0.5:8086", "INFLUX_TOKEN": "influx-site-token-7f3a", "INFLUX_ORG": "yushan", "INFLUX_BUCKET": "gateway",
		"MQTT_BROKER": "tls://10.0.0.6:8883", "MQTT_USERNAME": "gateway", "MQTT_PASSWORD": "mqtt-site-pass-19c2",
		"GATEWAY_PUBLIC_URL": "https://gw.yushan.example:8443", "ALERT_LINK_SECRET": strings.Repeat("ab", 32), "WECOM_KEY": "wecom-key-0001",
		"WALL_TOKEN": "wall-site-token-5b7e9d", "DUTY_PASSWORD": "duty-site-pass-a1", "MANAGER_PASSWORD": "mgr-site-pass-b2",
		"ADMIN_PASSWORD": "admin-site-pass-c3", "ADMIN_TOKEN": "admin-site-token-d4e5f6",
	}
}

func loadSite(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	path := filepath.Join("..", "..", "configs", "site.example.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(path, raw, env(vars))
}

// configs/site.example.yaml passes `gateway check` once its variables are
// set: no simulator, no demo, HTTPS with a Secure session cookie.
func TestSiteExampleLoads(t *testing.T) {
	cfg, err := loadSite(t, siteEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Demo || cfg.Simulator.Enabled || !cfg.HTTP.TLS() || !cfg.Dashboard.SecureCookie || len(cfg.Warnings()) != 0 {
		t.Fatalf("demo %v simulator %v tls %v secure %v warnings %q", cfg.Demo, cfg.Simulator.Enabled, cfg.HTTP.TLS(), cfg.Dashboard.SecureCookie, cfg.Warnings())
	}
	if cfg.HTTP.ReadTimeout != 30*time.Second || cfg.HTTP.WriteTimeout != 60*time.Second || cfg.HTTP.IdleTimeout != 120*time.Second ||
		cfg.HTTP.ReadHeaderTimeout != 10*time.Second || cfg.HTTP.MaxHeaderBytes != 64<<10 || cfg.HTTP.MaxWSClients != 50 {
		t.Fatalf("http: %+v", cfg.HTTP)
	}
	if cfg.Alerts.BaseURL != "https://gw.yushan.example:8443" {
		t.Fatalf("base_url %q", cfg.Alerts.BaseURL)
	}
	// A forgotten variable stops it, naming file:line.
	vars := siteEnv(t)
	delete(vars, "ALERT_LINK_SECRET")
	if _, err := loadSite(t, vars); err == nil || !strings.Contains(err.Error(), "site.example.yaml:") || !strings.Contains(err.Error(), "ALERT_LINK_SECRET is not set") {
		t.Fatalf("without ALERT_LINK_SECRET: %v", err)
	}
}

// Review 1: the published demo secrets and short link secrets were
// accepted silently. Outside a demo each is refused at its line, with the
// variable to set, and the value is never printed.
func TestPublishedSecretsRefusedOutsideDemo(t *testing.T) {
	vars := siteEnv(t)
	vars["WALL_TOKEN"] = "demo-wall-display-token"
	vars["ADMIN_TOKEN"] = "demo-admin-token"
	vars["ALERT_LINK_SECRET"] = "sixteen-byte-key-but-short"
	_, err := loadSite(t, vars)
	if err == nil {
		t.Fatal("loaded with published secrets")
	}
	want := []string{
		`site.example.yaml:108: alerts.link_secret: is 26 bytes; signed acknowledgement links need at least 32 random bytes; fix: export ALERT_LINK_SECRET=$(openssl rand -hex 32)`,
		`site.example.yaml:125: dashboard.wall_token: is a value published in this repository (configs/demo.yaml, README): anyone can use it; fix: export WALL_TOKEN=$(openssl rand -hex 32), or demo: true at the top level for a demo`,
		`site.example.yaml:132: dashboard.users[2].token: is a value published in this repository (configs/demo.yaml, README): anyone can use it; fix: export ADMIN_TOKEN=$(openssl rand -hex 32), or demo: true at the top level for a demo`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %s\nin %v", w, err)
		}
	}
	for _, secret := range []string{"demo-wall-display-token", "demo-admin-token", "sixteen-byte"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error prints a secret: %v", err)
		}
	}
	err = load(t, "demo_secrets_not_demo.yaml", map[string]string{"ADMIN_TOKEN": "a-fresh-admin-token-1234"})
	if err == nil || !strings.Contains(err.Error(), "demo_secrets_not_demo.yaml:5: dashboard.wall_token: is a value published") ||
		!strings.Contains(err.Error(), "demo_secrets_not_demo.yaml:7: dashboard.users[0].password: is a value published in this repository (configs/demo.yaml, README): anyone can use it; fix: export ADMIN_PASSWORD=") {
		t.Fatalf("fallbacks to demo values: %v", err)
	}
}

// demo: true accepts them, and says so loudly.
func TestDemoIsLoud(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "demo.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(path, raw, env(nil)) // every fallback: the published values
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.Warnings(), "\n")
	for _, want := range []string{"DEMO MODE", "demo: dashboard.wall_token", "demo: alerts.link_secret", "demo: dashboard.users[2].token", "the simulator is on"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	for _, s := range PublishedSecrets() {
		if strings.Contains(w, s) {
			t.Fatalf("a warning prints the secret %q", s)
		}
	}
	if cfg.Alerts.BaseURL != "http://127.0.0.1:8080" {
		t.Fatalf("base_url %q", cfg.Alerts.BaseURL)
	}
	// GATEWAY_LISTEN moves the listen address, not the links phones get.
	cfg, err = Parse(path, raw, env(map[string]string{"GATEWAY_LISTEN": "0.0.0.0:9000"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != "0.0.0.0:9000" || cfg.Alerts.BaseURL != "http://127.0.0.1:8080" {
		t.Fatalf("listen %q base_url %q", cfg.HTTP.Listen, cfg.Alerts.BaseURL)
	}
}

// The list of published secrets covers every secret fallback in
// configs/demo.yaml and every demo credential in the README.
func TestPublishedSecretsMatchDemoConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(link_secret|wall_token|password|token):\s*"?\$\{[A-Z_]+:-([^}]*)\}`)
	found := 0
	for _, m := range re.FindAllSubmatch(raw, -1) {
		if v := string(m[2]); v != "" && !slices.Contains(PublishedSecrets(), v) {
			t.Errorf("demo.yaml falls back to %q for %s, which PublishedSecrets does not list", v, m[1])
		}
		found++
	}
	if found < 7 {
		t.Fatalf("found %d secret fallbacks in demo.yaml", found)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"demo-wall-display-token", "operator-demo", "engineer-demo", "admin-demo", "demo-operator-token"} {
		if bytes.Contains(readme, []byte(s)) && !slices.Contains(PublishedSecrets(), s) {
			t.Errorf("README shows %q", s)
		}
	}
}

// Review 11: the server had only ReadHeaderTimeout: 300 connections that
// sent the headers of a POST and one byte of its body stayed open. The
// configured server drops such a client after read_timeout, and an idle
// keep-alive connection after idle_timeout.
func TestServerDropsSlowAndIdleClients(t *testing.T) {
	h := HTTP{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: time.Second,
		IdleTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096}
	srv := h.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.Serve(srv, ln)
	defer srv.Close()
	closed := func(send string) error {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := io.WriteString(c, send); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) // far beyond the server's timeouts
		_, err = io.Copy(io.Discard, c)                    // returns nil at EOF: the server closed it
		return err
	}
	if err := closed("POST /login HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
		t.Fatalf("slow body: the connection stayed open: %v", err)
	}
	if err := closed("GET / HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatalf("idle keep-alive: the connection stayed open: %v", err)
	}
	if err := closed("GET / HTTP/1.1\r\nHost: gw\r\n"); err != nil {
		t.Fatalf("slow headers: the connection stayed open: %v", err)
	}
}

// gateway check (and the start-up log) names every playbook action that
// changes equipment without a person confirming.
func TestAutoEquipmentActionsAreWarned(t *testing.T) {
	c := &Config{Playbooks: Playbooks{Loaded: []playbook.Playbook{{ID: "siren", Steps: []playbook.Step{{ID: "sound",
		Action: &playbook.ActionSpec{Auto: true, Reason: "the siren only warns", Write: []playbook.WriteAction{{Field: "siren", Value: true}}}}}}}}}
	w := strings.Join(c.Warnings(), "\n")
	if !strings.Contains(w, "siren: steps[0].action writes equipment without confirmation (the siren only warns)") {
		t.Fatalf("warnings: %q", w)
	}
}
