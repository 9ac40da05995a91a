package collectors

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type memOut struct {
	pts     []Point
	fail    error
	flushes int
}

func (m *memOut) Enqueue(p []Point) error {
	if m.fail != nil {
		return m.fail
	}
	m.pts = append(m.pts, p...)
	return nil
}
func (m *memOut) Flush() error { m.flushes++; return nil }

func newPipeline(t *testing.T) (*Pipeline, *memOut, *Metrics) {
	state := NewState([]Asset{
		{ID: "pump", Kind: KindPumpRoom, StaleAfter: 10 * time.Second},
		{ID: "lift", Kind: KindElevator},
	})
	out := &memOut{}
	m := NewMetrics(prometheus.NewRegistry())
	return NewPipeline(state, out, m, slog.New(slog.NewTextHandler(io.Discard, nil))), out, m
}

func TestPipelineFillsKindAndDropsUnknownAssets(t *testing.T) {
	p, out, m := newPipeline(t)
	t0 := time.Unix(1000, 0)
	p.Publish("test", []Point{
		{Asset: "pump", Field: "pressure", Value: Float(0.3), Time: t0},
		{Asset: "ghost", Field: "x", Value: Float(1), Time: t0},
		{Asset: "lift", Field: "floor", Value: Int(3), Time: t0},
	})
	if len(out.pts) != 2 || out.pts[0].Kind != KindPumpRoom || out.pts[1].Kind != KindElevator {
		t.Fatalf("output got %v", out.pts)
	}
	if n := testutil.ToFloat64(m.Dropped.WithLabelValues("ingest", "unknown_asset")); n != 1 {
		t.Fatalf("unknown_asset drops = %v", n)
	}
	if n := testutil.ToFloat64(m.Collected.WithLabelValues("test")); n != 2 {
		t.Fatalf("collected = %v", n)
	}
	out.fail = errors.New("disk full")
	p.Publish("test", []Point{{Asset: "pump", Field: "pressure", Value: Float(0.3), Time: t0}})
	if n := testutil.ToFloat64(m.Dropped.WithLabelValues("output", "enqueue_failed")); n != 1 {
		t.Fatalf("enqueue_failed drops = %v", n)
	}
}

func TestBadReadKeepsLastValueAndStaleSweep(t *testing.T) {
	p, out, _ := newPipeline(t)
	t0 := time.Unix(1000, 0)
	p.Publish("test", []Point{{Asset: "pump", Field: "pressure", Value: Float(0.3), Quality: QualityGood, Time: t0}})
	p.Publish("test", []Point{{Asset: "pump", Field: "pressure", Quality: QualityBad, Time: t0.Add(time.Second)}})
	f, _ := p.State().Get("pump", "pressure")
	if f.Quality != QualityBad || f.Value.F != 0.3 {
		t.Fatalf("after a bad read: %+v", f)
	}
	p.Publish("test", []Point{{Asset: "pump", Field: "pressure", Value: Float(0.31), Quality: QualityGood, Time: t0.Add(2 * time.Second)}})
	p.Publish("test", []Point{{Asset: "lift", Field: "floor", Value: Int(1), Time: t0}}) // lift never goes stale

	if n := p.SweepStale(t0.Add(12 * time.Second)); n != 0 {
		t.Fatalf("swept %d fields 10s after the last reading; stale_after is 10s", n)
	}
	before := len(out.pts)
	if n := p.SweepStale(t0.Add(12*time.Second + time.Millisecond)); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if got := out.pts[before]; got.Quality != QualityStale || got.Asset != "pump" || got.Field != "pressure" {
		t.Fatalf("stale point %v", got)
	}
	if f, _ := p.State().Get("pump", "pressure"); f.Quality != QualityStale || f.Value.F != 0.31 {
		t.Fatalf("state after sweep %+v", f)
	}
	if n := p.SweepStale(t0.Add(time.Minute)); n != 0 {
		t.Fatalf("a stale field was swept again")
	}
}

func TestRateLimitedLog(t *testing.T) {
	var buf testWriter
	r := NewRateLimitedLog(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	now := time.Unix(0, 0)
	r.now = func() time.Time { return now }
	for i := 0; i < 100; i++ {
		r.Warn("k", "bad payload")
	}
	now = now.Add(61 * time.Second)
	r.Warn("k", "bad payload")
	if buf.lines != 2 {
		t.Fatalf("%d log lines for 101 events, want 2", buf.lines)
	}
}

type testWriter struct{ lines int }

func (w *testWriter) Write(p []byte) (int, error) { w.lines++; return len(p), nil }

// Field names can come from outside input (MQTT topic levels): the cache
// holds at most MaxFields per asset, known fields keep updating, and every
// refused point is counted by reason.
func TestStateBoundsFieldsPerAsset(t *testing.T) {
	p, out, m := newPipeline(t)
	p.State().SetMaxFields(8)
	t0 := time.Unix(1000, 0)
	for i := 0; i < 100000; i++ {
		p.Publish("test", []Point{{Asset: "pump", Field: fmt.Sprintf("f%d", i), Value: Float(1), Time: t0}})
	}
	snap := p.State().Snapshot()
	if n := len(snap[0].Fields); n != 8 {
		t.Fatalf("pump holds %d fields, want the bound 8", n)
	}
	if n := testutil.ToFloat64(m.Dropped.WithLabelValues("ingest", ReasonTooManyFields)); n != 100000-8 {
		t.Fatalf("too_many_fields drops = %v, want %d", n, 100000-8)
	}
	if len(out.pts) != 8 {
		t.Fatalf("%d points reached the output, want only the 8 accepted", len(out.pts))
	}
	// A field the asset already holds still updates; another asset is unaffected.
	p.Publish("test", []Point{{Asset: "pump", Field: "f3", Value: Float(2), Time: t0}, {Asset: "lift", Field: "floor", Value: Int(4), Time: t0}})
	if f, _ := p.State().Get("pump", "f3"); f.Value.F != 2 {
		t.Fatalf("known field not updated: %+v", f)
	}
	if f, ok := p.State().Get("lift", "floor"); !ok || f.Value.I != 4 {
		t.Fatalf("lift.floor = %+v", f)
	}
}

func TestStateDefaultFieldBound(t *testing.T) {
	s := NewState([]Asset{{ID: "pump"}})
	pts := make([]Point, DefaultMaxFields+5)
	for i := range pts {
		pts[i] = Point{Asset: "pump", Field: fmt.Sprintf("f%d", i), Value: Float(1)}
	}
	accepted, rejected := s.Apply(pts)
	if accepted != DefaultMaxFields || len(rejected) != 5 || rejected[0] != (Rejected{DefaultMaxFields, ReasonTooManyFields}) {
		t.Fatalf("accepted %d, rejected %v", accepted, rejected)
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("泵房压力", 4); got != "泵…" {
		t.Fatalf("Truncate = %q", got)
	}
	if got := Truncate("abc", 4); got != "abc" {
		t.Fatalf("Truncate = %q", got)
	}
}

// A reload renames and moves declared assets, keeping their fields; it
// neither adds assets nor changes a kind.
func TestRelabelKeepsFields(t *testing.T) {
	s := NewState([]Asset{{ID: "p1", Kind: "pump_room", Name: "Pump room", Building: "B3"}})
	s.Apply([]Point{{Asset: "p1", Field: "pressure", Value: Float(0.3), Quality: QualityGood}})
	n := s.Relabel([]Asset{{ID: "p1", Kind: "pump_room", Name: "B3 pump room", Building: "B3", Floor: "B2"}, {ID: "p2", Kind: "pump_room"}})
	a, _ := s.Asset("p1")
	if n != 1 || a.Name != "B3 pump room" || a.Floor != "B2" {
		t.Fatalf("relabel: %d %+v", n, a)
	}
	if _, ok := s.Get("p1", "pressure"); !ok {
		t.Fatal("the field was lost")
	}
	if _, ok := s.Asset("p2"); ok {
		t.Fatal("a reload added an asset to the live state")
	}
	if s.Relabel([]Asset{{ID: "p1", Kind: "elevator"}}) != 0 {
		t.Fatal("a kind change was applied")
	}
}
