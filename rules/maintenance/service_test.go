package maintenance_test

import (
	"context"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/workorder"
)

var shanghai = func() *time.Location { l, _ := time.LoadLocation("Asia/Shanghai"); return l }()

var assets = []collectors.Asset{
	{ID: "b3-pump-room", Kind: collectors.KindPumpRoom, Name: "B3 pump room", Building: "Building 3"},
	{ID: "b3-lift-1", Kind: collectors.KindElevator, Name: "B3 car 1", Building: "Building 3"},
}

func newService(t *testing.T, s *site, cfg maintenance.Config) *maintenance.Service {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(func(id string) bool { _, ok := s.State.Asset(id); return ok }); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.OpenMaintenance(s.DB.DB)
	if err != nil {
		t.Fatal(err)
	}
	return maintenance.NewService(cfg, maintenance.Deps{Store: st, Orders: s.Orders, OrderRead: s.DB, Telemetry: s.State, Log: s.Log, Now: s.Clock.Now})
}

func pmOrders(t *testing.T, s *site) []*workorder.WorkOrder {
	t.Helper()
	ws, err := s.DB.WorkOrders(context.Background(), workorder.Filter{Category: "plumbing"})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// A pump crossing its service interval in run_hours opens one PM work
// order: not before, once when it crosses, not again on later readings;
// done when the work order is resolved, and the next interval's comes at
// the next multiple.
func TestPumpCrossingServiceIntervalOpensOnePMWorkOrder(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, nil, time.Date(2026, 11, 23, 9, 0, 0, 0, shanghai))
	svc := newService(t, s, maintenance.Config{Plans: []maintenance.Plan{{ID: "pump-service", Name: "水泵保养", Assets: []string{"b3-pump-room"},
		Category: "plumbing", RunHours: &maintenance.RunHours{Every: 2000, Last: map[string]float64{"b3-pump-room": 10000}}}}})
	if err := svc.Tick(ctx); err != nil { // no meter reading yet
		t.Fatal(err)
	}
	s.Set("b3-pump-room", "run_hours", collectors.Float(11999))
	svc.Tick(ctx)
	if ws := pmOrders(t, s); len(ws) != 0 {
		t.Fatalf("before 12000 h: %d work orders", len(ws))
	}
	s.Set("b3-pump-room", "run_hours", collectors.Float(12000.5))
	svc.Tick(ctx)
	s.Set("b3-pump-room", "run_hours", collectors.Float(12003))
	svc.Tick(ctx)
	svc.Tick(ctx)
	ws := pmOrders(t, s)
	if len(ws) != 1 {
		t.Fatalf("after crossing 12000 h: %d work orders, want 1", len(ws))
	}
	if ws[0].Asset != "b3-pump-room" || ws[0].Priority != rules.Low || ws[0].Reporter != maintenance.By {
		t.Fatalf("work order: %+v", ws[0])
	}
	its, err := svc.Items(ctx, "", time.Time{}, 10)
	if err != nil || len(its) != 1 || its[0].DueHours != 12000 || its[0].Status != maintenance.StatusOverdue || its[0].WorkOrder != ws[0].ID {
		t.Fatalf("items: %v %+v", err, its)
	}
	for _, to := range []workorder.Status{workorder.Accepted, workorder.Resolved} {
		if _, err := s.Orders.Transition(ctx, ws[0].ID, to, "zhang.wei", "serviced"); err != nil {
			t.Fatal(err)
		}
	}
	if its, _ = svc.Items(ctx, "", time.Time{}, 10); its[0].Status != maintenance.StatusDone {
		t.Fatalf("after resolving: %s", its[0].Status)
	}
	s.Set("b3-pump-room", "run_hours", collectors.Float(14001))
	svc.Tick(ctx)
	if ws := pmOrders(t, s); len(ws) != 2 {
		t.Fatalf("after 14000 h: %d work orders, want 2", len(ws))
	}
	c, err := svc.Counts(ctx, time.Date(2026, 11, 1, 0, 0, 0, 0, shanghai), time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai))
	if err != nil || c.Opened != 2 || c.Done != 1 || c.Overdue != 1 || c.CompletionRate == nil || *c.CompletionRate != 0.5 {
		t.Fatalf("counts: %v %+v", err, c)
	}
}

// Lifts every 15 days: the work order opens 72 hours ahead, once, and is
// overdue after its day.
func TestLiftEvery15DaysOpensAhead(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, nil, time.Date(2026, 1, 10, 12, 0, 0, 0, shanghai))
	svc := newService(t, s, maintenance.Config{Plans: []maintenance.Plan{{ID: "lift-15-day", Name: "电梯半月保养", Assets: []string{"b3-lift-1"},
		Category: "elevator", EveryDays: 15, Start: "2026-01-05"}}})
	// Due 2026-01-20 09:00; 72 h ahead is 01-17 09:00.
	svc.Tick(ctx)
	s.Clock.Set(time.Date(2026, 1, 17, 8, 59, 0, 0, shanghai))
	svc.Tick(ctx)
	its, _ := svc.Items(ctx, "", time.Time{}, 10)
	if len(its) != 0 {
		t.Fatalf("before 72 h ahead: %+v", its)
	}
	s.Clock.Set(time.Date(2026, 1, 17, 9, 0, 0, 0, shanghai))
	svc.Tick(ctx)
	svc.Tick(ctx)
	its, _ = svc.Items(ctx, "", time.Time{}, 10)
	if len(its) != 1 || !its[0].Due.Equal(time.Date(2026, 1, 20, 9, 0, 0, 0, shanghai)) || its[0].Status != maintenance.StatusUpcoming {
		t.Fatalf("72 h ahead: %+v", its)
	}
	s.Clock.Set(time.Date(2026, 1, 20, 10, 0, 0, 0, shanghai))
	if its, _ = svc.Items(ctx, "", time.Time{}, 10); its[0].Status != maintenance.StatusOverdue {
		t.Fatalf("after the day: %s", its[0].Status)
	}
}
