package rules_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
)

type recorder struct {
	mu sync.Mutex
	tr []rules.Transition
}

func (r *recorder) AlarmChanged(_ rules.Alarm, t rules.Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr = append(r.tr, t)
}

func below(id, name, field string, v float64) rules.Rule {
	return rules.Rule{ID: id, Name: name, Target: rules.Target{Kind: "pump_room"}, Field: field, Threshold: &rules.Threshold{Below: &v}, Priority: rules.High}
}

func compiled(t *testing.T, assets []collectors.Asset, rs ...rules.Rule) rules.Config {
	t.Helper()
	cfg := rules.Config{Rules: rs}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A reload keeps the state of the alarms whose rule (by id) and asset are
// still configured, with the new name; closes the alarms of a removed rule
// with a note, in the store and for the observers; and starts new rules at
// normal. A rule renamed by id is a removed rule and a new one.
func TestSetRulesKeepsAlarmStateAndClosesRemovedRules(t *testing.T) {
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	assets := []collectors.Asset{{ID: "b3-pump", Kind: "pump_room", Building: "B3"}, {ID: "b5-pump", Kind: "pump_room", Building: "B5"}}
	obs := &recorder{}
	e := rules.NewEngine(compiled(t, assets, below("low-pressure", "Low pressure", "pressure", 0.15), below("low-level", "Low level", "level", 1)),
		assets, rules.Deps{Store: store, Observers: []rules.Observer{obs}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock})
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	pt := func(asset, field string, v float64) {
		e.Process([]collectors.Point{{Asset: asset, Field: field, Value: collectors.Float(v), Quality: collectors.QualityGood, Time: now}})
	}
	pt("b3-pump", "pressure", 0.05)
	pt("b3-pump", "level", 0.2)
	if _, err := e.Ack("low-pressure:b3-pump", "wang.li", "on my way"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)

	// The reload: low-pressure renamed (same id), low-level removed,
	// dry-run added.
	res := e.SetRules(compiled(t, assets, below("low-pressure", "Outlet pressure low", "pressure", 0.15), below("dry-run", "Dry run", "flow", 1)), assets)
	if res.Kept != 2 || res.Added != 2 || strings.Join(res.Retired, ",") != "low-level:b3-pump,low-level:b5-pump" {
		t.Fatalf("reload: %+v", res)
	}
	a, ok := e.Alarm("low-pressure:b3-pump")
	if !ok || a.State != rules.StateAcked || a.AckBy != "wang.li" || a.Name != "Outlet pressure low" {
		t.Fatalf("kept alarm: %+v", a)
	}
	if _, ok := e.Alarm("low-level:b3-pump"); ok {
		t.Fatal("the removed rule's alarm is still in the engine")
	}
	if d, ok := e.Alarm("dry-run:b5-pump"); !ok || d.State != rules.StateNormal {
		t.Fatalf("new rule's alarm: %+v %v", d, ok)
	}
	var closed *rules.Transition
	for i, tr := range obs.tr {
		if tr.AlarmID == "low-level:b3-pump" && tr.To == rules.StateNormal {
			closed = &obs.tr[i]
		}
	}
	if closed == nil || closed.From != rules.StateUnacked || closed.Note != rules.RetiredNote || !closed.At.Equal(now) {
		t.Fatalf("the removed rule's alarm was not closed for the observers: %+v", obs.tr)
	}
	stored, err := store.LoadAlarms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stored {
		if s.ID == "low-level:b3-pump" && (s.State != rules.StateNormal || s.Active) {
			t.Fatalf("stored: the removed rule's alarm is %s", s.State)
		}
	}

	// The kept alarm goes on from its state: the pressure recovers, it
	// returns to normal (it was acknowledged); the new rule fires.
	now = now.Add(time.Second)
	pt("b3-pump", "pressure", 0.3)
	pt("b3-pump", "flow", 0)
	pt("b3-pump", "level", 0) // no rule any more
	if a, _ := e.Alarm("low-pressure:b3-pump"); a.State != rules.StateNormal {
		t.Fatalf("kept alarm after recovery: %s", a.State)
	}
	if d, _ := e.Alarm("dry-run:b3-pump"); d.State != rules.StateUnacked {
		t.Fatalf("new rule after a reading: %s", d.State)
	}
	if n := len(e.Alarms(func(a *rules.Alarm) bool { return a.Rule == "low-level" })); n != 0 {
		t.Fatalf("%d alarms of the removed rule listed", n)
	}
}
