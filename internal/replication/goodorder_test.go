package replication

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules"
)

// fakeGood answers the figure: pump-1 down 1 h on 2026-11-10 (the site's
// calendar day), otherwise nothing; downToday is today's down time.
type fakeGood struct {
	loc       *time.Location
	downToday float64
	calls     int
}

func (f *fakeGood) GoodOrder(_ context.Context, from, _ time.Time) (*rules.GoodOrder, error) {
	f.calls++
	g := &rules.GoodOrder{Kinds: map[string]float64{}}
	switch from.In(f.loc).Format("2006-01-02") {
	case "2026-11-10":
		g.Assets = []rules.AssetFaults{{Asset: "pump-1", Kind: "pump_room", Down: 3600}}
	case "2026-11-12":
		g.Assets = []rules.AssetFaults{{Asset: "pump-1", Kind: "pump_room", Down: f.downToday}}
	}
	return g, nil
}

type sliceOutbox struct {
	Outbox
	events []Event
}

func (o *sliceOutbox) Append(_ context.Context, e *Event) error {
	e.Seq = int64(len(o.events) + 1)
	o.events = append(o.events, *e)
	return nil
}

// A site sends each day's asset-time and down time (days at its
// calendar's midnight), a closed day again only when it changed, today
// on every pass.
func TestGoodOrderReporterSendsDays(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 11, 12, 6, 0, 0, 0, loc)
	src := &fakeGood{loc: loc, downToday: 600}
	out := &sliceOutbox{}
	kicks := 0
	assets := []collectors.Asset{{ID: "pump-1", Kind: "pump_room"}, {ID: "lift-1", Kind: "elevator"}}
	r := NewGoodOrderReporter("north-1", src, assets, loc, out, func() { kicks++ }, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	r.Days = 3
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(out.events) != 3 || kicks != 1 {
		t.Fatalf("%d events, %d kicks; want 3 days, 1 kick", len(out.events), kicks)
	}
	var d GoodOrderDay
	if err := json.Unmarshal(out.events[0].Doc, &d); err != nil {
		t.Fatal(err)
	}
	e := out.events[0]
	if e.Kind != KindGoodOrder || e.Key != "2026-11-10" || d.Day != "2026-11-10" || !d.From.Equal(time.Date(2026, 11, 10, 0, 0, 0, 0, loc)) ||
		d.AssetSeconds != 2*86400 || d.DownSeconds != 3600 || d.Kinds["pump_room"] != (GoodOrderTime{86400, 3600}) || d.Kinds["elevator"] != (GoodOrderTime{86400, 0}) {
		t.Errorf("day 10: %s %s %+v", e.Kind, e.Key, d)
	}
	if err := json.Unmarshal(out.events[2].Doc, &d); err != nil || d.AssetSeconds != 2*6*3600 || d.DownSeconds != 600 || !out.events[2].At.Equal(now) {
		t.Errorf("today: %+v at %s", d, out.events[2].At)
	}
	// An hour later: the closed days unchanged are not sent again; today is.
	now = now.Add(time.Hour)
	src.downToday = 1200
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(out.events) != 4 || out.events[3].Key != "2026-11-12" {
		t.Fatalf("second pass sent %d events; want today's only", len(out.events)-3)
	}
	if err := json.Unmarshal(out.events[3].Doc, &d); err != nil || d.DownSeconds != 1200 || d.AssetSeconds != 2*7*3600 {
		t.Errorf("today again: %+v", d)
	}
}
