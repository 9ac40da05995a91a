package inspection_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

// clock is the injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// discard is the pipeline's storage output (InfluxDB is not what these tests are about).
type discard struct{}

func (discard) Enqueue([]collectors.Point) error { return nil }
func (discard) Flush() error                     { return nil }

// site is the real rules layer on a real SQLite file: state, pipeline,
// engine with the given rules, work-order service.
type site struct {
	db       *sqlite.Rules
	state    *collectors.State
	pipeline *collectors.Pipeline
	engine   *rules.Engine
	orders   *workorder.Service
	clock    *clock
	log      *slog.Logger
}

func newSite(t *testing.T, assets []collectors.Asset, rs []rules.Rule, start time.Time) *site {
	t.Helper()
	db, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gateway.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := rules.Config{Rules: rs}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &clock{t: start}
	orders := workorder.NewService(workorder.Config{}, assets, db, log, c.Now)
	engine := rules.NewEngine(cfg, assets, rules.Deps{Store: db, OnFire: orders, Log: log, Now: c.Now})
	if err := engine.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	state := collectors.NewState(assets)
	p := collectors.NewPipeline(state, discard{}, collectors.NewMetrics(prometheus.NewRegistry()), log)
	p.AddProcessor(engine)
	return &site{db: db, state: state, pipeline: p, engine: engine, orders: orders, clock: c, log: log}
}

func (s *site) set(asset, field string, v collectors.Value) {
	s.pipeline.Publish("test", []collectors.Point{{Asset: asset, Field: field, Value: v, Quality: collectors.QualityGood, Time: s.clock.Now()}})
}

func (s *site) alarm(t *testing.T, id string) rules.Alarm {
	t.Helper()
	a, ok := s.engine.Alarm(id)
	if !ok {
		t.Fatalf("no alarm %s", id)
	}
	return a
}
