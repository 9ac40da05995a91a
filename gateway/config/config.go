// Package config loads the gateway's YAML configuration: ${ENV} substitution,
// strict decoding (unknown keys are errors), defaults, validation of each
// section, then cross-references, in that order. Every error names the file,
// the line and, where there is one, the fix. Secrets are never printed.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/collectors/influx"
	"github.com/propgate/gateway/collectors/modbus"
	"github.com/propgate/gateway/collectors/mqtt"
	"github.com/propgate/gateway/collectors/sim"
	"github.com/propgate/gateway/dashboard"
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/planned"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/register"
)

// Config is the whole gateway configuration.
type Config struct {
	// Demo marks a demonstration gateway: the published demo secrets and the
	// simulator are accepted, loudly (Warnings). Never set it on a real site.
	Demo      bool                   `yaml:"demo"`
	Site      string                 `yaml:"site"`
	SiteName  string                 `yaml:"site_name"` // what screens and messages call the site (玉山花园); default: site
	HTTP      HTTP                   `yaml:"http"`
	Log       Log                    `yaml:"log"`
	Assets    []Asset                `yaml:"assets"`
	InfluxDB  influx.Config          `yaml:"influxdb"`
	Modbus    modbus.Config          `yaml:"modbus"`
	MQTT      *mqtt.Config           `yaml:"mqtt"`
	Simulator sim.Config             `yaml:"simulator"`
	Rules     RulesSection           `yaml:"rules"`
	Playbooks Playbooks              `yaml:"playbooks"`
	Alerts    *alerts.Config         `yaml:"alerts"`
	Dashboard *dashboard.AuthConfig  `yaml:"dashboard"`
	Mobile    dashboard.MobileConfig `yaml:"mobile"` // the engineer's phone pages (/m/...): photos, contractors' phones
	Stale     StaleSweep             `yaml:"stale"`
	// The duty room's register and rounds (issue #13): the asset register and
	// contacts, inspection rounds and night lighting, preventive maintenance.
	Register    *register.Config    `yaml:"register"`
	Inspections *inspection.Config  `yaml:"inspections"`
	Maintenance *maintenance.Config `yaml:"maintenance"`
	Planned     planned.Config      `yaml:"planned_works"` // planned water/power stops and maintenance (rules/planned)
	Duty        DutySection         `yaml:"duty"`          // the duty room's handovers (rules/duty); the roster is seeded from alerts: teams
	// Site → center replication (issue #15, docs/multisite.md).
	Replication *replication.SiteConfig   `yaml:"replication"`
	Center      *replication.CenterConfig `yaml:"center"`
	path        string
	root        *yaml.Node
	orig        []byte // the file before ${ENV} substitution, while validating
}

// Playbooks is the playbooks: section: a folder of playbook files.
type Playbooks struct {
	Dir string `yaml:"dir"` // relative to the config file; empty: no playbooks
	// ScheduleDrills starts each plan's drills on its calendar (drill: in
	// the plan); default true. Tests turn it off.
	ScheduleDrills *bool               `yaml:"schedule_drills"`
	Loaded         []playbook.Playbook `yaml:"-"`
}

// Drills reports whether scheduled drills run.
func (p Playbooks) Drills() bool { return p.ScheduleDrills == nil || *p.ScheduleDrills }

// HTTP is the http: section. The gateway serves HTTPS when tls_cert and
// tls_key are set; otherwise plain HTTP (put a TLS-terminating proxy in
// front of anything not on loopback, and set dashboard.secure_cookie).
type HTTP struct {
	Listen            string        `yaml:"listen"`              // default 127.0.0.1:8080
	TLSCert           string        `yaml:"tls_cert"`            // PEM certificate chain file; with tls_key
	TLSKey            string        `yaml:"tls_key"`             // PEM private key file; with tls_cert
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 10s
	ReadTimeout       time.Duration `yaml:"read_timeout"`        // whole request, body included; default 30s
	WriteTimeout      time.Duration `yaml:"write_timeout"`       // default 60s (the websocket sets its own deadlines)
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // keep-alive connections; default 120s
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`    // default 65536
	MaxWSClients      int           `yaml:"max_ws_clients"`      // websocket screens; beyond: 503; default 200
}

// TLS reports whether the gateway serves HTTPS itself.
func (h HTTP) TLS() bool { return h.TLSCert != "" }

// Server is the HTTP server the section describes: every timeout and the
// header cap set, so slow or idle clients cannot hold connections open.
func (h HTTP) Server(handler http.Handler) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout,
		WriteTimeout: h.WriteTimeout, IdleTimeout: h.IdleTimeout, MaxHeaderBytes: h.MaxHeaderBytes}
}

// Serve serves srv on ln, over TLS when tls_cert and tls_key are set.
func (h HTTP) Serve(srv *http.Server, ln net.Listener) error {
	if h.TLS() {
		return srv.ServeTLS(ln, h.TLSCert, h.TLSKey)
	}
	return srv.Serve(ln)
}

// Log is the log: section.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// StaleSweep configures how often fields are checked for staleness.
type StaleSweep struct {
	Every time.Duration `yaml:"check_every"` // default 5s
}

// Asset is one declared piece of equipment.
type Asset struct {
	ID         string        `yaml:"id"`
	Kind       string        `yaml:"kind"`
	Name       string        `yaml:"name"`
	Building   string        `yaml:"building"`
	Floor      string        `yaml:"floor"`
	Location   string        `yaml:"location"`
	StaleAfter time.Duration `yaml:"stale_after"` // default 0: fields never go stale
}

// Path is the file the config was loaded from.
func (c *Config) Path() string { return c.path }

// CollectorAssets converts the declared assets.
func (c *Config) CollectorAssets() []collectors.Asset {
	out := make([]collectors.Asset, len(c.Assets))
	for i, a := range c.Assets {
		out[i] = collectors.Asset{ID: a.ID, Kind: collectors.AssetKind(a.Kind), Name: a.Name, Building: a.Building, Floor: a.Floor, Location: a.Location, StaleAfter: a.StaleAfter}
	}
	return out
}

// SimEndpoints lists the Modbus devices the simulator should serve.
func (c *Config) SimEndpoints() []sim.Endpoint {
	var out []sim.Endpoint
	for _, d := range c.Modbus.Devices {
		out = append(out, sim.Endpoint{Asset: d.Asset, Address: d.Address, Unit: uint8(d.UnitID)})
	}
	return out
}

// Error is a config error at a place in a file.
type Error struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, substitutes, decodes, defaults and validates a config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, raw, os.LookupEnv)
}

var envRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// substitute replaces ${NAME} and ${NAME:-default}; $$ is a literal $.
func substitute(file string, raw []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var errs []error
	lines := bytes.Split(raw, []byte("\n"))
	for i, line := range lines {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			continue
		}
		lines[i] = envRE.ReplaceAllFunc(line, func(m []byte) []byte {
			if string(m) == "$$" {
				return []byte("$")
			}
			sub := envRE.FindSubmatch(m)
			name := string(sub[1])
			if v, ok := lookup(name); ok {
				return []byte(v)
			}
			if bytes.Contains(m, []byte(":-")) {
				return sub[2]
			}
			errs = append(errs, &Error{File: file, Line: i + 1, Msg: fmt.Sprintf("environment variable %s is not set; fix: export %s, or write ${%s:-default}", name, name, name)})
			return m
		})
	}
	return bytes.Join(lines, []byte("\n")), errors.Join(errs...)
}

var unknownFieldRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// Parse loads a config from bytes; lookup resolves ${ENV} references.
func Parse(file string, raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	orig := raw
	raw, err := substitute(file, raw, lookup)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, yamlError(file, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: file, Msg: "the file is empty; fix: start from configs/demo.yaml"}
	}
	cfg := &Config{path: file, root: &root, orig: orig}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, yamlError(file, err)
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.root, cfg.orig = nil, nil // only needed for error lines; large configs hold a big node tree
	if cfg.Playbooks.Dir != "" {
		if err := cfg.loadPlaybooks(); err != nil {
			return nil, err
		}
	}
	if err := cfg.checkStepContacts(); err != nil {
		return nil, &Error{File: file, Msg: err.Error()}
	}
	return cfg, nil
}

func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return &Error{File: file, Line: n, Msg: m[2]}
		}
		return &Error{File: file, Msg: msg}
	}
	var errs []error
	for _, e := range te.Errors {
		if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
			n, _ := strconv.Atoi(m[1])
			keys := knownKeys()[m[3]]
			errs = append(errs, &Error{File: file, Line: n, Msg: fmt.Sprintf("unknown key %q; fix: check the spelling (valid here: %s)", m[2], strings.Join(keys, ", "))})
			continue
		}
		if m := lineRE.FindStringSubmatch(e); m != nil {
			n, _ := strconv.Atoi(m[1])
			errs = append(errs, &Error{File: file, Line: n, Msg: m[2]})
			continue
		}
		errs = append(errs, &Error{File: file, Msg: e})
	}
	return errors.Join(errs...)
}

// knownKeys maps each config struct type name (as yaml.v3 prints it) to its keys.
func knownKeys() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || out[t.String()] != nil {
			return
		}
		var keys []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			keys = append(keys, tag)
		}
		sort.Strings(keys)
		out[t.String()] = keys
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	return out
}

func (c *Config) setDefaults() {
	if c.Site == "" {
		c.Site = "default"
	}
	if c.SiteName == "" {
		c.SiteName = c.Site
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	setDuration(&c.HTTP.ReadHeaderTimeout, 10*time.Second)
	setDuration(&c.HTTP.ReadTimeout, 30*time.Second)
	setDuration(&c.HTTP.WriteTimeout, 60*time.Second)
	setDuration(&c.HTTP.IdleTimeout, 120*time.Second)
	if c.HTTP.MaxHeaderBytes == 0 {
		c.HTTP.MaxHeaderBytes = 64 << 10
	}
	if c.HTTP.MaxWSClients == 0 {
		c.HTTP.MaxWSClients = 200
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Stale.Every == 0 {
		c.Stale.Every = 5 * time.Second
	}
	c.InfluxDB.SetDefaults()
	c.Modbus.SetDefaults()
	if c.MQTT != nil {
		c.MQTT.SetDefaults()
	}
	if c.Simulator.Broker == "" && c.MQTT != nil {
		c.Simulator.Broker = c.MQTT.Broker
	}
	c.Simulator.SetDefaults()
	c.Rules.SetDefaults()
	c.Planned.SetDefaults()
	photos := filepath.Dir(c.Rules.Database)
	if strings.Contains(c.Rules.Database, "://") { // a PostgreSQL URL: photos stay on this machine
		photos = "data"
	}
	c.Mobile.SetDefaults(photos)
	if c.Alerts != nil {
		c.Alerts.SetDefaults()
	}
	c.registerDefaults()
	c.replicationDefaults() // replication.go
	if c.Dashboard != nil {
		c.Dashboard.SetDefaults()
		if c.HTTP.TLS() {
			c.Dashboard.SecureCookie = true
		}
	}
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CenterOnly: the config is a monitoring center's (gateway center): a
// center: section and no equipment of its own.
func (c *Config) CenterOnly() bool { return c.Center != nil && len(c.Assets) == 0 }

// validate checks each section, then the references between them.
func (c *Config) validate() error {
	var errs []error
	add := func(section string, err error) {
		if err == nil {
			return
		}
		var fe *cfgerr.FieldError
		if errors.As(err, &fe) {
			path := section
			if strings.HasPrefix(fe.Path, "[") {
				path = section + fe.Path
			} else if fe.Path != "" {
				path = section + "." + fe.Path
			}
			errs = append(errs, c.errAt(path, fe.Msg))
			return
		}
		errs = append(errs, c.errAt(section, err.Error()))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		add("http", cfgerr.Errorf("listen", "%q is not host:port; fix: e.g. 127.0.0.1:8080", c.HTTP.Listen))
	} else if c.Dashboard == nil && !loopback(c.HTTP.Listen) {
		add("http", cfgerr.Errorf("listen", "%q is reachable from other machines, but there is no dashboard: section, so nobody would have to log in; fix: add dashboard: (users, wall_token), or listen on 127.0.0.1", c.HTTP.Listen))
	}
	add("http", c.HTTP.validate())
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log", cfgerr.Errorf("level", "%q is not a level; fix: debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log", cfgerr.Errorf("format", "%q is not a format; fix: text or json", c.Log.Format))
	}
	if len(c.Assets) == 0 && !c.CenterOnly() {
		add("assets", cfgerr.Errorf("", "no assets are declared; fix: list the site's equipment under assets: (or, for a monitoring center, a center: section: gateway center)"))
	}
	ids := map[string]int{}
	for i, a := range c.Assets {
		p := fmt.Sprintf("[%d]", i)
		switch {
		case !idRE.MatchString(a.ID):
			add("assets", cfgerr.Errorf(p+".id", "%q is not a valid id; fix: letters, digits, '.', '_' or '-', e.g. b3-pump-room", a.ID))
		case ids[a.ID] > 0:
			add("assets", cfgerr.Errorf(p+".id", "%q is declared twice (also assets[%d]); fix: give each asset its own id", a.ID, ids[a.ID]-1))
		}
		ids[a.ID] = i + 1
		if !idRE.MatchString(a.Kind) {
			add("assets", cfgerr.Errorf(p+".kind", "%q is not a kind; fix: pump_room, distribution_panel, water_sensor, elevator, lighting or your own", a.Kind))
		}
		if a.StaleAfter < 0 {
			add("assets", cfgerr.Errorf(p+".stale_after", "must not be negative"))
		}
	}
	if !c.CenterOnly() {
		add("influxdb", c.InfluxDB.Validate())
	}
	add("modbus", c.Modbus.Validate())
	if c.MQTT != nil {
		add("mqtt", c.MQTT.Validate())
	}
	add("rules", c.Rules.Validate(c.CollectorAssets()))
	ruleIDs := map[string]bool{}
	for _, r := range c.Rules.Rules {
		ruleIDs[r.ID] = true
	}
	add("planned_works", c.Planned.Validate(ruleIDs))
	if c.Dashboard != nil {
		add("dashboard", c.Dashboard.Validate())
	}
	add("mobile", c.Mobile.Validate())
	if c.Alerts != nil {
		add("alerts", c.Alerts.Validate())
		for i, r := range c.Alerts.Routes {
			for _, id := range r.Rules {
				if !slices.ContainsFunc(c.Rules.Rules, func(x rules.Rule) bool { return x.ID == id }) {
					add("alerts", cfgerr.Errorf(fmt.Sprintf("routes[%d].rules", i), "%q is not a rule id", id))
				}
			}
		}
	}
	// Cross-references.
	for i, to := range c.Rules.MonthlyReport.To {
		where := fmt.Sprintf("monthly_report.to[%d]", i)
		switch {
		case c.Alerts == nil:
			add("rules", cfgerr.Errorf(where, "the monthly report goes out through the alert channels, and there is no alerts: section; fix: configure alerts: (people and channels) or remove monthly_report.to"))
		case strings.HasPrefix(to, "team:"):
			if !slices.ContainsFunc(c.Alerts.Teams, func(t alerts.Team) bool { return "team:"+t.ID == to }) {
				add("rules", cfgerr.Errorf(where, "%q is not a team under alerts: teams", to))
			}
		case !slices.ContainsFunc(c.Alerts.People, func(p alerts.Person) bool { return p.ID == to }):
			add("rules", cfgerr.Errorf(where, "%q is not a person under alerts: people; fix: a person id, or team:<id>", to))
		}
	}
	for i, d := range c.Modbus.Devices {
		if d.Asset != "" && ids[d.Asset] == 0 {
			add("modbus", cfgerr.Errorf(fmt.Sprintf("devices[%d].asset", i), "%q is not declared under assets:; fix: declare it or correct the id", d.Asset))
		}
	}
	if c.MQTT != nil {
		for i, s := range c.MQTT.Subs {
			if !strings.Contains(s.Asset, "{") && s.Asset != "" && ids[s.Asset] == 0 {
				add("mqtt", cfgerr.Errorf(fmt.Sprintf("subscriptions[%d].asset", i), "%q is not declared under assets:", s.Asset))
			}
		}
	}
	if c.Simulator.Enabled && !c.Demo {
		add("simulator", cfgerr.Errorf("enabled", "the simulator publishes simulated telemetry to the broker and serves fake Modbus devices: only for a demo; fix: simulator.enabled: false (SIMULATOR=false) on a real site, or demo: true at the top level for a demo"))
	}
	c.validateRegister(add, ids)
	c.checkSecrets(add)
	c.checkDatabases(add) // database.go: SQLite file or postgres:// URL
	c.validateReplication(add)
	if c.Simulator.Enabled {
		if c.Simulator.Broker == "" {
			add("simulator", cfgerr.Errorf("broker", "is required; fix: configure mqtt.broker or simulator.broker"))
		}
		for i, d := range c.Modbus.Devices {
			host, _, _ := net.SplitHostPort(d.Address)
			if d.Transport != modbus.TCP || (host != "127.0.0.1" && host != "localhost") {
				add("simulator", cfgerr.Errorf("enabled", "the simulator serves Modbus TCP on loopback only, but modbus.devices[%d] is %s %s; fix: use 127.0.0.1 addresses in a simulated config", i, d.Transport, d.Address))
			}
		}
	}
	return errors.Join(errs...)
}

// loopback: the address is reachable from this machine only.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (h HTTP) validate() error {
	if (h.TLSCert == "") != (h.TLSKey == "") {
		return cfgerr.Errorf("tls_cert", "set both tls_cert and tls_key, or neither")
	}
	for _, f := range []struct{ key, path string }{{"tls_cert", h.TLSCert}, {"tls_key", h.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return cfgerr.Errorf(f.key, "%s cannot be read: %v; fix: the PEM file's path", f.path, errors.Unwrap(err))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_header_timeout", h.ReadHeaderTimeout}, {"read_timeout", h.ReadTimeout}, {"write_timeout", h.WriteTimeout}, {"idle_timeout", h.IdleTimeout}} {
		if d.v < 0 {
			return cfgerr.Errorf(d.key, "must not be negative")
		}
	}
	if h.MaxHeaderBytes < 4096 {
		return cfgerr.Errorf("max_header_bytes", "%d is too small for a browser's headers; fix: at least 4096 (default 65536)", h.MaxHeaderBytes)
	}
	if h.MaxWSClients < 1 {
		return cfgerr.Errorf("max_ws_clients", "must be at least 1 (default 200)")
	}
	return nil
}

// PublishedSecrets are the secret values printed in the repository
// (configs/demo.yaml's fallbacks and the README): anyone can read them, so
// a gateway refuses them unless the config says demo: true.
// TestPublishedSecretsMatchDemoConfig keeps the list in step with demo.yaml.
func PublishedSecrets() []string {
	return []string{
		"demo-only-link-secret-change-me",              // alerts.link_secret
		"demo-wall-display-token",                      // dashboard.wall_token
		"operator-demo", "engineer-demo", "admin-demo", // passwords
		"demo-operator-token", "demo-admin-token", // bearer tokens
		"demo-only-qr-secret-change-me", // inspections.qr_secret
	}
}

// minLinkSecret is the shortest alerts.link_secret a real site may use.
const minLinkSecret = 32

// secretFields lists the config's secrets: key path and value.
func (c *Config) secretFields() [][2]string {
	out := [][2]string{{"influxdb.token", c.InfluxDB.Token}}
	if c.Alerts != nil {
		out = append(out, [2]string{"alerts.link_secret", c.Alerts.LinkSecret})
	}
	if c.Inspections != nil {
		out = append(out, [2]string{"inspections.qr_secret", c.Inspections.QRSecret})
	}
	if c.Dashboard != nil {
		out = append(out, [2]string{"dashboard.wall_token", c.Dashboard.WallToken})
		for i, u := range c.Dashboard.Users {
			out = append(out, [2]string{fmt.Sprintf("dashboard.users[%d].password", i), u.Password},
				[2]string{fmt.Sprintf("dashboard.users[%d].token", i), u.Token})
		}
	}
	return out
}

// envOf is the environment variable the file reads the key at path from
// (${NAME} or ${NAME:-default} on its line), or "".
func (c *Config) envOf(path string) string {
	if c.root == nil { // after loading: only the message is wanted
		return ""
	}
	line := lineOf(c.root, path)
	lines := bytes.Split(c.orig, []byte("\n"))
	if line < 1 || line > len(lines) {
		return ""
	}
	parts := splitPath(path)
	key := regexp.QuoteMeta(parts[len(parts)-1])
	m := regexp.MustCompile(`\b` + key + `:\s*["']?[^$"',}]*\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindSubmatch(lines[line-1])
	if m == nil {
		return ""
	}
	return string(m[1])
}

func (c *Config) fix(path string) string {
	if env := c.envOf(path); env != "" {
		return fmt.Sprintf("export %s=$(openssl rand -hex 32)", env)
	}
	return "a random value, e.g. from openssl rand -hex 32"
}

// insecure lists what makes this config a demo: published secrets and a
// short link secret, as (path, message). Values are never included.
func (c *Config) insecure() [][2]string {
	var out [][2]string
	published := PublishedSecrets()
	for _, s := range c.secretFields() {
		if s[1] != "" && slices.Contains(published, s[1]) {
			out = append(out, [2]string{s[0], fmt.Sprintf("is a value published in this repository (configs/demo.yaml, README): anyone can use it; fix: %s, or demo: true at the top level for a demo", c.fix(s[0]))})
		} else if s[0] == "alerts.link_secret" && len(s[1]) < minLinkSecret {
			out = append(out, [2]string{s[0], fmt.Sprintf("is %d bytes; signed acknowledgement links need at least %d random bytes; fix: %s", len(s[1]), minLinkSecret, c.fix(s[0]))})
		}
	}
	return out
}

// checkSecrets refuses published secrets and a short link secret, unless
// the config is a demo.
func (c *Config) checkSecrets(add func(string, error)) {
	if c.Demo {
		return
	}
	for _, x := range c.insecure() {
		section, key, _ := strings.Cut(x[0], ".")
		add(section, cfgerr.Errorf(key, "%s", x[1]))
	}
}

// Warnings are what the gateway must say loudly at start (log them at
// Warn): a demo config, and each demo secret it runs with.
func (c *Config) Warnings() []string {
	var out []string
	for _, p := range c.Playbooks.Loaded {
		for _, a := range p.AutoActions() {
			out = append(out, "playbook "+a+": 自动操作设备 the gateway changes this equipment without a person confirming")
		}
	}
	out = append(out, c.databaseWarnings()...)
	if !c.CenterOnly() && !slices.ContainsFunc(c.Rules.Rules, func(r rules.Rule) bool { return r.Field == planned.FieldNotRecovered }) {
		out = append(out, "planned_works: no rule watches the field "+planned.FieldNotRecovered+": supply, pumps or lifts that do not come back after planned work raise no alarm; fix: add one (configs/demo.yaml: not-recovered-after-planned-work)")
	}
	if !c.Demo {
		return out
	}
	out = append(out, "演示模式 DEMO MODE (demo: true): this gateway accepts the published demo secrets and runs the simulator; never use it for a real site (docs/security.md)")
	for _, x := range c.insecure() {
		out = append(out, "demo: "+x[0]+" "+strings.SplitN(x[1], "; fix:", 2)[0])
	}
	if c.Simulator.Enabled {
		out = append(out, "demo: the simulator is on and publishes simulated telemetry to "+c.Simulator.Broker)
	}
	return out
}

// errAt builds an Error for a path like modbus.devices[2].address, with the
// line of the deepest node of that path present in the file.
func (c *Config) errAt(path, msg string) error {
	return &Error{File: c.path, Line: lineOf(c.root, path), Path: path, Msg: msg}
}

func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range splitPath(path) {
		var next *yaml.Node
		if idx, err := strconv.Atoi(part); err == nil && n.Kind == yaml.SequenceNode {
			if idx < len(n.Content) {
				next = n.Content[idx]
			}
		} else if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if n.Kind != yaml.ScalarNode {
			line = n.Line
		}
	}
	return line
}

// splitPath turns a.b[2].c into a, b, 2, c.
func splitPath(p string) []string {
	p = strings.ReplaceAll(p, "[", ".")
	p = strings.ReplaceAll(p, "]", "")
	var out []string
	for _, s := range strings.Split(p, ".") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// loadPlaybooks reads every *.yaml in the playbooks folder strictly, then
// validates each against the others and the rule ids.
func (c *Config) loadPlaybooks() error {
	dir := c.Playbooks.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(c.path), dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return &Error{File: c.path, Msg: fmt.Sprintf("playbooks.dir: no *.yaml files in %s; fix: point it at the playbooks folder, or remove it", dir)}
	}
	sort.Strings(files)
	type loaded struct {
		file string
		root *yaml.Node
		p    playbook.Playbook
	}
	var all []loaded
	ids := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal(raw, &root); err != nil {
			return yamlError(f, err)
		}
		var p playbook.Playbook
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&p); err != nil {
			return yamlError(f, err)
		}
		if ids[p.ID] {
			return &Error{File: f, Line: lineOf(&root, "id"), Path: "id", Msg: fmt.Sprintf("%q is used by another playbook file", p.ID)}
		}
		ids[p.ID] = true
		p.SetDefaults()
		all = append(all, loaded{f, &root, p})
	}
	ruleIDs := map[string]bool{}
	for _, r := range c.Rules.Rules {
		ruleIDs[r.ID] = true
	}
	var errs []error
	for _, l := range all {
		err := l.p.Validate(ids, ruleIDs)
		if err == nil {
			err = l.p.CheckCategories(c.Rules.Orders.CategoryIDs())
		}
		if err != nil {
			var fe *cfgerr.FieldError
			if errors.As(err, &fe) {
				errs = append(errs, &Error{File: l.file, Line: lineOf(l.root, fe.Path), Path: fe.Path, Msg: fe.Msg})
			} else {
				errs = append(errs, &Error{File: l.file, Msg: err.Error()})
			}
			continue
		}
		c.Playbooks.Loaded = append(c.Playbooks.Loaded, l.p)
	}
	return errors.Join(errs...)
}
