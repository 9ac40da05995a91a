package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/dashboard"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/centerkpi"
)

// runCenter is `gateway center`: the monitoring center (集团监控中心). No
// collectors and no engine: every site's records in PostgreSQL (the
// consumer), commands down to the sites, the cross-site API and the
// multi-site wall, each user limited to their sites (docs/multisite.md).
func runCenter(ctx context.Context, cfg *config.Config, log *slog.Logger) (err error) {
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(promcollectors.NewGoCollector(), promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}))
	auth, closeAuth, err := openAuth(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	defer closeAuth()
	center, commander, consumer, _, health, err := centerSide(ctx, cfg, reg, log.With("component", "center"))
	if err != nil {
		return err
	}
	defer closeLogged(log, "center store", center.Close)

	api := dashboard.NewAPI(dashboard.Deps{State: collectors.NewState(nil), Gatherer: reg, Log: log.With("component", "http"),
		Site: cfg.Site, SiteName: cfg.SiteName, Demo: cfg.Demo})
	api.MountCenter(dashboard.Center{Store: center, Commands: commander, Sites: cfg.Center.Sites, OfflineAfter: cfg.Center.OfflineAfter,
		Now: time.Now, Log: log.With("component", "center")}, true)
	api.MountCenterKPIs(dashboard.CenterKPIs{ // the sites' figures per site and in total, by the center's rules.targets and calendar
		Months: centerkpi.New(center, centerkpi.Config{Targets: cfg.Rules.Orders.Targets, Location: cfg.Rules.Orders.Calendar.Location(), Sites: cfg.Center.Sites}, time.Now),
		Sites:  center, Known: cfg.Center.Sites, Now: time.Now, Log: log.With("component", "center")})
	api.MountCenterScreens(auth)
	if health != nil {
		api.AddHealth("center", health) // leader or not (escalations), consuming or not
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return consumer.run(gctx) }) // consuming, commands, gap replays
	if auth != nil {
		g.Go(func() error { return auth.Run(gctx) })
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	srv := cfg.HTTP.Server(api.Handler())
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	g.Go(func() error {
		if err := cfg.HTTP.Serve(srv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	api.SetReady(true)
	log.Info("monitoring center running", "http", ln.Addr().String(), "broker", cfg.Center.Broker, "database", "postgres")
	<-gctx.Done()
	log.Info("shutting down")
	api.SetReady(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.Warn("http shutdown", "err", serr)
	}
	if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
		return werr
	}
	return nil
}
