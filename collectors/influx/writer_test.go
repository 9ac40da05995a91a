package influx

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/testenv"
)

var testAssets = []collectors.Asset{
	{ID: "pump-1", Kind: collectors.KindPumpRoom, Building: "B1", Floor: "B1"},
	{ID: "pump-2", Kind: collectors.KindPumpRoom, Building: "B2", Floor: "B1"},
}

func newWriter(t *testing.T, in *testenv.Influx, dir string) (*Writer, *prometheus.CounterVec) {
	t.Helper()
	reg := prometheus.NewRegistry()
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"stage", "reason"})
	cfg := Config{URL: in.URL, Bucket: in.Bucket(), BatchSize: 500, FlushInterval: 50 * time.Millisecond, Timeout: 2 * time.Second,
		Queue: QueueConfig{Dir: dir, SegmentBytes: 256 << 10, MaxBytes: 64 << 20}}
	w := New(cfg, "test", testAssets, reg, dropped, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w, dropped
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var countRE = regexp.MustCompile(`"values":\[\["[^"]*",(\d+)\]\]`)

func count(t *testing.T, in *testenv.Influx, q string) int {
	t.Helper()
	body := in.Query(t, q)
	m := countRE.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func waitQueueEmpty(t *testing.T, w *Writer, within time.Duration) {
	t.Helper()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	for w.QueueStats().Points > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("disk queue still holds %+v after %s", w.QueueStats(), within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// InfluxDB stopped for a while under load and started again: every point
// is present afterwards, counted exactly, with its original timestamp.
func TestInfluxOutageUnderLoadLosesNothingIntegration(t *testing.T) {
	testenv.Integration(t)
	in := testenv.StartInflux(t)
	w, dropped := newWriter(t, in, t.TempDir())
	defer w.Stop(time.Second)

	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var produced int
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			pts := make([]collectors.Point, 0, 40)
			for j := 0; j < 20; j++ {
				ts := base.Add(time.Duration(i*20+j) * time.Millisecond)
				pts = append(pts,
					collectors.Point{Asset: "pump-1", Field: "pressure", Value: collectors.Float(float64(i)), Time: ts},
					collectors.Point{Asset: "pump-2", Field: "running", Value: collectors.Bool(j%2 == 0), Time: ts})
			}
			if err := w.Enqueue(pts); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			produced += len(pts)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	waitFor(t, "first points in InfluxDB", 10*time.Second, func() bool { return testutil.ToFloat64(w.m.Written) > 0 })
	in.Stop() // outage while points keep coming
	waitFor(t, "points queued on disk during the outage", 10*time.Second, func() bool { return w.QueueStats().Points >= 1000 })
	in.Start()
	<-done
	waitQueueEmpty(t, w, 30*time.Second)

	if produced != 12000 {
		t.Fatalf("produced %d", produced)
	}
	p1 := count(t, in, `SELECT count(pressure) FROM pump_room WHERE asset='pump-1'`)
	p2 := count(t, in, `SELECT count(running) FROM pump_room WHERE asset='pump-2'`)
	if p1+p2 != produced {
		t.Fatalf("InfluxDB holds %d+%d points, produced %d", p1, p2, produced)
	}
	// Original timestamps: the first point is at base, the last at base+5999ms.
	body := in.Query(t, `SELECT first(pressure) FROM pump_room WHERE asset='pump-1'`)
	if want := base.UTC().Format(time.RFC3339); !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(body) {
		t.Fatalf("first point time: want %s in %s", want, body)
	}
	if n := testutil.ToFloat64(w.m.Written); int(n) != produced {
		t.Fatalf("written metric %v, want %d", n, produced)
	}
	if n := testutil.CollectAndCount(dropped); n != 0 {
		t.Fatalf("drops recorded: %d series", n)
	}
}

// A batch with one line InfluxDB rejects (field type conflict, HTTP 400) is
// bisected: the good lines are stored, the bad one is dropped and counted.
func TestRejectedLinesAreDroppedAloneIntegration(t *testing.T) {
	testenv.Integration(t)
	in := testenv.StartInflux(t)
	w, dropped := newWriter(t, in, t.TempDir())
	defer w.Stop(time.Second)
	ts := time.Now().Add(-time.Minute)
	if err := w.Enqueue([]collectors.Point{{Asset: "pump-1", Field: "mode", Value: collectors.Float(1), Time: ts}}); err != nil {
		t.Fatal(err)
	}
	waitQueueEmpty(t, w, 10*time.Second)
	var pts []collectors.Point
	for i := 1; i <= 9; i++ {
		v := collectors.Float(float64(i))
		if i == 5 {
			v = collectors.String("auto") // conflicts with the float field
		}
		pts = append(pts, collectors.Point{Asset: "pump-1", Field: "mode", Value: v, Time: ts.Add(time.Duration(i) * time.Second)})
	}
	if err := w.Enqueue(pts); err != nil {
		t.Fatal(err)
	}
	waitQueueEmpty(t, w, 10*time.Second)
	if n := count(t, in, `SELECT count(mode) FROM pump_room`); n != 9 {
		t.Fatalf("stored %d mode points, want 9 (1 + 8 good)", n)
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues("influx", "rejected")); got != 1 {
		t.Fatalf("rejected drops = %v, want 1", got)
	}
}

// Points queued on disk by a writer that never reached InfluxDB are
// delivered by the next writer on the same queue directory.
func TestQueueSurvivesWriterRestartIntegration(t *testing.T) {
	testenv.Integration(t)
	in := testenv.StartInflux(t)
	dir := t.TempDir()
	in.Stop()
	w, _ := newWriter(t, in, dir)
	ts := time.Now().Add(-time.Minute)
	var pts []collectors.Point
	for i := 0; i < 1234; i++ {
		pts = append(pts, collectors.Point{Asset: "pump-2", Field: "flow", Value: collectors.Float(float64(i)), Time: ts.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := w.Enqueue(pts); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	in.Start()
	w2, _ := newWriter(t, in, dir)
	defer w2.Stop(time.Second)
	waitQueueEmpty(t, w2, 20*time.Second)
	if n := count(t, in, `SELECT count(flow) FROM pump_room`); n != 1234 {
		t.Fatalf("stored %d, want 1234", n)
	}
}
