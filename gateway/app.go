package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/collectors/influx"
	"github.com/propgate/gateway/collectors/modbus"
	"github.com/propgate/gateway/collectors/mqtt"
	"github.com/propgate/gateway/collectors/sim"
	"github.com/propgate/gateway/dashboard"
	"github.com/propgate/gateway/dashboard/demoreceiver"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/guard"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/sdnotify"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/event"
	"github.com/propgate/gateway/rules/monthly"
	"github.com/propgate/gateway/rules/planned"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// App wires the collectors, the rules layer, alerting and the screens, and
// is the one owner of every long-running goroutine.
type App struct {
	cfg *config.Config
	log *slog.Logger
	// reloads: each receive reloads the config with load (reload.go).
	reloads <-chan os.Signal
	load    func() (*config.Config, error)
}

// NewApp builds the app; nothing starts until Run.
func NewApp(cfg *config.Config, log *slog.Logger) *App { return &App{cfg: cfg, log: log} }

// ReloadOn makes Run reload the config with load on every signal from
// sig (SIGHUP); call it before Run.
func (a *App) ReloadOn(sig <-chan os.Signal, load func() (*config.Config, error)) {
	a.reloads, a.load = sig, load
}

// service is a long-running component the app runs until its context ends.
type service struct {
	name string
	run  func(ctx context.Context) error
}

// Run builds everything, starts it in dependency order, serves until ctx
// ends, then stops in reverse: intake first (HTTP, collectors), then the
// engine, runner, router (finishing in-flight deliveries) and the other
// services, then the writer persists what is queued, and last the stores
// close. Every goroutine is started here, in one errgroup, and waited for.
func (a *App) Run(ctx context.Context) (err error) {
	cfg, log := a.cfg, a.log
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(promcollectors.NewGoCollector(), promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}))
	metrics := collectors.NewMetrics(reg)
	assets := cfg.CollectorAssets()
	state := collectors.NewState(assets)

	// The stores, closed last (defers run in reverse): SQLite files or
	// PostgreSQL, by each database setting (stores.go).
	store, err := openRulesStore(ctx, cfg.Rules.Database, cfg.Rules.Orders.Webhook != nil)
	if err != nil {
		return err
	}
	defer closeLogged(log, "rules store", store.Close)
	var astore alertsStore
	if cfg.Alerts != nil {
		if astore, err = openAlertsStore(ctx, cfg.Alerts.Database); err != nil {
			return err
		}
		defer closeLogged(log, "alerts store", astore.Close)
	}
	auth, closeAuth, err := openAuth(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	defer closeAuth()

	// The writer: started first, stopped after everything that feeds it.
	writer := influx.New(cfg.InfluxDB, cfg.Site, assets, reg, metrics.Dropped, log.With("component", "influx"))
	if err := writer.Start(ctx); err != nil {
		return err
	}
	defer func() {
		if serr := writer.Stop(5 * time.Second); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	pipeline := collectors.NewPipeline(state, writer, metrics, log.With("component", "pipeline"))

	// The collectors (built, not started: the playbooks write through them,
	// by way of live, which a reload may point at a new collector).
	live := &liveCollectors{}
	var equipment playbook.Equipment
	var commands playbook.Commands
	var modbusMetrics *modbus.Metrics
	var mqttMetrics *mqtt.Metrics
	if len(cfg.Modbus.Devices) > 0 {
		modbusMetrics = modbus.NewMetrics(reg)
		live.modbus, equipment = modbus.New(cfg.Modbus, nil, modbusMetrics, log.With("component", "modbus")), live
	}
	if cfg.MQTT != nil {
		mqttMetrics = mqtt.NewMetrics(reg)
		live.mqtt, commands = mqtt.New(*cfg.MQTT, nil, mqttMetrics, log.With("component", "mqtt")), live
	}
	cols := live.all()
	for _, c := range cols {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
	}

	// The rules layer: the engine tells the bus and the runner of every
	// alarm change and opens work orders through the service.
	panics := guard.New(reg, log)
	bus := event.NewBus(reg)
	observers := []workorder.Observer{bus}
	var hook *workorder.Webhook
	if cfg.Rules.Orders.Webhook != nil {
		hook = workorder.NewWebhook(*cfg.Rules.Orders.Webhook, store, log.With("component", "webhook"))
		observers = append(observers, hook)
	}
	orders := workorder.NewService(cfg.Rules.Orders, assets, store, log.With("component", "workorders"), time.Now, observers...)
	engine := rules.NewEngine(cfg.Rules.Alarms(), assets, rules.Deps{Store: store, Observers: []rules.Observer{bus}, OnFire: orders,
		Metrics: rules.NewMetrics(reg), Guard: panics, Log: log.With("component", "rules"), Now: time.Now})
	if err := engine.Load(ctx); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	pipeline.AddProcessor(engine)
	runner := playbook.NewRunner(plansOf(cfg), assets, playbook.Deps{Store: store, Alarms: engine, WorkOrders: orders, Telemetry: state,
		Equipment: equipment, Commands: commands, Observers: []playbook.Observer{bus}, Ticks: playbook.NewTicks(reg), Guard: panics, Log: log.With("component", "playbooks"), Now: time.Now})
	engine.Observe(runner)
	if err := runner.Load(ctx); err != nil {
		return fmt.Errorf("playbooks: %w", err)
	}
	// Planned works tag the alarms their window explains (nobody paged, no
	// emergency plan, no fault work order) and check recovery at the end.
	pstore, err := openPlannedStore(ctx, store)
	if err != nil {
		return err
	}
	works := planned.New(cfg.Planned, planned.Deps{Store: pstore, Assets: assets, Telemetry: state, Points: pipeline,
		Ticks: planned.NewTicks(reg), Guard: panics, Log: log.With("component", "planned-works"), Now: time.Now})
	if err := works.Load(ctx); err != nil {
		return err
	}
	works.Resume(engine.Alarms(func(a *rules.Alarm) bool { return a.Active && a.Planned != nil }))
	engine.SetPlanner(works)
	engine.Observe(works)

	// The duty room: roster (seeded from alerts: teams), handovers, duty log.
	duties, err := newDuty(ctx, cfg, store, engine, runner, orders, works, bus, log.With("component", "duty"))
	if err != nil {
		return err
	}
	handoverWatch := newHandoverWatch(cfg, assets, duties, pipeline, log.With("component", "handover-watch"))
	// The register, inspection rounds, night lighting, PM plans (issue #13).
	upkeep, err := newUpkeep(ctx, cfg, assets, store, pipeline, state, orders, log)
	if err != nil {
		return err
	}

	var router *alerts.Router
	if cfg.Alerts != nil {
		var pub alerts.Publisher
		if live.mqtt != nil {
			pub = live
		}
		alertEvents := bus.Subscribe(4096)
		defer alertEvents.Close()
		var sent alerts.SentObserver
		if cfg.Replication != nil { // each message sent goes up to the center
			sent = sentToBus{bus}
		}
		if router, err = alerts.NewRouter(*cfg.Alerts, alerts.Deps{Assets: assets, Alarms: engine, Unack: engine, Events: alertEvents.C, Store: astore, Links: astore,
			Publisher: pub, Metrics: alerts.NewMetrics(reg), Log: log.With("component", "alerts"), Roster: duties, Sent: sent}); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
	}

	// Center first: a site in the same process publishes only once the
	// center's subscription holds (replication.go, docs/multisite.md).
	var extra []service
	var center *postgres.Center
	var commander *replication.Commander
	var centerUp <-chan struct{}
	var centerHealth func() any
	if cfg.Center != nil {
		var svc service
		center, commander, svc, centerUp, centerHealth, err = centerSide(ctx, cfg, reg, log.With("component", "center"))
		if err != nil {
			return err
		}
		defer closeLogged(log, "center store", center.Close)
		extra = append(extra, svc)
	}
	equipmentOrder := rules.NewEquipment(engine, store).InZone(cfg.Rules.Orders.Calendar.Location())
	if cfg.Replication != nil {
		svcs, closeSub, err := siteReplication(cfg, store, bus, siteServices{alarms: engine, orders: orders, orderList: store, steps: runner,
			equipment: equipmentOrder, assets: assets, loc: cfg.Rules.Orders.Calendar.Location()},
			centerUp, log.With("component", "replication"))
		if err != nil {
			return err
		}
		defer closeSub()
		extra = append(extra, svcs...)
	}

	var simulator *sim.Simulator
	if cfg.Simulator.Enabled {
		simulator = sim.New(cfg.Simulator, assets, cfg.SimEndpoints(), log.With("component", "simulator"))
		if err := simulator.Validate(); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
	}

	// The HTTP API and the screens.
	deps := dashboard.Deps{State: state, Gatherer: reg, Log: log.With("component", "http"), Site: cfg.Site, SiteName: cfg.SiteName, Demo: cfg.Demo}
	if simulator != nil {
		deps.Scenarios = simulator
	}
	api := dashboard.NewAPI(deps)
	status := newConfigStatus(cfg.Path(), reg, time.Now())
	api.ShowConfig(status) // /healthz: the running config and the last reload
	// The service standard (issue 12): KPIs against targets, equipment in
	// good order, the alarm system's health, the monthly report.
	reports := workorder.NewReports(store, equipmentOrder, cfg.Rules.Orders, time.Now)
	alarmHealth := alarmkpi.New(cfg.Rules.AlarmKPIs, store, engine, reports.Location(), time.Now)
	api.MountRules(dashboard.Rules{Alarms: engine, AlarmActions: engine, History: store, WorkOrders: orders, Orders: store, Reports: reports})
	monthlyDeps := monthly.Deps{Orders: reports, Equipment: equipmentOrder, Alarms: alarmHealth, Incidents: store, Plans: runner, Assets: assets,
		Config: cfg.Rules.Orders, Site: cfg.SiteName, Now: time.Now}
	if upkeep.maintenance != nil {
		monthlyDeps.Maintenance = upkeep.maintenance // PM completion (维保计划执行)
	}
	monthlyReport := monthly.New(monthlyDeps)
	api.MountService(dashboard.Service{Health: alarmHealth, Location: reports.Location(), Categories: cfg.Rules.Orders.Categories, Monthly: monthlyReport})
	api.MountIncidents(dashboard.Incidents{Read: runner, Act: runner, Steps: runner})
	api.MountPlannedWorks(works)
	if centerHealth != nil {
		api.AddHealth("center", centerHealth) // leader or not, consuming or not
	}
	if center != nil {
		api.MountCenter(dashboard.Center{Store: center, Commands: commander, Sites: cfg.Center.Sites, OfflineAfter: cfg.Center.OfflineAfter,
			Now: time.Now, Log: log.With("component", "center")}, false)
	}
	if router != nil {
		opts := dashboard.AlertsOptions{}
		if cfg.Demo {
			opts.DemoReceiver = &demoreceiver.Options{} // the demo's channel posts here; never on a real site
		}
		api.MountAlerts(router, astore, opts)
		api.MountAlertEndpoints(router)          // budgets, throttling, diversions per delivery endpoint
		api.ShowOnDuty(router, cfg.Alerts.Roles) // 今日值班 on the wall display
		loc, lerr := time.LoadLocation(cfg.Alerts.TimeZone)
		if lerr != nil {
			loc = time.Local
		}
		m := dashboard.Mobile{Links: router, Config: cfg.Mobile, Loc: loc, Log: log.With("component", "mobile")}
		if upkeep.register != nil {
			m.Register = upkeep.register // the tel: link calls the asset's maintenance contractor
		}
		api.MountMobile(m) // the phone pages the messages link to
	}
	dutyPorts := dashboard.Duty{Roster: duties, Handovers: duties, Log: duties, Location: duties.Location()}
	if handoverWatch != nil {
		dutyPorts.Overdue = handoverWatch
	}
	api.MountDuty(dutyPorts)
	publicURL := ""
	if cfg.Alerts != nil {
		publicURL = cfg.Alerts.BaseURL
	}
	upkeep.mount(api, runner, publicURL)
	hubEvents := bus.Subscribe(1024)
	defer hubEvents.Close()
	hub := dashboard.NewHub(state, hubEvents, api.Snapshot, log.With("component", "hub"))
	hub.LimitClients(cfg.HTTP.MaxWSClients)
	reg.MustRegister(hub.Metrics.Collectors()...)
	api.MountDashboard(hub, auth)

	// Start: the services first (they must be running before intake), in
	// one group whose context the intake shutdown below cancels last.
	core, stopCore := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCore()
	g, gctx := errgroup.WithContext(core)
	services := []service{
		{"rules", engine.Run},
		{"workorders", orders.Run},
		{"playbooks", runner.Run},
		{"planned-works", works.Run},
		{"hub", func(ctx context.Context) error { hub.Run(ctx); return nil }},
		{"stale", func(ctx context.Context) error { pipeline.RunStaleSweep(ctx, cfg.Stale.Every, time.Now); return nil }},
	}
	services = append(services, upkeep.services()...)
	if handoverWatch != nil {
		services = append(services, service{"handover-watch", handoverWatch.Run})
	}
	if hook != nil {
		services = append(services, service{"webhook", hook.Run})
	}
	if auth != nil {
		services = append(services, service{"sessions", auth.Run})
	}
	if router != nil {
		services = append(services, service{"alerts", router.Run}) // returns once in-flight deliveries are done
	}
	// The month's figures once at start (the orders decoded, the days the
	// store keeps read), so the first screen or report does not wait.
	services = append(services, service{"kpi-warmup", func(ctx context.Context) error {
		start := time.Now()
		if _, err := reports.MonthToDate(ctx); err != nil {
			log.Warn("month-to-date figures at start", "component", "kpi", "err", err)
			return nil
		}
		l := start.In(reports.Location())
		if _, err := alarmHealth.Report(ctx, time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, l.Location()), start); err != nil {
			log.Warn("alarm health at start", "component", "kpi", "err", err)
			return nil
		}
		log.Info("month-to-date figures ready", "component", "kpi", "took", time.Since(start).Round(time.Millisecond))
		return nil
	}})
	if router != nil { // the daily review (08:30) goes out through the alert channels
		services = append(services, service{"daily-review", workorder.NewDailyReview(cfg.Rules.Orders, reports, router, log.With("component", "daily-review"), time.Now).Run})
		// The previous month's report on the 1st (rules.monthly_report).
		services = append(services, service{"monthly-report", monthly.NewSchedule(cfg.Rules.MonthlyReport, monthlyReport, router, cfg.Alerts.BaseURL,
			log.With("component", "monthly-report"), time.Now).Run})
	}
	services = append(services, extra...)
	for _, s := range services {
		g.Go(func() error {
			if err := s.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
	}
	defer func() {
		stopCore()
		if werr := g.Wait(); werr != nil {
			err = errors.Join(err, werr)
		}
		log.Info("services stopped")
	}()

	// Intake: the simulator, the collectors, then HTTP.
	if simulator != nil {
		if err := simulator.Start(gctx); err != nil {
			return err
		}
		defer simulator.Stop()
	}
	defer live.stop(log)
	if err := live.start(gctx, pipeline); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	srv := cfg.HTTP.Server(api.Handler()) // timeouts, header limit, TLS when configured
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	serveErr := make(chan error, 1)
	g.Go(func() error {
		if err := cfg.HTTP.Serve(srv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	api.SetReady(true)
	scheme := "http://"
	if cfg.HTTP.TLS() {
		scheme = "https://"
	}
	log.Info("gateway running", "site", cfg.Site, "http", scheme+ln.Addr().String(), "assets", len(assets), "collectors", len(cols))
	// systemd (Type=notify): ready now; the watchdog pings while the loops advance.
	if err := sdnotify.Notify("READY=1\nSTATUS=running"); err != nil {
		log.Warn("systemd notify", "err", err)
	}
	if every, _ := sdnotify.WatchdogInterval(); every > 0 {
		wd := &sdnotify.Watchdog{Every: every / 2, Check: sdnotify.NewLiveness(reg, time.Now, liveLoops(cfg)...).Check,
			Notify: sdnotify.Notify, Log: log.With("component", "watchdog")}
		g.Go(func() error { return wd.Run(gctx) })
	}

	rl := &reloader{log: log.With("component", "reload"), boot: cfg, cfg: cfg, assets: assets, state: state, engine: engine, runner: runner, router: router,
		cols: live, sink: pipeline, modbusMetrics: modbusMetrics, mqttMetrics: mqttMetrics, status: status, now: time.Now}
run:
	for {
		select {
		case <-ctx.Done():
			break run
		case <-gctx.Done(): // a service failed
			break run
		case err = <-serveErr:
			break run
		case <-a.reloads: // nil without ReloadOn: never
			if a.load != nil {
				rl.reload(gctx, a.load)
			}
		}
	}
	log.Info("shutting down: stopping intake, then the services, then persisting queued points")
	_ = sdnotify.Notify("STOPPING=1")
	api.SetReady(false)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		log.Warn("http shutdown", "err", serr)
	}
	return err
}

func closeLogged(log *slog.Logger, what string, close func() error) {
	if err := close(); err != nil {
		log.Warn("closing "+what, "err", err)
	}
}
