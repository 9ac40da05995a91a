package monthly_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
)

// history is the store without its kept days: every figure read from the
// transitions, the reference the kept days and today's running figures
// must equal.
type history struct{ s *sqlite.Rules }

func (h history) StatesAt(ctx context.Context, t time.Time) (map[string]rules.AlarmState, error) {
	return h.s.StatesAt(ctx, t)
}

func (h history) TransitionsOf(ctx context.Context, ids []string, from, to time.Time) ([]rules.Transition, error) {
	return h.s.TransitionsOf(ctx, ids, from, to)
}

func (h history) AlarmEvents(ctx context.Context, from, to time.Time, fn func([]byte, time.Time, alarmkpi.EventKind)) error {
	return h.s.AlarmEvents(ctx, from, to, fn)
}

// Equipment in good order and the alarm system's health, computed from
// kept days (in memory and in the store), today's running figures and
// after a restart, equal the same figures read afresh from every
// transition: over five days of random alarms (two device-fault alarms on
// one asset, chattering bursts, shelving) in Shanghai's time zone, as the
// clock moves through a day, after a restart, and after a late transition
// lands in a day already kept.
func TestKeptDaysEqualAFreshReading(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	assets := []collectors.Asset{{ID: "p1", Kind: "pump_room"}, {ID: "p2", Kind: "pump_room"}, {ID: "leak1", Kind: "water_sensor"}}
	rc := rules.Config{Rules: []rules.Rule{
		{ID: "comm", Target: rules.Target{Kind: "pump_room"}, Field: "comm_lost", State: &rules.StateMatch{Equals: true}, Priority: rules.High, Fault: true},
		{ID: "ctrl", Target: rules.Target{Kind: "pump_room"}, Field: "fault_code", State: &rules.StateMatch{Equals: true}, Priority: rules.Medium, Fault: true},
		{ID: "pressure", Target: rules.Target{Kind: "pump_room"}, Field: "low", State: &rules.StateMatch{Equals: true}, Priority: rules.Low},
		{ID: "leak", Target: rules.Target{Kind: "water_sensor"}, Field: "leak", State: &rules.StateMatch{Equals: true}, Priority: rules.Critical},
	}}
	rc.SetDefaults()
	if err := rc.Validate(assets); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, loc)
	c := &clock{t: from}
	e := rules.NewEngine(rc, assets, rules.Deps{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.now})
	ids := []string{"comm:p1", "ctrl:p1", "comm:p2", "ctrl:p2", "pressure:p1", "pressure:p2", "leak:leak1"}
	rnd := rand.New(rand.NewPCG(12, 1))
	save := func(id string, tr ...rules.Transition) {
		t.Helper()
		rule, asset, _ := cut(id)
		if err := store.SaveAlarm(context.Background(), &rules.Alarm{ID: id, Rule: rule, Asset: asset, State: tr[len(tr)-1].To}, tr); err != nil {
			t.Fatal(err)
		}
	}
	end := from.AddDate(0, 0, 5)
	for _, id := range ids {
		state, at := rules.StateNormal, from.Add(-3*time.Hour) // some start the month in a fault
		for at.Before(end) {
			mean := 15 * time.Minute // in an alarm
			if state == rules.StateNormal || state == rules.StateRTNUnacked {
				mean = 3 * time.Hour
			}
			gap := time.Duration(rnd.ExpFloat64() * float64(mean))
			if rnd.IntN(8) == 0 {
				gap = time.Duration(rnd.IntN(20)) * time.Second // a chattering burst
			}
			at = at.Add(gap).Truncate(time.Millisecond)
			next := rules.StateNormal
			switch state {
			case rules.StateNormal, rules.StateRTNUnacked:
				next = rules.StateUnacked
			case rules.StateUnacked:
				next = []rules.AlarmState{rules.StateRTNUnacked, rules.StateAcked, rules.StateShelved, rules.StateOutOfService}[rnd.IntN(4)]
			}
			save(id, rules.Transition{AlarmID: id, From: state, To: next, At: at, By: rules.ByEngine})
			state = next
		}
	}
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}

	type figures struct {
		good   *rules.GoodOrder
		health string
	}
	read := func(eq *rules.Equipment, h *alarmkpi.Health, to time.Time) figures {
		t.Helper()
		good, err := eq.GoodOrder(context.Background(), from, to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := h.Report(context.Background(), from, to)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := json.Marshal(struct {
			R   *alarmkpi.Report
			Per []alarmkpi.AlarmCount
		}{r, r.PerAlarm})
		if err != nil {
			t.Fatal(err)
		}
		return figures{good, string(doc)}
	}
	fresh := func(to time.Time) figures {
		return read(rules.NewEquipment(e, history{store}).InZone(loc), alarmkpi.New(alarmkpi.Config{}, history{store}, e, loc, c.now), to)
	}
	kept := func() (*rules.Equipment, *alarmkpi.Health) {
		return rules.NewEquipment(e, store).InZone(loc), alarmkpi.New(alarmkpi.Config{}, store, e, loc, c.now)
	}
	check := func(what string, eq *rules.Equipment, h *alarmkpi.Health) {
		t.Helper()
		got, want := read(eq, h, c.t), fresh(c.t)
		if !reflect.DeepEqual(got.good, want.good) {
			t.Errorf("%s at %s: good order\n%+v\nwant\n%+v", what, c.t, got.good, want.good)
		}
		if got.health != want.health {
			t.Errorf("%s at %s: alarm health\n%s\nwant\n%s", what, c.t, got.health, want.health)
		}
	}
	eq, h := kept()
	c.t = from.AddDate(0, 0, 3).Add(9 * time.Hour) // 4 November, 09:00
	check("first", eq, h)
	for _, step := range []time.Duration{7 * time.Minute, 20 * time.Second, 3 * time.Hour, 14*time.Hour + 50*time.Minute, 2 * time.Minute} { // … into 5 November
		c.t = c.t.Add(step)
		check("as the clock moves", eq, h)
	}
	eq2, h2 := kept()
	check("after a restart", eq2, h2)
	before := fresh(c.t)
	late := from.AddDate(0, 0, 1).Add(7 * time.Hour) // 2 November, kept: a new fault alarm on p2 all day
	save("ctrl:p9", rules.Transition{AlarmID: "ctrl:p9", From: rules.StateNormal, To: rules.StateUnacked, At: late, By: rules.ByEngine})
	save("comm:p2", rules.Transition{AlarmID: "comm:p2", From: rules.StateNormal, To: rules.StateOutOfService, At: late, By: rules.ByEngine},
		rules.Transition{AlarmID: "comm:p2", From: rules.StateOutOfService, To: rules.StateNormal, At: late.Add(16 * time.Hour), By: rules.ByEngine})
	if after := fresh(c.t); reflect.DeepEqual(after.good, before.good) || after.health == before.health {
		t.Fatalf("the late transitions change neither figure: the test checks nothing\n%+v\n%+v\n%s", before.good, after.good, after.health)
	}
	check("after a late transition", eq, h)
	eq, h = kept()
	check("after a late transition and a restart", eq, h)
}
