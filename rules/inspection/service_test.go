package inspection_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/workorder"
)

var shanghai = func() *time.Location { l, _ := time.LoadLocation("Asia/Shanghai"); return l }()

var assets = []collectors.Asset{
	{ID: "lobby", Kind: collectors.KindLighting, Name: "B3 lobby lighting", Building: "Building 3"},
	{ID: "garage", Kind: collectors.KindLighting, Name: "B3 garage lighting", Building: "Building 3"},
}

func f(v float64) *float64 { return &v }
func b(v bool) *bool       { return &v }

func nightRound() inspection.Config {
	return inspection.Config{TimeZone: "Asia/Shanghai", QRSecret: "test-secret-0123456789", Routes: []inspection.Route{{
		ID: "night-lighting", Name: "夜间照明巡查", Schedule: "0 20 * * *", Window: 2 * time.Hour, Asset: "lobby", Category: "electrical",
		Checkpoints: []inspection.Checkpoint{
			{ID: "lobby", Name: "大堂", Items: []inspection.Item{
				{ID: "lights", Label: "大堂照明全部亮起", Kind: inspection.KindYesNo, Telemetry: &inspection.Telemetry{Asset: "lobby", Field: "on"}},
				{ID: "broken", Label: "损坏灯具数量", Kind: inspection.KindReading, Max: f(0)},
			}},
			{ID: "garage", Name: "车库", Items: []inspection.Item{
				{ID: "lights", Label: "车库照明亮起", Kind: inspection.KindYesNo, Telemetry: &inspection.Telemetry{Asset: "garage", Field: "on"}},
			}},
		}}}}
}

var missedRule = rules.Rule{ID: "inspection-missed", Target: rules.Target{Building: "Building 3"}, Field: inspection.Field,
	Threshold: &rules.Threshold{Above: f(0)}, Priority: rules.Medium}

func newService(t *testing.T, s *site, cfg inspection.Config) *inspection.Service {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(func(id string) bool { _, ok := s.State.Asset(id); return ok }); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.OpenInspections(s.DB.DB)
	if err != nil {
		t.Fatal(err)
	}
	svc := inspection.NewService(cfg, assets, inspection.Deps{Store: st, Telemetry: s.State, WorkOrders: s.Orders, Sink: s.Pipeline, Log: s.Log, Now: s.Clock.Now})
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

// The daily 20:00 night-lighting round opens at 20:00 (injected clock); the
// inspector's "lights on" against a circuit reading off is flagged; an
// abnormal item opens a work order; the round not finished by 22:00 is
// missed and the missed-round rule alarms; entering it late clears it.
func TestRoundOpensAt2000FlagsDisagreementAndMissedRoundAlarms(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, []rules.Rule{missedRule}, time.Date(2026, 11, 23, 19, 0, 0, 0, shanghai))
	svc := newService(t, s, nightRound())
	s.Set("lobby", "on", collectors.Bool(false)) // the lobby circuit is off
	s.Set("garage", "on", collectors.Bool(true))

	if err := svc.Tick(ctx); err != nil { // first sight of the route: its schedule starts now
		t.Fatal(err)
	}
	s.Clock.Set(time.Date(2026, 11, 23, 19, 59, 59, 0, shanghai))
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if rs, _ := svc.Rounds(ctx, inspection.RoundFilter{}); len(rs) != 0 {
		t.Fatalf("a round opened before 20:00: %+v", rs[0])
	}
	s.Clock.Set(time.Date(2026, 11, 23, 20, 0, 5, 0, shanghai))
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	svc.Tick(ctx) // again: still one round
	rs, err := svc.Rounds(ctx, inspection.RoundFilter{})
	if err != nil || len(rs) != 1 {
		t.Fatalf("rounds after 20:00: %v %d", err, len(rs))
	}
	rd := rs[0]
	if rd.Status != inspection.StatusOpen || !rd.Scheduled.Equal(time.Date(2026, 11, 23, 20, 0, 0, 0, shanghai)) ||
		!rd.Due.Equal(time.Date(2026, 11, 23, 22, 0, 0, 0, shanghai)) {
		t.Fatalf("round: %+v", rd)
	}

	// The phone scans the lobby's code: the lights item is pre-filled off.
	route, cp, err := svc.ParseCode(svc.Code("night-lighting", "lobby"))
	if err != nil {
		t.Fatal(err)
	}
	pre, err := svc.Checkpoint(ctx, route, cp)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := pre.Telemetry["lights"].(collectors.Value); !ok || v.Type != collectors.ValueBool || v.B || pre.Round == nil || pre.Round.ID != rd.ID {
		t.Fatalf("prefill: %+v", pre)
	}
	// The inspector says the lights are on, and two fittings are broken.
	rd, err = svc.Submit(ctx, rd.ID, inspection.Entry{Checkpoint: "lobby", Code: svc.Code("night-lighting", "lobby"), Items: []inspection.EntryItem{
		{Item: "lights", Yes: b(true)}, {Item: "broken", Reading: f(2), Text: "东侧两盏筒灯不亮"}}}, "wang.li")
	if err != nil {
		t.Fatal(err)
	}
	res := rd.Results[0]
	if res.CheckIn != "qr" || res.By != "wang.li" || !res.At.Equal(s.Clock.Now()) {
		t.Fatalf("check-in: %+v", res)
	}
	lights, broken := res.Items[0], res.Items[1]
	if !lights.Flagged || lights.Telemetry == nil || lights.Telemetry.B || lights.Abnormal {
		t.Fatalf("lights item (entered on, circuit off) must be flagged: %+v", lights)
	}
	if broken.Flagged || !broken.Abnormal || broken.WorkOrder == 0 {
		t.Fatalf("broken fittings (2 > max 0) must be abnormal with a work order: %+v", broken)
	}
	w, _, err := s.DB.WorkOrder(ctx, broken.WorkOrder)
	if err != nil || w.Category != "electrical" || w.Asset != "lobby" || !strings.Contains(w.Description, "东侧两盏筒灯不亮") {
		t.Fatalf("work order: %v %+v", err, w)
	}
	if rd.Status != inspection.StatusOpen || rd.Flagged != 1 || rd.Abnormal != 1 {
		t.Fatalf("one checkpoint of two: still open, 1 flagged, 1 abnormal: %+v", rd)
	}
	// Entering the lobby again (corrected: the lights are off) agrees with
	// the telemetry, is abnormal (its own work order), and does not open a
	// second one for the broken fittings.
	rd, err = svc.Submit(ctx, rd.ID, inspection.Entry{Checkpoint: "lobby", Items: []inspection.EntryItem{{Item: "lights", Yes: b(false)}, {Item: "broken", Reading: f(2)}}}, "wang.li")
	if err != nil || rd.Results[0].Items[1].WorkOrder != broken.WorkOrder || rd.Results[0].Items[0].Flagged || !rd.Results[0].Items[0].Abnormal ||
		rd.Results[0].CheckIn != "manual" {
		t.Fatalf("re-entry: %v %+v", err, rd.Results)
	}
	if ws, _ := s.DB.WorkOrders(ctx, workorder.Filter{}); len(ws) != 2 {
		t.Fatalf("work orders: %d, want 2 (fittings, lights off)", len(ws))
	}
	// A code from another checkpoint is refused.
	if _, err := svc.Submit(ctx, rd.ID, inspection.Entry{Checkpoint: "garage", Code: svc.Code("night-lighting", "lobby"),
		Items: []inspection.EntryItem{{Item: "lights", Yes: b(true)}}}, "wang.li"); !errors.Is(err, inspection.ErrBadCode) {
		t.Fatalf("wrong code: %v", err)
	}

	// 22:00 passes with the garage not done: missed, and the rule alarms.
	if a := s.Alarm(t, "inspection-missed:lobby"); a.State != rules.StateNormal {
		t.Fatalf("alarm before the window ends: %s", a.State)
	}
	s.Clock.Set(time.Date(2026, 11, 23, 22, 0, 1, 0, shanghai))
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if rd, _ = svc.Round(ctx, rd.ID); rd.Status != inspection.StatusMissed {
		t.Fatalf("round after 22:00: %s", rd.Status)
	}
	if a := s.Alarm(t, "inspection-missed:lobby"); a.State != rules.StateUnacked {
		t.Fatalf("missed round: alarm %s, want unacknowledged", a.State)
	}
	if fs, _ := s.State.Get("lobby", inspection.Field); fs.Value.I != 1 {
		t.Fatalf("inspections_missed = %v", fs.Value)
	}
	// Entered late: done (late), the count drops and the alarm returns.
	s.Clock.Set(time.Date(2026, 11, 23, 22, 20, 0, 0, shanghai))
	rd, err = svc.Submit(ctx, rd.ID, inspection.Entry{Checkpoint: "garage", Items: []inspection.EntryItem{{Item: "lights", Yes: b(true)}}}, "zhang.wei")
	if err != nil || rd.Status != inspection.StatusDone || !rd.Late {
		t.Fatalf("late entry: %v %+v", err, rd)
	}
	if a := s.Alarm(t, "inspection-missed:lobby"); a.State.Active() {
		t.Fatalf("alarm after the late entry: %s", a.State)
	}
	// A restarted service remembers nothing is missed; the next day's round opens at 20:00.
	svc2 := newService(t, s, nightRound())
	s.Clock.Set(time.Date(2026, 11, 24, 20, 0, 0, 0, shanghai))
	if err := svc2.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if rs, _ := svc2.Rounds(ctx, inspection.RoundFilter{Status: inspection.StatusOpen}); len(rs) != 1 || !rs[0].Scheduled.Equal(s.Clock.Now()) {
		t.Fatalf("next day: %+v", rs)
	}
	if fs, _ := s.State.Get("lobby", inspection.Field); fs.Value.I != 0 {
		t.Fatalf("inspections_missed after restart = %v", fs.Value)
	}
}

// A missed round closed with a reason clears the alarm; without a reason it is refused.
func TestMissedRoundClosedWithReason(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, []rules.Rule{missedRule}, time.Date(2026, 11, 23, 19, 0, 0, 0, shanghai))
	svc := newService(t, s, nightRound())
	svc.Tick(ctx)
	s.Clock.Set(time.Date(2026, 11, 24, 8, 0, 0, 0, shanghai)) // slept through 20:00 and 22:00
	svc.Tick(ctx)
	rs, _ := svc.Rounds(ctx, inspection.RoundFilter{Status: inspection.StatusMissed})
	if len(rs) != 1 {
		t.Fatalf("missed rounds: %d", len(rs))
	}
	if a := s.Alarm(t, "inspection-missed:lobby"); a.State != rules.StateUnacked {
		t.Fatalf("alarm: %s", a.State)
	}
	if _, err := svc.Close(ctx, rs[0].ID, "li.ming", " "); !errors.Is(err, inspection.ErrInvalid) {
		t.Fatalf("close without a reason: %v", err)
	}
	rd, err := svc.Close(ctx, rs[0].ID, "li.ming", "停电，夜班人员处理突发事件")
	if err != nil || rd.Status != inspection.StatusClosed || rd.ClosedBy != "li.ming" {
		t.Fatalf("close: %v %+v", err, rd)
	}
	if a := s.Alarm(t, "inspection-missed:lobby"); a.State.Active() {
		t.Fatalf("alarm after closing: %s", a.State)
	}
}

func TestEntryValidation(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, nil, time.Date(2026, 11, 23, 19, 0, 0, 0, shanghai))
	svc := newService(t, s, nightRound())
	rd, err := svc.Start(ctx, "night-lighting", "wang.li")
	if err != nil || !rd.AdHoc {
		t.Fatal(err)
	}
	for name, e := range map[string]inspection.Entry{
		"unknown checkpoint": {Checkpoint: "roof"},
		"missing answer":     {Checkpoint: "garage"},
		"unknown item":       {Checkpoint: "garage", Items: []inspection.EntryItem{{Item: "lights", Yes: b(true)}, {Item: "x", Yes: b(true)}}},
		"bad photo":          {Checkpoint: "garage", Items: []inspection.EntryItem{{Item: "lights", Yes: b(true), Photo: "x"}}},
		"forged code":        {Checkpoint: "garage", Code: "night-lighting.garage.AAAAAAAAAAAAAAAAAAAAAA", Items: []inspection.EntryItem{{Item: "lights", Yes: b(true)}}},
	} {
		_, err := svc.Submit(ctx, rd.ID, e, "wang.li")
		if name == "bad photo" { // a photo on a yes/no item is ignored, not an error
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, inspection.ErrInvalid) && !errors.Is(err, inspection.ErrBadCode) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A yes/no question that is the reading's opposite ("sump level normal?"
// against sump_high) is pre-filled and compared inverted.
func TestInvertedTelemetryItem(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, nil, time.Date(2026, 11, 23, 9, 0, 0, 0, shanghai))
	cfg := nightRound()
	cfg.Routes[0].Checkpoints = []inspection.Checkpoint{{ID: "garage", Name: "车库", Items: []inspection.Item{
		{ID: "dark-ok", Label: "车库照明正常", Kind: inspection.KindYesNo, Telemetry: &inspection.Telemetry{Asset: "garage", Field: "fault", Invert: true}}}}}
	svc := newService(t, s, cfg)
	s.Set("garage", "fault", collectors.Bool(false))
	pre, err := svc.Checkpoint(ctx, "night-lighting", "garage")
	if err != nil || pre.Suggested["dark-ok"] != true {
		t.Fatalf("suggested: %v %+v", err, pre.Suggested)
	}
	rd, _ := svc.Start(ctx, "night-lighting", "wang.li")
	rd, err = svc.Submit(ctx, rd.ID, inspection.Entry{Checkpoint: "garage", Items: []inspection.EntryItem{{Item: "dark-ok", Yes: b(true)}}}, "wang.li")
	if err != nil || rd.Results[0].Items[0].Flagged {
		t.Fatalf("yes against fault=false must agree: %v %+v", err, rd.Results)
	}
	rd, _ = svc.Start(ctx, "night-lighting", "wang.li")
	rd, err = svc.Submit(ctx, rd.ID, inspection.Entry{Checkpoint: "garage", Items: []inspection.EntryItem{{Item: "dark-ok", Yes: b(false)}}}, "wang.li")
	if err != nil || !rd.Results[0].Items[0].Flagged || !rd.Results[0].Items[0].Abnormal {
		t.Fatalf("no against fault=false must be flagged and abnormal: %v %+v", err, rd.Results)
	}
}
