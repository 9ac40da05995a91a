package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/collectors/modbus"
	"github.com/propgate/gateway/collectors/mqtt"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/sdnotify"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
)

// A config reload (SIGHUP, systemctl reload) works the way Caddy's does:
// the new file is loaded and validated completely (the same file:line
// errors as `gateway check`), every component's part of it is prepared
// without side effects, and only then is anything swapped in, each
// component under its own lock. A config that fails anywhere before the
// swap is refused whole: the running config stays, the refusal is logged,
// counted (gateway_config_reloads_total{result="refused"}) and shown in
// /healthz.
//
// What reloads: the alarm rules (alarms of kept rules keep their state,
// alarms of removed rules are closed with a note), playbooks (open
// incidents go on, reconciled), alerts (people, teams and rotations,
// policies, routes, channels; escalations in progress go on), the names
// and locations of assets, and the Modbus and MQTT sections (a changed
// section restarts that collector only). Everything else is compared with
// the running config and, if changed, listed as needing a restart (logged
// and in /healthz); the rest of the file is applied.

// reloadOutcome is one reload, as /healthz shows it.
type reloadOutcome struct {
	At            time.Time `json:"at"`
	Result        string    `json:"result"`          // applied, refused
	Error         string    `json:"error,omitempty"` // refused: why (file:line as gateway check prints it)
	Summary       string    `json:"summary,omitempty"`
	RestartNeeded []string  `json:"restart_needed,omitempty"` // changed settings a reload does not apply
}

// configStatus is the running config as /healthz and /metrics tell it.
type configStatus struct {
	file     string
	reloads  *prometheus.CounterVec
	lastOK   prometheus.Gauge
	lastTime prometheus.Gauge

	mu       sync.Mutex
	loadedAt time.Time // when the running config was loaded (start or the last applied reload)
	last     *reloadOutcome
}

func newConfigStatus(file string, reg prometheus.Registerer, now time.Time) *configStatus {
	s := &configStatus{file: file, loadedAt: now,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_config_reloads_total",
			Help: "Config reloads (SIGHUP) by result: applied, or refused (invalid; the running config stayed)."}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_config_last_reload_successful",
			Help: "1 if the last reload was applied (or there was none since start), 0 if it was refused."}),
		lastTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_config_loaded_timestamp_seconds",
			Help: "When the running config was loaded: at start or by the last applied reload."}),
	}
	s.reloads.WithLabelValues("applied")
	s.reloads.WithLabelValues("refused")
	s.lastOK.Set(1)
	s.lastTime.Set(float64(now.Unix()))
	reg.MustRegister(s.reloads, s.lastOK, s.lastTime)
	return s
}

func (s *configStatus) record(o reloadOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = &o
	s.reloads.WithLabelValues(o.Result).Inc()
	if o.Result == "applied" {
		s.loadedAt = o.At
		s.lastOK.Set(1)
		s.lastTime.Set(float64(o.At.Unix()))
	} else {
		s.lastOK.Set(0)
	}
}

// ConfigStatus implements dashboard.ConfigStatus: the /healthz "config".
func (s *configStatus) ConfigStatus() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{"file": s.file, "loaded_at": s.loadedAt}
	if s.last != nil {
		out["last_reload"] = *s.last
	}
	return out
}

// liveCollectors holds the running collectors; a reload may replace one.
// The playbooks' equipment writes and MQTT commands and the alerts' MQTT
// channel go through it, so they reach the collector running now.
type liveCollectors struct {
	mu      sync.RWMutex
	modbus  *modbus.Collector
	mqtt    *mqtt.Collector
	started []collectors.Collector // in start order
}

var (
	_ playbook.Equipment = (*liveCollectors)(nil)
	_ playbook.Commands  = (*liveCollectors)(nil)
)

func (l *liveCollectors) Write(ctx context.Context, asset, field string, v collectors.Value) error {
	l.mu.RLock()
	m := l.modbus
	l.mu.RUnlock()
	if m == nil {
		return errors.New("modbus: no Modbus devices configured")
	}
	return m.Write(ctx, asset, field, v)
}

func (l *liveCollectors) PublishCommand(topic, payload string) error {
	l.mu.RLock()
	m := l.mqtt
	l.mu.RUnlock()
	if m == nil {
		return errors.New("mqtt: no MQTT broker configured")
	}
	return m.PublishCommand(topic, payload)
}

// all lists the configured collectors (built, maybe not started).
func (l *liveCollectors) all() []collectors.Collector {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []collectors.Collector
	if l.modbus != nil {
		out = append(out, l.modbus)
	}
	if l.mqtt != nil {
		out = append(out, l.mqtt)
	}
	return out
}

// start starts every collector.
func (l *liveCollectors) start(ctx context.Context, sink collectors.Sink) error {
	for _, c := range l.all() {
		if err := c.Start(ctx, sink); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
		l.mu.Lock()
		l.started = append(l.started, c)
		l.mu.Unlock()
	}
	return nil
}

// stop stops the started collectors, last started first.
func (l *liveCollectors) stop(log *slog.Logger) {
	l.mu.Lock()
	started := l.started
	l.started = nil
	l.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].Stop(); err != nil {
			log.Warn("collector stop", "collector", started[i].Name(), "err", err)
		}
	}
}

// replace stops the running old and starts next in its place (MQTT: the
// old session acknowledges what is durable and disconnects; the broker
// keeps the persistent session's messages for the new one).
func (l *liveCollectors) replace(ctx context.Context, sink collectors.Sink, old, next collectors.Collector, log *slog.Logger) error {
	if err := old.Stop(); err != nil {
		// Stopped all the same (Modbus: a link's close failed): go on.
		log.Warn("collector stop", "collector", old.Name(), "err", err)
	}
	l.mu.Lock()
	l.started = slices.DeleteFunc(l.started, func(c collectors.Collector) bool { return c == old })
	switch n := next.(type) {
	case *modbus.Collector:
		l.modbus = n
	case *mqtt.Collector:
		l.mqtt = n
	}
	l.mu.Unlock()
	if err := next.Start(ctx, sink); err != nil {
		return fmt.Errorf("%s: %w", next.Name(), err)
	}
	l.mu.Lock()
	l.started = append(l.started, next)
	l.mu.Unlock()
	return nil
}

// reloader applies a new config to the running components. Only the
// app's Run goroutine calls reload, so reloads never overlap.
type reloader struct {
	log           *slog.Logger
	boot          *config.Config // what the process started with: what needs a restart is compared with it
	cfg           *config.Config // the config applied last
	assets        []collectors.Asset
	state         *collectors.State
	engine        *rules.Engine
	runner        *playbook.Runner
	router        *alerts.Router // nil without alerts:
	cols          *liveCollectors
	sink          collectors.Sink
	modbusMetrics *modbus.Metrics
	mqttMetrics   *mqtt.Metrics
	status        *configStatus
	now           func() time.Time
}

// reload loads the config with load and applies it, or refuses it.
func (r *reloader) reload(ctx context.Context, load func() (*config.Config, error)) {
	at := r.now()
	r.log.Info("SIGHUP: reloading the config", "file", r.status.file)
	// systemd shows the unit reloading until READY=1 again.
	_ = sdnotify.Notify("RELOADING=1\nSTATUS=reloading the config")
	next, err := load()
	if err == nil {
		err = r.apply(ctx, next, at)
	}
	status := "STATUS=running; config reloaded at " + at.Format(time.RFC3339)
	if err != nil {
		r.status.record(reloadOutcome{At: at, Result: "refused", Error: err.Error()})
		r.log.Error("config reload refused; the running config stays", "file", r.status.file, "err", err)
		status = "STATUS=running; config reload refused at " + at.Format(time.RFC3339) + " (see the journal)"
	}
	_ = sdnotify.Notify("READY=1\n" + status)
}

// plansOf is the config's playbooks as the runner gets them.
func plansOf(cfg *config.Config) []playbook.Playbook {
	plans := slices.Clone(cfg.Playbooks.Loaded)
	if !cfg.Playbooks.Drills() {
		for i := range plans {
			plans[i].Drill = nil
		}
	}
	return plans
}

// apply prepares every part of next, then swaps it in. An error before the
// swap changes nothing.
func (r *reloader) apply(ctx context.Context, next *config.Config, at time.Time) error {
	// Prepare: no side effects.
	assets, renamed := relabel(r.assets, next.CollectorAssets())
	var prepared *alerts.Prepared
	if r.router != nil && next.Alerts != nil {
		p, err := r.router.Prepare(*next.Alerts)
		if err != nil {
			return err
		}
		prepared = p
	}
	type swap struct{ old, next collectors.Collector }
	var swaps []swap
	if old := r.cols.modbus; old != nil && len(next.Modbus.Devices) > 0 && !sameYAML(r.cfg.Modbus, next.Modbus) {
		c := modbus.New(next.Modbus, nil, r.modbusMetrics, r.log.With("component", "modbus"))
		if err := c.Validate(); err != nil {
			return fmt.Errorf("modbus: %w", err)
		}
		swaps = append(swaps, swap{old, c})
	}
	if old := r.cols.mqtt; old != nil && next.MQTT != nil && !sameYAML(r.cfg.MQTT, next.MQTT) {
		c := mqtt.New(*next.MQTT, nil, r.mqttMetrics, r.log.With("component", "mqtt"))
		if err := c.Validate(); err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		swaps = append(swaps, swap{old, c})
	}
	restart := restartNeeded(r.boot, next)

	// Swap, each component under its own lock: names first, so the rules,
	// plans and alerts see them.
	r.state.Relabel(assets)
	rs := r.engine.SetRules(next.Rules.Alarms(), assets)
	closedIncidents := r.runner.SetPlaybooks(plansOf(next), assets)
	var ar alerts.Reloaded
	if prepared != nil {
		ar = r.router.Reload(prepared, assets)
	}
	var restarted []string
	var errs []error
	for _, s := range swaps {
		if err := r.cols.replace(ctx, r.sink, s.old, s.next, r.log); err != nil {
			errs = append(errs, err)
			continue
		}
		restarted = append(restarted, s.next.Name())
	}
	r.cfg, r.assets = next, assets
	summary := fmt.Sprintf("%d rules: %d alarms kept, %d new, %d closed; %d playbooks (%d incidents closed); %d assets renamed or moved; collectors restarted: %v",
		len(next.Rules.Rules), rs.Kept, rs.Added, len(rs.Retired), len(next.Playbooks.Loaded), len(closedIncidents), renamed, restarted)
	if prepared != nil {
		summary += fmt.Sprintf("; alerts: %d escalations closed, %d queued messages re-homed, %d dropped", len(ar.Closed), ar.Requeue, ar.Dropped)
	}
	o := reloadOutcome{At: at, Result: "applied", Summary: summary, RestartNeeded: restart}
	if len(errs) > 0 {
		// Validated and applied, but a collector would not start again: say
		// so loudly; the collector stays down until the next reload or restart.
		o.Error = errors.Join(errs...).Error()
		r.log.Error("config reload: a collector did not restart", "err", o.Error)
	}
	r.status.record(o)
	r.log.Info("config reloaded", "file", r.status.file, "summary", summary, "closed_alarms", rs.Retired, "closed_incidents", closedIncidents)
	if len(restart) > 0 {
		r.log.Warn("config reload: these changes apply only after a restart (systemctl restart propgate-gateway)", "restart_needed", restart)
	}
	return nil
}

// relabel returns the running assets with the names and locations next
// gives them (the set of ids and kinds stays), and how many changed.
func relabel(running, next []collectors.Asset) ([]collectors.Asset, int) {
	byID := make(map[string]collectors.Asset, len(next))
	for _, a := range next {
		byID[a.ID] = a
	}
	out := make([]collectors.Asset, len(running))
	n := 0
	for i, a := range running {
		out[i] = a
		if b, ok := byID[a.ID]; ok && b.Kind == a.Kind && b != a {
			out[i] = b
			n++
		}
	}
	return out, n
}

// sameYAML compares two config sections by what the file says.
func sameYAML(a, b any) bool {
	x, err1 := yaml.Marshal(a)
	y, err2 := yaml.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// restartNeeded lists the settings that differ between the running and
// the new config and that a reload does not apply.
func restartNeeded(run, next *config.Config) []string {
	var out []string
	check := func(name string, a, b any) {
		if !sameYAML(a, b) {
			out = append(out, name)
		}
	}
	check("demo", run.Demo, next.Demo)
	check("site", run.Site, next.Site)
	check("site_name", run.SiteName, next.SiteName)
	check("http", run.HTTP, next.HTTP)
	check("log", run.Log, next.Log)
	check("influxdb", run.InfluxDB, next.InfluxDB)
	check("simulator", run.Simulator, next.Simulator)
	check("rules.database", run.Rules.Database, next.Rules.Database)
	check("rules (work orders: sla, categories, calendar, webhook, daily_review, ...)", run.Rules.Orders, next.Rules.Orders)
	check("rules.alarm_kpis", run.Rules.AlarmKPIs, next.Rules.AlarmKPIs)
	check("playbooks.schedule_drills", run.Playbooks.Drills(), next.Playbooks.Drills())
	check("dashboard", run.Dashboard, next.Dashboard)
	check("mobile", run.Mobile, next.Mobile)
	check("stale", run.Stale, next.Stale)
	check("register", run.Register, next.Register)
	check("inspections", run.Inspections, next.Inspections)
	check("maintenance", run.Maintenance, next.Maintenance)
	check("planned_works", run.Planned, next.Planned)
	check("replication", run.Replication, next.Replication)
	check("center", run.Center, next.Center)
	if (run.Alerts == nil) != (next.Alerts == nil) {
		out = append(out, "alerts (added or removed)")
	} else if run.Alerts != nil {
		check("alerts.database", run.Alerts.Database, next.Alerts.Database)
	}
	if (len(run.Modbus.Devices) == 0) != (len(next.Modbus.Devices) == 0) {
		out = append(out, "modbus (added or removed)")
	}
	if (run.MQTT == nil) != (next.MQTT == nil) {
		out = append(out, "mqtt (added or removed)")
	}
	type idKind struct{ id, kind string }
	var a, b []idKind
	buildings := map[string]string{}
	for _, x := range run.Assets {
		a = append(a, idKind{x.ID, x.Kind})
		buildings[x.ID] = x.Building
	}
	moved := false
	for _, x := range next.Assets {
		b = append(b, idKind{x.ID, x.Kind})
		if old, ok := buildings[x.ID]; ok && old != x.Building {
			moved = true
		}
	}
	slices.SortFunc(a, func(x, y idKind) int { return strings.Compare(x.id, y.id) })
	slices.SortFunc(b, func(x, y idKind) int { return strings.Compare(x.id, y.id) })
	if !slices.Equal(a, b) {
		out = append(out, "assets (added, removed or kind changed)")
	}
	if moved {
		out = append(out, "assets[].building in InfluxDB's building tag")
	}
	return out
}
