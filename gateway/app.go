package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/propgate/gateway/alerts"
	gwc "github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/collectors/influx"
	"github.com/propgate/gateway/collectors/modbus"
	"github.com/propgate/gateway/collectors/mqtt"
	"github.com/propgate/gateway/collectors/sim"
	"github.com/propgate/gateway/dashboard"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/rules"
)

// App wires the collectors, the storage and the API together.
type App struct {
	cfg *config.Config
	log *slog.Logger
}

// NewApp builds the app; nothing starts until Run.
func NewApp(cfg *config.Config, log *slog.Logger) *App { return &App{cfg: cfg, log: log} }

// Run starts everything, serves until ctx ends, then stops in reverse order:
// collectors first, then the writer (which persists whatever is pending).
func (a *App) Run(ctx context.Context) (err error) {
	cfg, log := a.cfg, a.log
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := gwc.NewMetrics(reg)
	assets := cfg.CollectorAssets()
	state := gwc.NewState(assets)

	writer := influx.New(cfg.InfluxDB, cfg.Site, assets, reg, metrics.Dropped, log.With("component", "influx"))
	if err := writer.Start(ctx); err != nil {
		return err
	}
	defer func() {
		if serr := writer.Stop(5 * time.Second); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	pipeline := gwc.NewPipeline(state, writer, metrics, log.With("component", "pipeline"))

	var simulator *sim.Simulator
	if cfg.Simulator.Enabled {
		simulator = sim.New(cfg.Simulator, assets, cfg.SimEndpoints(), log.With("component", "simulator"))
		if err := simulator.Validate(); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
		if err := simulator.Start(ctx); err != nil {
			return err
		}
		defer simulator.Stop()
	}

	// Rules, alarms and work orders, kept in the embedded database.
	if err := os.MkdirAll(filepath.Dir(cfg.Rules.Database), 0o750); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	store, err := rules.OpenSQLite(cfg.Rules.Database, cfg.Rules.Webhook != nil)
	if err != nil {
		return err
	}
	defer store.Close()
	bus := rules.NewBus()
	engine := rules.NewEngine(cfg.Rules, assets, store, bus, log.With("component", "rules"), time.Now)
	if err := engine.Load(ctx); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	pipeline.AddProcessor(engine)
	go engine.Run(ctx, time.Second)
	if cfg.Rules.Webhook != nil {
		hook := rules.NewWebhook(*cfg.Rules.Webhook, store, log.With("component", "webhook"))
		events := bus.Subscribe(256)
		defer events.Close()
		go func() {
			for ev := range events.C {
				if ev.Type == rules.EventWorkOrder {
					hook.Notify()
				}
			}
		}()
		go hook.Run(ctx)
	}

	var cols []gwc.Collector
	if len(cfg.Modbus.Devices) > 0 {
		cols = append(cols, modbus.New(cfg.Modbus, nil, modbus.NewMetrics(reg), log.With("component", "modbus")))
	}
	if cfg.MQTT != nil {
		cols = append(cols, mqtt.New(*cfg.MQTT, nil, mqtt.NewMetrics(reg), log.With("component", "mqtt")))
	}
	for _, c := range cols {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
	}
	// Playbooks: the runner writes to equipment through the Modbus
	// collector and sends commands through the MQTT collector.
	var equipment rules.Writer
	var publisher rules.Publisher
	for _, c := range cols {
		switch c := c.(type) {
		case *modbus.Collector:
			equipment = c
		case *mqtt.Collector:
			publisher = c
		}
	}
	runner := rules.NewRunner(cfg.Playbooks.Loaded, assets, store, engine, state, equipment, publisher, bus, log.With("component", "playbooks"), time.Now)
	if err := runner.Load(ctx); err != nil {
		return fmt.Errorf("playbooks: %w", err)
	}
	go runner.Run(ctx, time.Second)

	// Alert routing to the on-call engineers.
	var router *alerts.Router
	if cfg.Alerts != nil {
		if err := os.MkdirAll(filepath.Dir(cfg.Alerts.Database), 0o750); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		astore, err := alerts.OpenStore(cfg.Alerts.Database)
		if err != nil {
			return err
		}
		defer astore.Close()
		router = alerts.NewRouter(*cfg.Alerts, assets, engine, astore, publisher, log.With("component", "alerts"), time.Now)
		if err := router.Start(ctx, 4); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		go router.Run(ctx, bus, time.Second)
	}

	started := cols[:0:0]
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			if serr := started[i].Stop(); serr != nil {
				log.Warn("collector stop", "collector", started[i].Name(), "err", serr)
			}
		}
	}()
	for _, c := range cols {
		if err := c.Start(ctx, pipeline); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
		started = append(started, c)
	}
	go pipeline.RunStaleSweep(ctx, cfg.Stale.Every, time.Now)

	deps := dashboard.Deps{State: state, Gatherer: reg, Log: log.With("component", "http"), Site: cfg.Site}
	if simulator != nil {
		deps.Scenarios = simulator
	}
	api := dashboard.NewAPI(deps)
	api.MountRules(engine)
	api.MountIncidents(runner)
	if router != nil {
		api.MountAlerts(router)
	}
	api.MountDemoReceiver()
	var auth *dashboard.Auth
	if cfg.Dashboard != nil {
		if err := os.MkdirAll(filepath.Dir(cfg.Dashboard.AuditDatabase), 0o750); err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		if auth, err = dashboard.NewAuth(*cfg.Dashboard, log.With("component", "auth")); err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		defer auth.Close()
	}
	events := bus.Subscribe(1024)
	defer events.Close()
	hub := dashboard.NewHub(state, events, api.Snapshot, log.With("component", "hub"))
	go hub.Run(ctx)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_ws_clients", Help: "Connected websocket clients."},
			func() float64 { return float64(hub.Metrics.Clients.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_ws_messages_sent_total", Help: "Websocket messages queued to clients."},
			func() float64 { return float64(hub.Metrics.Sent.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_ws_clients_dropped_total", Help: "Clients dropped for not keeping up (they resynchronise)."},
			func() float64 { return float64(hub.Metrics.Dropped.Load()) }),
	)
	api.MountDashboard(hub, auth)
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	api.SetReady(true)
	log.Info("gateway running", "site", cfg.Site, "http", "http://"+ln.Addr().String(), "assets", len(assets), "collectors", len(cols))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http: %w", err)
	}
	log.Info("shutting down: stopping collectors, persisting queued points")
	api.SetReady(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}
