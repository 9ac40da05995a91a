package main

import (
	"context"
	"log/slog"

	"github.com/propgate/gateway/collectors/sim"
	"github.com/propgate/gateway/gateway/config"
)

// simulate runs only the simulated site described by cfg, until ctx ends.
func simulate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	s := sim.New(cfg.Simulator, cfg.CollectorAssets(), cfg.SimEndpoints(), log.With("component", "simulator"))
	if err := s.Validate(); err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	defer s.Stop()
	<-ctx.Done()
	return nil
}
