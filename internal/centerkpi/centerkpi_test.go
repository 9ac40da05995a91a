package centerkpi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/rules/workorder"
)

type records []replication.Record

func (r records) WorkOrdersCreated(_ context.Context, from, to time.Time) ([]replication.Record, error) {
	var out []replication.Record
	for _, rec := range r {
		var w workorder.WorkOrder
		if json.Unmarshal(rec.Doc, &w) == nil && (w.Created.Before(from) || !w.Created.Before(to)) {
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

func rec(t *testing.T, site string, w workorder.WorkOrder) replication.Record {
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return replication.Record{Site: site, Kind: replication.KindWorkOrder, Doc: b}
}

// The total pools the orders of the sites shown (not an average of their
// rates); a site outside the viewer's sites is neither a row nor in the
// total; a configured site without orders has a row with no data.
func TestMonthPoolsTheSitesShown(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	day := time.Date(2026, 11, 10, 9, 0, 0, 0, loc)
	done := func(id int64) workorder.WorkOrder {
		return workorder.WorkOrder{ID: id, Type: workorder.PM, Status: workorder.Closed, Created: day, ResponseDue: day.Add(time.Hour), AcceptedAt: day.Add(time.Minute),
			ResolutionDue: day.Add(4 * time.Hour), ResolvedAt: day.Add(2 * time.Hour)}
	}
	open := func(id int64) workorder.WorkOrder {
		return workorder.WorkOrder{ID: id, Type: workorder.PM, Status: workorder.Opened, Created: day, ResponseDue: day.Add(time.Hour), ResolutionDue: day.Add(4 * time.Hour)}
	}
	src := records{rec(t, "a", done(1)), rec(t, "a", done(2)), rec(t, "a", done(3)), rec(t, "b", open(1)), rec(t, "c", done(1)),
		{Site: "a", Kind: replication.KindWorkOrder, Doc: json.RawMessage(`{"id":"not a number"}`)}}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, loc)
	b := New(src, Config{Location: loc, Sites: []replication.SiteInfo{{ID: "a", Name: "甲"}, {ID: "d"}}}, func() time.Time { return now })
	m, err := b.Build(context.Background(), "2026-11", func(s string) bool { return s != "c" }, []string{"a", "d", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sites) != 3 || m.Sites[0].Site != "a" || m.Sites[0].Name != "甲" || m.Sites[1].Site != "b" || m.Sites[2].Site != "d" {
		t.Fatalf("rows %+v", m.Sites)
	}
	// a: 3/3 handled, b: 0/1; pooled 3/4 = 75 % (the mean of the rates would be 50 %).
	if v := m.Total.KPIs.HandlingRate.Value; v == nil || *v != 0.75 || m.Total.KPIs.WorkOrders != 4 || m.Total.Late != 1 {
		t.Errorf("total handling %v of %d, late %d", v, m.Total.KPIs.WorkOrders, m.Total.Late)
	}
	if m.Sites[2].KPIs.HandlingRate.Value != nil || m.Undecodable != 1 {
		t.Errorf("d: %+v; undecodable %d", m.Sites[2].KPIs.HandlingRate, m.Undecodable)
	}
	if _, err := b.Build(context.Background(), "2026-12-01", func(string) bool { return true }, nil); !errors.Is(err, ErrMonth) {
		t.Errorf("bad month: %v", err)
	}
	if _, err := b.Build(context.Background(), "2027-01", func(string) bool { return true }, nil); !errors.Is(err, ErrMonth) {
		t.Errorf("month not begun: %v", err)
	}
	var buf bytes.Buffer
	if err := m.HTML(&buf); err != nil || !strings.Contains(buf.String(), "合计") || !strings.Contains(buf.String(), `data-kpi="handling_rate">75.0%`) {
		t.Errorf("HTML: %v", err)
	}
}

// An SLA breach on the overview is an open order past a deadline now;
// a resolved order, a drill and an order within its deadlines are not.
func TestBreached(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	w := func(s workorder.Status, created, respond, resolve time.Duration) *workorder.WorkOrder {
		return &workorder.WorkOrder{Status: s, Created: now.Add(created), ResponseDue: now.Add(respond), ResolutionDue: now.Add(resolve)}
	}
	accepted := w(workorder.Accepted, -2*time.Hour, -90*time.Minute, time.Hour)
	accepted.AcceptedAt = now.Add(-100 * time.Minute)
	lateAccepted := w(workorder.Accepted, -2*time.Hour, -90*time.Minute, time.Hour)
	lateAccepted.AcceptedAt = now.Add(-80 * time.Minute)
	emergency := w(workorder.Accepted, -10*time.Minute, -5*time.Minute, time.Hour)
	emergency.AcceptedAt, emergency.ArrivalDue = now.Add(-9*time.Minute), now.Add(-7*time.Minute)
	drill := w(workorder.Opened, -2*time.Hour, -time.Hour, -time.Minute)
	drill.Drill = true
	for name, c := range map[string]struct {
		w    *workorder.WorkOrder
		want bool
	}{
		"within its deadlines":          {accepted, false},
		"not accepted by its deadline":  {w(workorder.Opened, -time.Hour, -time.Minute, 3*time.Hour), true},
		"accepted late":                 {lateAccepted, true},
		"past its resolution deadline":  {w(workorder.InProgress, -5*time.Hour, -4*time.Hour, -time.Minute), true},
		"emergency not on site in time": {emergency, true},
		"resolved late (not open)":      {w(workorder.Resolved, -5*time.Hour, -4*time.Hour, -time.Minute), false},
		"a drill":                       {drill, false},
	} {
		if got := Breached(c.w, now); got != c.want {
			t.Errorf("%s: breached %v, want %v", name, got, c.want)
		}
	}
	recs := []replication.Record{rec(t, "a", *w(workorder.Opened, -time.Hour, -time.Minute, time.Hour)), rec(t, "a", *accepted), {Site: "b", Doc: json.RawMessage(`[]`)}}
	if by, bad := Breaches(recs, now); by["a"] != 1 || len(by) != 1 || bad != 1 {
		t.Errorf("breaches %v bad %d", by, bad)
	}
}
