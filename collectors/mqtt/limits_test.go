package mqtt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
)

// memOut is a collectors.Output keeping points in memory.
type memOut struct {
	mu  sync.Mutex
	pts []collectors.Point
}

func (o *memOut) Enqueue(p []collectors.Point) error {
	o.mu.Lock()
	o.pts = append(o.pts, p...)
	o.mu.Unlock()
	return nil
}
func (o *memOut) Flush() error { return nil }

// Field names and asset ids captured from topic levels are bounded per
// subscription: 100,000 invented topics used to leave 100,000 fields on one
// asset in the state cache, every snapshot and InfluxDB.
func TestTopicDerivedNamesAreBounded(t *testing.T) {
	var conn *fakeConn
	factory := func(o ConnOptions) Conn { conn = &fakeConn{opts: o}; return conn }
	m := NewMetrics(prometheus.NewRegistry())
	const sub = "site/{asset}/{metric}"
	cfg := Config{Broker: "tcp://127.0.0.1:1", ClientID: "t", Subs: []Subscription{
		{Topic: sub, Asset: "{asset}", Format: FormatValue, MaxAssets: 3, MaxFieldsPerAsset: 8, Fields: []Field{{Name: "{metric}"}}},
	}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := New(cfg, factory, m, log)
	var assets []collectors.Asset
	for _, id := range []string{"pump", "a1", "a2", "a3", "a4"} {
		assets = append(assets, collectors.Asset{ID: id})
	}
	out := &memOut{}
	state := collectors.NewState(assets)
	pm := collectors.NewMetrics(prometheus.NewRegistry())
	pipe := collectors.NewPipeline(state, out, pm, log)
	if err := c.Start(context.Background(), pipe); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	const invented = 100000
	for i := 0; i < invented; i++ {
		conn.deliver(&fakeMsg{topic: fmt.Sprintf("site/pump/m%d", i), payload: "1", qos: 1})
	}
	// Known fields keep updating.
	conn.deliver(&fakeMsg{topic: "site/pump/m3", payload: "42", qos: 1})
	snap := state.Snapshot()
	if n := len(snap[0].Fields); n != 8 {
		t.Fatalf("pump holds %d fields, want the bound 8", n)
	}
	if f, _ := state.Get("pump", "m3"); f.Value.F != 42 {
		t.Fatalf("known field not updated: %+v", f)
	}
	if n := testutil.ToFloat64(m.Refused.WithLabelValues(sub, ReasonTooManyFields)); n != invented-8 {
		t.Fatalf("too_many_fields refused %v, want %d", n, invented-8)
	}
	// Assets: pump plus two more fit, the fourth and fifth are refused.
	for _, a := range []string{"a1", "a2", "a3", "a4"} {
		conn.deliver(&fakeMsg{topic: "site/" + a + "/x", payload: "1", qos: 1})
	}
	if n := testutil.ToFloat64(m.Refused.WithLabelValues(sub, ReasonTooManyAssets)); n != 2 {
		t.Fatalf("too_many_assets refused %v, want 2", n)
	}
	if _, ok := state.Get("a3", "x"); ok {
		t.Fatal("a point beyond max_assets reached the state cache")
	}
	// Invented asset ids do not use up the bound: the pipeline drops them as
	// unknown assets and the limiter does not track them.
	for i := 0; i < 1000; i++ {
		conn.deliver(&fakeMsg{topic: fmt.Sprintf("site/ghost%d/x", i), payload: "1", qos: 1})
	}
	if n := testutil.ToFloat64(m.Refused.WithLabelValues(sub, ReasonTooManyAssets)); n != 2 {
		t.Fatalf("too_many_assets refused %v after undeclared assets, want still 2", n)
	}
	if n := testutil.ToFloat64(pm.Dropped.WithLabelValues("ingest", collectors.ReasonUnknownAsset)); n != 1000 {
		t.Fatalf("unknown_asset drops %v, want 1000", n)
	}
	conn.deliver(&fakeMsg{topic: "site/a1/" + strings.Repeat("x", MaxNameLen+1), payload: "1", qos: 1})
	if n := testutil.ToFloat64(m.Refused.WithLabelValues(sub, ReasonNameTooLong)); n != 1 {
		t.Fatalf("name_too_long refused %v, want 1", n)
	}
	c.mu.Lock()
	seen := len(c.seen["pump"])
	c.mu.Unlock()
	if seen > 8 {
		t.Fatalf("collector remembers %d fields for pump", seen)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.pts) != 8+1+2 {
		t.Fatalf("%d points reached the output, want 11", len(out.pts))
	}
}

// Subscriptions whose names are all fixed by the config are not tracked.
func TestLimiterSkipsFixedNames(t *testing.T) {
	l := newLimiter(&Subscription{Asset: "pump", Fields: []Field{{Name: "pressure"}}, MaxAssets: 1, MaxFieldsPerAsset: 1}, nil)
	pts := []collectors.Point{{Asset: "pump", Field: "pressure"}, {Asset: "pump", Field: "pressure"}}
	kept, refused := l.admit(pts)
	if len(kept) != 2 || refused != nil || len(l.assets) != 0 {
		t.Fatalf("kept %d, refused %v, tracked %d", len(kept), refused, len(l.assets))
	}
}
