package alarmkpi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	. "github.com/propgate/gateway/rules/alarmkpi"
)

var day = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func f64(v float64) *float64 { return &v }

// site is a real engine over a real SQLite store with 12 pump rooms (high),
// a lamp (low) and a leak sensor (critical).
func site(t testing.TB) (*sqlite.Rules, *rules.Engine) {
	t.Helper()
	var assets []collectors.Asset
	for i := 1; i <= 12; i++ {
		assets = append(assets, collectors.Asset{ID: fmt.Sprintf("p%d", i), Kind: "pump_room", Name: fmt.Sprintf("pump room %d", i)})
	}
	assets = append(assets, collectors.Asset{ID: "l1", Kind: "lighting", Name: "lobby lights"}, collectors.Asset{ID: "w1", Kind: "water_sensor", Name: "pump-room leak"})
	cfg := rules.Config{Rules: []rules.Rule{
		{ID: "low-pressure", Name: "Outlet pressure low", NameZH: "出口压力低", Target: rules.Target{Kind: "pump_room"}, Field: "p", Threshold: &rules.Threshold{Below: f64(0.15)}, Priority: rules.High},
		{ID: "lighting-off", Name: "Lighting off", NameZH: "照明回路断电", Target: rules.Target{Kind: "lighting"}, Field: "on", State: &rules.StateMatch{Equals: false}, Priority: rules.Low},
		{ID: "leak", Name: "Leak", NameZH: "漏水", Target: rules.Target{Kind: "water_sensor"}, Field: "leak", State: &rules.StateMatch{Equals: true}, Priority: rules.Critical},
	}}
	cfg.SetDefaults()
	if err := cfg.Validate(assets); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := rules.NewEngine(cfg, assets, rules.Deps{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return day }})
	return store, e
}

// fire stores one firing of alarm id at t and its return to normal 5 s later.
func fire(t testing.TB, store *sqlite.Rules, id string, at time.Time) {
	t.Helper()
	rule, asset, _ := cut(id)
	a := &rules.Alarm{ID: id, Rule: rule, Asset: asset, State: rules.StateNormal}
	if err := store.SaveAlarm(context.Background(), a, []rules.Transition{
		{AlarmID: id, From: rules.StateNormal, To: rules.StateUnacked, At: at, By: rules.ByEngine},
		{AlarmID: id, From: rules.StateUnacked, To: rules.StateRTNUnacked, At: at.Add(5 * time.Second), By: rules.ByEngine},
		{AlarmID: id, From: rules.StateRTNUnacked, To: rules.StateNormal, At: at.Add(6 * time.Second), By: "wang.li"},
	}); err != nil {
		t.Fatal(err)
	}
}

func cut(id string) (string, string, bool) {
	for i := range id {
		if id[i] == ':' {
			return id[:i], id[i+1:], true
		}
	}
	return id, "", false
}

// A generated day: the lamp fires every half hour (48, at :15 and :45); a
// flood at 10:20–10:40 (15 then 12 alarms in the two ten-minute periods);
// the leak sensor chatters at 14:00 (three firings within 40 s); two
// shelvings; and the lamp's alarm has been standing since the evening
// before. Every figure below is counted by hand from that.
func TestFloodBadActorsChatteringFromAGeneratedStream(t *testing.T) {
	store, e := site(t)
	for i := range 48 {
		fire(t, store, "lighting-off:l1", day.Add(15*time.Minute+time.Duration(i)*30*time.Minute))
	}
	for i := 1; i <= 12; i++ {
		fire(t, store, fmt.Sprintf("low-pressure:p%d", i), day.Add(10*time.Hour+20*time.Minute+time.Duration(i)*30*time.Second))
		fire(t, store, fmt.Sprintf("low-pressure:p%d", i), day.Add(10*time.Hour+30*time.Minute+time.Duration(i)*40*time.Second))
	}
	for _, m := range []time.Duration{21, 24, 27} { // in the flood's first period, a minute and more apart: not chattering
		fire(t, store, "leak:w1", day.Add(10*time.Hour+m*time.Minute))
	}
	for _, s := range []time.Duration{0, 20, 40} {
		fire(t, store, "leak:w1", day.Add(14*time.Hour+s*time.Second))
	}
	for i, id := range []string{"low-pressure:p1", "low-pressure:p2"} {
		if err := store.SaveAlarm(context.Background(), &rules.Alarm{ID: id, Rule: "low-pressure", Asset: id[len("low-pressure:"):], State: rules.StateNormal},
			[]rules.Transition{{AlarmID: id, From: rules.StateNormal, To: rules.StateShelved, At: day.Add(time.Duration(11+i) * time.Hour), By: "wang.li"}}); err != nil {
			t.Fatal(err)
		}
	}
	// The lamp's alarm stands (acknowledged) since 20:00 the evening before.
	since := day.Add(-4 * time.Hour)
	if err := store.SaveAlarm(context.Background(), &rules.Alarm{ID: "lighting-off:l1", Rule: "lighting-off", Asset: "l1", State: rules.StateAcked,
		Active: true, Acked: true, ActiveSince: since, Since: since}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}

	h := New(Config{}, store, e, time.UTC, func() time.Time { return day.Add(36 * time.Hour) })
	r, err := h.Report(context.Background(), day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const total = 48 + 6 + 24
	if r.Alarms != total || r.Max10Min != 15 || r.ShelvedInPeriod != 2 {
		t.Fatalf("alarms %d (want %d), max per 10 min %d (want 15), shelved %d (want 2)", r.Alarms, total, r.Max10Min, r.ShelvedInPeriod)
	}
	if len(r.Floods) != 1 || !r.Floods[0].Start.Equal(day.Add(10*time.Hour+20*time.Minute)) || !r.Floods[0].End.Equal(day.Add(10*time.Hour+40*time.Minute)) ||
		r.Floods[0].Alarms != 27 || r.Floods[0].Peak != 15 {
		t.Fatalf("floods %+v; want one, 10:20–10:40, 27 alarms, peak 15", r.Floods)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(r.FloodTimeShare.Value, 20.0/1440) || r.FloodTimeShare.Met || !near(r.PerDayPerOperator.Value, total) || !r.PerDayPerOperator.Met ||
		!near(r.Per10MinPerOperator.Value, total/144.0) || !r.Per10MinPerOperator.Met {
		t.Fatalf("rates: flood %+v, per day %+v, per 10 min %+v", r.FloodTimeShare, r.PerDayPerOperator, r.Per10MinPerOperator)
	}
	want := []string{"lighting-off:l1", "leak:w1", "low-pressure:p1", "low-pressure:p10", "low-pressure:p11", "low-pressure:p12",
		"low-pressure:p2", "low-pressure:p3", "low-pressure:p4", "low-pressure:p5"}
	if len(r.BadActors) != 10 {
		t.Fatalf("%d bad actors", len(r.BadActors))
	}
	for i, id := range want {
		if r.BadActors[i].Alarm != id {
			t.Fatalf("bad actor %d is %s (%d), want %s; all %+v", i, r.BadActors[i].Alarm, r.BadActors[i].Count, id, r.BadActors)
		}
	}
	if b := r.BadActors[0]; b.Count != 48 || b.Priority != rules.Low || b.NameZH != "照明回路断电" || !near(r.BadActorShare, (48+6+16)/float64(total)) {
		t.Fatalf("top bad actor %+v, share %v", b, r.BadActorShare)
	}
	if len(r.Chattering) != 1 || r.Chattering[0].Alarm != "leak:w1" || r.Chattering[0].Episodes != 1 {
		t.Fatalf("chattering %+v; want leak:w1 once", r.Chattering)
	}
	if len(r.Stale) != 1 || r.Stale[0].Alarm != "lighting-off:l1" || r.Stale[0].Hours != 28 || !r.StaleAsOf.Equal(day.Add(24*time.Hour)) {
		t.Fatalf("stale %+v as of %s; want the lamp, 28 h", r.Stale, r.StaleAsOf)
	}
	wantP := map[string]int{"critical": 6, "high": 24, "medium+low": 48}
	for _, p := range r.Priorities {
		if p.Alarms != wantP[p.Priority] || !near(p.Share, float64(wantP[p.Priority])/total) {
			t.Fatalf("priorities %+v", r.Priorities)
		}
	}
	if len(r.Days) != 1 || r.Days[0].Date != "2026-11-01" || r.Days[0].Alarms != total {
		t.Fatalf("days %+v", r.Days)
	}
}

// Closed days are kept once read; a report over several days is the same
// as reading them in one go: an alarm chattering across midnight (23:59:30,
// 23:59:50, 00:00:10) is one episode, and asking again gives the same.
func TestDaysCachedAndStitchedAtMidnight(t *testing.T) {
	store, e := site(t)
	midnight := day.Add(24 * time.Hour)
	for _, at := range []time.Time{midnight.Add(-30 * time.Second), midnight.Add(-10 * time.Second), midnight.Add(10 * time.Second), day.Add(30 * time.Hour)} {
		fire(t, store, "leak:w1", at)
	}
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := day.Add(72 * time.Hour)
	h := New(Config{}, store, e, time.UTC, func() time.Time { return now })
	for i := range 2 {
		r, err := h.Report(context.Background(), day, day.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if r.Alarms != 4 || len(r.Chattering) != 1 || r.Chattering[0].Episodes != 1 || len(r.Days) != 2 || r.Days[0].Alarms != 2 || r.Days[1].Alarms != 2 {
			t.Fatalf("run %d: alarms %d, chattering %+v, days %+v", i, r.Alarms, r.Chattering, r.Days)
		}
	}
	// A firing stored late into a kept day (an import, a clock put right)
	// drops the day in the store and in memory: it is counted.
	fire(t, store, "leak:w1", day.Add(12*time.Hour))
	if r, _ := h.Report(context.Background(), day, day.Add(48*time.Hour)); r.Alarms != 5 || r.Days[0].Alarms != 3 {
		t.Fatalf("a late firing in a kept day: %d alarms, days %+v; want 5, 3 on the first day", r.Alarms, r.Days)
	}
	// A partial day (from 23:59:40) is read from the store, bucketed from its own start.
	r, err := h.Report(context.Background(), midnight.Add(-20*time.Second), day.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.Alarms != 3 || len(r.Chattering) != 0 { // 23:59:30 is before the period: two firings within the minute, not three
		t.Fatalf("partial: alarms %d, chattering %+v", r.Alarms, r.Chattering)
	}
}
