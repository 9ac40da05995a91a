package centerkpi

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/rules/workorder"
)

// benchOrders is sites × n work orders as the sites replicate them: a
// month of orders created every few hours, resolved and called back,
// some late, with descriptions and a call-back like real ones.
func benchOrders(b *testing.B, sites, n int, from time.Time, open bool) []replication.Record {
	out := make([]replication.Record, 0, sites*n)
	for s := range sites {
		for i := range n {
			created := from.Add(time.Duration(i%700) * time.Hour)
			w := workorder.WorkOrder{ID: int64(i + 1), Type: workorder.Repair, Category: "plumbing", Priority: "medium", Location: "3栋2单元",
				Description: "卫生间漏水，楼下天花板渗水，请尽快安排维修", Status: workorder.CallbackDone, Source: "manual", Channel: "phone",
				Created: created, ResponseDue: created.Add(time.Hour), AcceptedAt: created.Add(20 * time.Minute), ResolutionDue: created.Add(4 * time.Hour),
				ResolvedAt: created.Add(time.Duration(2+i%4) * time.Hour), CallbackDue: created.Add(28 * time.Hour), Version: 6, Updated: created.Add(26 * time.Hour),
				Callbacks: []workorder.Callback{{At: created.Add(26 * time.Hour), By: "li.na", Outcome: workorder.Satisfied}}}
			if open {
				w.Status, w.ResolvedAt, w.Callbacks = workorder.InProgress, time.Time{}, nil
			}
			doc, err := json.Marshal(w)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, replication.Record{Site: fmt.Sprintf("site-%03d", s), Kind: replication.KindWorkOrder, Key: fmt.Sprint(i + 1), Doc: doc})
		}
	}
	return out
}

// The overview's SLA breaches: every open order decoded on each
// GET /api/v1/sites (100 sites × 50 open orders).
func BenchmarkBreaches(b *testing.B) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	recs := benchOrders(b, 100, 50, now.Add(-30*24*time.Hour), true)
	b.ResetTimer()
	for b.Loop() {
		if by, _ := Breaches(recs, now); len(by) == 0 {
			b.Fatal("no breaches")
		}
	}
}

// A month at 100 sites × 300 orders: decoding and the figures, per
// request (the database read not included).
func BenchmarkMonth(b *testing.B) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, loc)
	src := records(benchOrders(b, 100, 300, from, false))
	bl := New(allOf(src), Config{Location: loc}, func() time.Time { return from.AddDate(0, 1, 3) })
	b.ResetTimer()
	for b.Loop() {
		if _, err := bl.Build(context.Background(), "2026-11", func(string) bool { return true }, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// allOf returns every record (the store filters by month; here all are in it).
type allOf []replication.Record

func (a allOf) WorkOrdersCreated(context.Context, time.Time, time.Time) ([]replication.Record, error) {
	return a, nil
}
