// Package testsite is the real rules layer on a real SQLite file for the
// tests of the packages that feed it derived readings (the register, the
// inspection rounds, preventive maintenance): live state, pipeline, engine
// with the given rules, work-order service, an injected clock.
package testsite

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

// Clock is the injected clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *Clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// discard is the pipeline's storage output (InfluxDB is not what these tests are about).
type discard struct{}

func (discard) Enqueue([]collectors.Point) error { return nil }
func (discard) Flush() error                     { return nil }

// Site is the real rules layer on a real SQLite file: state, pipeline,
// engine with the given rules, work-order service.
type Site struct {
	DB       *sqlite.Rules
	State    *collectors.State
	Pipeline *collectors.Pipeline
	Engine   *rules.Engine
	Orders   *workorder.Service
	Clock    *Clock
	Log      *slog.Logger
}

// New builds a site whose clock starts at start.
func New(t testing.TB, assets []collectors.Asset, rs []rules.Rule, start time.Time) *Site {
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
	c := &Clock{t: start}
	orders := workorder.NewService(workorder.Config{}, assets, db, log, c.Now)
	engine := rules.NewEngine(cfg, assets, rules.Deps{Store: db, OnFire: orders, Log: log, Now: c.Now})
	if err := engine.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	state := collectors.NewState(assets)
	p := collectors.NewPipeline(state, discard{}, collectors.NewMetrics(prometheus.NewRegistry()), log)
	p.AddProcessor(engine)
	return &Site{DB: db, State: state, Pipeline: p, Engine: engine, Orders: orders, Clock: c, Log: log}
}

// Set publishes one good reading at the clock's time.
func (s *Site) Set(asset, field string, v collectors.Value) {
	s.Pipeline.Publish("test", []collectors.Point{{Asset: asset, Field: field, Value: v, Quality: collectors.QualityGood, Time: s.Clock.Now()}})
}

// Alarm is the engine's alarm id (the test fails without one).
func (s *Site) Alarm(t testing.TB, id string) rules.Alarm {
	t.Helper()
	a, ok := s.Engine.Alarm(id)
	if !ok {
		t.Fatalf("no alarm %s", id)
	}
	return a
}
