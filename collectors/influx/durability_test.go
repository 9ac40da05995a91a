package influx

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/collectors/queue"
	"github.com/propgate/gateway/collectors/queue/queuetest"
)

// offlineWriter is a writer whose InfluxDB never answers (nothing listens on
// port 1), so points stay on the disk queue, and whose flush ticker never
// fires within a test: only explicit Flush calls move points to disk.
func offlineWriter(t *testing.T, dir string, fs queue.FS) *Writer {
	t.Helper()
	reg := prometheus.NewRegistry()
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"stage", "reason"})
	cfg := Config{URL: "http://127.0.0.1:1", Bucket: "b", BatchSize: 500, FlushInterval: time.Hour, Timeout: time.Second,
		Queue: QueueConfig{Dir: dir, SegmentBytes: 256 << 10, MaxBytes: 64 << 20}}
	w := New(cfg, "test", testAssets, reg, dropped, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.fs = fs
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

func threePoints() []collectors.Point {
	ts := time.Unix(1_700_000_000, 0)
	return []collectors.Point{
		{Asset: "pump-1", Field: "pressure", Value: collectors.Float(1), Time: ts},
		{Asset: "pump-1", Field: "pressure", Value: collectors.Float(2), Time: ts.Add(time.Second)},
		{Asset: "pump-2", Field: "running", Value: collectors.Bool(true), Time: ts},
	}
}

// queuedPoints opens the queue directory as the next start would.
func queuedPoints(t *testing.T, dir string) int {
	t.Helper()
	q, err := queue.Open(queue.Options{Dir: dir, SegmentBytes: 256 << 10, MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	return q.Stats().Points
}

// Item 16: when Flush returns nil the points are on stable storage: a power
// cut right after it (before any periodic sync) loses none of them. This is
// what lets the MQTT collector send PUBACK after Flush.
func TestFlushMakesPointsDurableBeforeReturning(t *testing.T) {
	dir, fs := t.TempDir(), queuetest.New()
	w := offlineWriter(t, dir, fs)
	defer w.Stop(0)
	if err := w.Enqueue(threePoints()); err != nil {
		t.Fatal(err)
	}
	files0, _ := fs.Syncs()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if files, _ := fs.Syncs(); files-files0 != 1 {
		t.Fatalf("Flush cost %d fdatasyncs, want exactly 1 (group commit)", files-files0)
	}
	if err := fs.PowerCut(true); err != nil {
		t.Fatal(err)
	}
	if n := queuedPoints(t, dir); n != 3 {
		t.Fatalf("after a power cut the queue holds %d points, want the 3 flushed", n)
	}
}

// Item 16 and issue item 9: a flush that fails (disk full) returns the error
// and keeps the points; the next Flush stores them, once.
func TestFlushErrorKeepsPointsForTheNextFlush(t *testing.T) {
	dir, fs := t.TempDir(), queuetest.New()
	w := offlineWriter(t, dir, fs)
	if err := w.Enqueue(threePoints()); err != nil {
		t.Fatal(err)
	}
	fs.SetWriteFault(func(_ string, n int) (int, error) { return n / 3, syscall.ENOSPC })
	if err := w.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk = %v, want ENOSPC", err)
	}
	fs.SetWriteFault(nil)
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush after the disk recovered: %v", err)
	}
	if err := w.Stop(0); err != nil {
		t.Fatal(err)
	}
	if n := queuedPoints(t, dir); n != 3 {
		t.Fatalf("queue holds %d points, want 3 (kept across the failed flush, stored once)", n)
	}
}

// A failed fdatasync is returned by Flush, never swallowed.
func TestFlushReturnsSyncError(t *testing.T) {
	fs := queuetest.New()
	w := offlineWriter(t, t.TempDir(), fs)
	defer w.Stop(0)
	if err := w.Enqueue(threePoints()); err != nil {
		t.Fatal(err)
	}
	fs.SetSyncError(syscall.EIO)
	if err := w.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Flush with a failing fdatasync = %v, want EIO", err)
	}
	fs.SetSyncError(nil)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Stop is safe before Start, after a Start that failed half-way (queue open,
// metrics refused), and twice; Enqueue and Flush then refuse with ErrStopped.
func TestStopAfterPartialStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_influx_points_written_total", Help: "taken"}))
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"stage", "reason"})
	dir := t.TempDir()
	cfg := Config{URL: "http://127.0.0.1:1", Bucket: "b", Queue: QueueConfig{Dir: dir}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	if err := New(cfg, "test", testAssets, reg, dropped, log).Stop(time.Second); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	w := New(cfg, "test", testAssets, reg, dropped, log)
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded with a metric name already registered")
	}
	if err := w.Stop(time.Second); err != nil {
		t.Fatalf("Stop after a partial Start: %v", err)
	}
	if err := w.Stop(time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := w.Enqueue(threePoints()); !errors.Is(err, ErrStopped) {
		t.Fatalf("Enqueue after Stop = %v", err)
	}
	if err := w.Flush(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Flush after Stop = %v", err)
	}
}
