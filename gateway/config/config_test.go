package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"playbooks_unknown_key.yaml", `testdata/playbooks_unknown_key/outage.yaml:7: unknown key "dealine"; fix: check the spelling (valid here: action, after, complete, deadline, decide, escalate, id, note_required, on_overdue, optional, records, role, title, title_zh, when, when_any)`},
		{"rule_bad_priority.yaml", `testdata/rule_bad_priority.yaml:7: rules.rules[0].priority: "urgent" is not a priority; fix: critical, high, medium or low`},
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
	if len(cfg.Assets) != 13 || len(cfg.Modbus.Devices) != 4 || cfg.MQTT == nil || len(cfg.MQTT.Subs) != 3 || !cfg.Simulator.Enabled {
		t.Fatalf("demo config: %d assets, %d devices", len(cfg.Assets), len(cfg.Modbus.Devices))
	}
	if got := cfg.Modbus.Devices[1].Fields(); len(got) != 14 {
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
