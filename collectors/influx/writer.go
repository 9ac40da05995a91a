// Package influx writes points to InfluxDB (2.x, or 1.8 through its
// 2.x-compatible API) through a durable on-disk queue: every batch is
// appended to the queue first and acknowledged only once InfluxDB took it,
// so an InfluxDB outage or a gateway crash loses nothing already accepted.
package influx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/collectors/queue"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Config is the influxdb: section.
type Config struct {
	URL    string `yaml:"url"`
	Token  string `yaml:"token"`  // 2.x token; for 1.8 "user:password" or empty
	Org    string `yaml:"org"`    // 2.x only
	Bucket string `yaml:"bucket"` // 2.x bucket, or "database/retention-policy" for 1.8

	BatchSize     int           `yaml:"batch_size"`     // points per write; default 5000
	FlushInterval time.Duration `yaml:"flush_interval"` // default 1s
	Timeout       time.Duration `yaml:"timeout"`        // per HTTP write; default 10s

	Queue QueueConfig `yaml:"queue"`
}

// QueueConfig bounds the on-disk queue.
type QueueConfig struct {
	Dir          string        `yaml:"dir"`           // default data/queue
	MaxBytes     ByteSize      `yaml:"max_bytes"`     // default 1GiB
	MaxAge       time.Duration `yaml:"max_age"`       // default 0: keep until delivered
	SegmentBytes ByteSize      `yaml:"segment_bytes"` // default 8MiB
	// SyncInterval is kept so existing configs load; it has no effect: every
	// flush (each FlushInterval, each MQTT ack batch, each full batch
	// appended by Flush) fdatasyncs the queue before it returns.
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Queue.Dir == "" {
		c.Queue.Dir = "data/queue"
	}
	if c.Queue.MaxBytes == 0 {
		c.Queue.MaxBytes = 1 << 30
	}
	if c.Queue.SegmentBytes == 0 {
		c.Queue.SegmentBytes = 8 << 20
	}
}

// Validate checks the config without touching the network.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfgerr.Errorf("url", "%q is not an http(s) URL; fix: e.g. http://127.0.0.1:8086", c.URL)
	}
	if c.Bucket == "" {
		return cfgerr.Errorf("bucket", `is required; fix: the 2.x bucket name, or "database/autogen" for InfluxDB 1.8`)
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		return cfgerr.Errorf("batch_size", "%d is out of range; fix: 1..100000", c.BatchSize)
	}
	if c.Queue.MaxBytes < 2*c.Queue.SegmentBytes {
		return cfgerr.Errorf("queue.max_bytes", "%d must be at least twice queue.segment_bytes (%d)", c.Queue.MaxBytes, c.Queue.SegmentBytes)
	}
	return nil
}

// WriterMetrics are the writer's series.
type WriterMetrics struct {
	Written      prometheus.Counter
	WriteErrors  *prometheus.CounterVec
	QueuedPts    prometheus.GaugeFunc
	QueuedBytes  prometheus.GaugeFunc
	WriteLat     prometheus.Histogram
	DropRecords  *prometheus.CounterVec // queue records dropped, by reason
	DropBytes    *prometheus.CounterVec // queue bytes dropped, by reason (a zero-filled tail holds bytes but no known records)
	CursorResets prometheus.Counter     // damaged read cursor: delivery restarted earlier (duplicates)
	Buffered     prometheus.GaugeFunc   // points accepted but not yet appended to the queue (disk trouble)
}

// Writer is the collectors.Output that stores points in InfluxDB.
type Writer struct {
	cfg     Config
	series  map[string]string
	dropped *prometheus.CounterVec
	reg     prometheus.Registerer
	log     *slog.Logger
	limiter *collectors.RateLimitedLog

	m      WriterMetrics
	client influxdb2.Client
	api    api.WriteAPIBlocking
	q      *queue.Queue

	fs queue.FS // nil: the real file system; tests inject faults

	mu      sync.Mutex // guards buf, n, started and stopped
	buf     []byte
	n       int // points in buf
	started bool
	stopped bool

	draining   atomic.Bool // Stop: send what is queued without lingering
	cancelSend context.CancelFunc
	cancelTick context.CancelFunc
	wg         sync.WaitGroup
	sendDone   chan struct{}
}

// ErrStopped is returned by Enqueue and Flush when the writer is not running.
var ErrStopped = errors.New("influx: writer is not running")

// maxBufferedBatches bounds the points held in memory while the disk queue
// refuses appends (disk full): beyond it Enqueue refuses new points.
const maxBufferedBatches = 4

var _ collectors.Output = (*Writer)(nil)

// New builds a writer; it does nothing until Start.
func New(cfg Config, site string, assets []collectors.Asset, reg prometheus.Registerer, dropped *prometheus.CounterVec, log *slog.Logger) *Writer {
	cfg.SetDefaults()
	return &Writer{cfg: cfg, series: seriesKeys(site, assets), reg: reg, dropped: dropped, log: log,
		limiter: collectors.NewRateLimitedLog(log, 30*time.Second)}
}

// Validate checks the configuration.
func (w *Writer) Validate() error { return w.cfg.Validate() }

// Start opens the queue (replaying whatever a previous run left) and starts
// the flush and send loops. After an error, Stop releases what was set up.
func (w *Writer) Start(ctx context.Context) error {
	w.m = WriterMetrics{
		Written: prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_influx_points_written_total", Help: "Points InfluxDB accepted."}),
		WriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_influx_write_errors_total",
			Help: "Failed InfluxDB writes by HTTP status (0: no answer)."}, []string{"status"}),
		QueuedPts: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_influx_queue_points", Help: "Points on the disk queue, not yet in InfluxDB."},
			func() float64 { return float64(w.QueueStats().Points) }),
		QueuedBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_influx_queue_bytes", Help: "Bytes on the disk queue."},
			func() float64 { return float64(w.QueueStats().Bytes) }),
		WriteLat: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_influx_write_seconds", Help: "InfluxDB write latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
		DropRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_influx_queue_dropped_records_total",
			Help: "Records (batches) dropped from the disk queue, by reason."}, []string{"reason"}),
		DropBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_influx_queue_dropped_bytes_total",
			Help: "Bytes dropped from the disk queue, by reason."}, []string{"reason"}),
		CursorResets: prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_influx_queue_cursor_resets_total",
			Help: "Times the queue's read position was unusable and delivery restarted earlier (points sent twice, absorbed by InfluxDB)."}),
		Buffered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_influx_buffered_points",
			Help: "Points accepted but not yet on the disk queue (grows while the disk refuses writes)."},
			func() float64 { w.mu.Lock(); defer w.mu.Unlock(); return float64(w.n) }),
	}
	q, err := queue.Open(queue.Options{
		Dir: w.cfg.Queue.Dir, SegmentBytes: int64(w.cfg.Queue.SegmentBytes), MaxBytes: int64(w.cfg.Queue.MaxBytes),
		MaxAge: w.cfg.Queue.MaxAge, FS: w.fs,
		OnDrop: func(r queue.DropReason, records, points int, bytes int64) {
			w.dropped.WithLabelValues("queue", string(r)).Add(float64(points))
			w.m.DropRecords.WithLabelValues(string(r)).Add(float64(records))
			w.m.DropBytes.WithLabelValues(string(r)).Add(float64(bytes))
			w.log.Error("points dropped from the disk queue", "reason", r, "records", records, "points", points, "bytes", bytes)
		},
		OnCursorReset: func(err error) {
			w.m.CursorResets.Inc()
			w.log.Warn("disk queue read position unusable; delivering again from an earlier position (InfluxDB absorbs the duplicates)", "err", err)
		},
	})
	if err != nil {
		return fmt.Errorf("influx: %w", err)
	}
	w.mu.Lock()
	w.q = q
	w.mu.Unlock()
	if st := q.Stats(); st.Points > 0 {
		w.log.Info("replaying points queued by a previous run", "points", st.Points, "bytes", st.Bytes)
	}
	for _, c := range []prometheus.Collector{w.m.Written, w.m.WriteErrors, w.m.QueuedPts, w.m.QueuedBytes, w.m.WriteLat,
		w.m.DropRecords, w.m.DropBytes, w.m.CursorResets, w.m.Buffered} {
		if err := w.reg.Register(c); err != nil {
			return fmt.Errorf("influx: register metrics: %w", err)
		}
	}
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(w.cfg.Timeout / time.Second))
	w.client = influxdb2.NewClientWithOptions(w.cfg.URL, w.cfg.Token, opts)
	w.api = w.client.WriteAPIBlocking(w.cfg.Org, w.cfg.Bucket)

	sendCtx, cancelSend := context.WithCancel(context.Background())
	tickCtx, cancelTick := context.WithCancel(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		cancelSend()
		cancelTick()
		return ErrStopped
	}
	w.buf = make([]byte, 0, w.cfg.BatchSize*64)
	w.cancelSend, w.cancelTick = cancelSend, cancelTick
	w.sendDone = make(chan struct{})
	w.started = true
	w.wg.Add(1)
	go w.tick(tickCtx)
	go func() { defer close(w.sendDone); w.send(sendCtx) }()
	return nil
}

// Enqueue encodes points into the current batch; a full batch is appended
// to the disk queue (durable at the next Flush). Points it accepts are kept
// until they are on the queue: if the disk refuses the append they stay
// buffered and the next Flush retries them (and reports the error). It
// refuses points, with an error, only when not running or when the buffer
// already holds several batches the disk would not take.
func (w *Writer) Enqueue(pts []collectors.Point) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started || w.stopped {
		return ErrStopped
	}
	if w.n >= maxBufferedBatches*w.cfg.BatchSize {
		return fmt.Errorf("influx: %d points waiting for the disk queue, refusing more", w.n)
	}
	var written, skipped int
	w.buf, written, skipped = encode(w.buf, w.series, pts)
	if skipped > 0 {
		w.dropped.WithLabelValues("influx", "no_value").Add(float64(skipped))
	}
	w.n += written
	if w.n >= w.cfg.BatchSize {
		if err := w.appendLocked(); err != nil {
			// Accepted and kept: the next Flush retries and reports it.
			w.limiter.Error("append", "disk queue refused a batch; points kept in memory and retried", "err", err, "buffered_points", w.n)
		}
	}
	return nil
}

// appendLocked moves the buffered batch to the disk queue. On failure the
// batch stays buffered (the queue removed any torn bytes).
func (w *Writer) appendLocked() error {
	if w.n == 0 {
		return nil
	}
	if err := w.q.Append(w.buf, w.n); err != nil {
		return fmt.Errorf("influx: queue: %w", err)
	}
	w.buf, w.n = w.buf[:0], 0
	return nil
}

// Flush makes every point enqueued before the call durable: the buffered
// batch is appended to the disk queue and the queue is fdatasynced once
// (group commit). When it returns nil, a power cut loses none of those
// points, so the caller may acknowledge their source (MQTT PUBACK). On
// error nothing is lost from memory and a later Flush retries.
func (w *Writer) Flush() error {
	w.mu.Lock()
	if !w.started || w.stopped {
		w.mu.Unlock()
		return ErrStopped
	}
	err := w.appendLocked()
	q := w.q
	w.mu.Unlock()
	if err != nil {
		return err
	}
	// Outside w.mu: Enqueue goes on during the fdatasync; concurrent
	// Flush calls share one fdatasync.
	if err := q.Sync(); err != nil {
		return fmt.Errorf("influx: queue: %w", err)
	}
	return nil
}

func (w *Writer) tick(ctx context.Context) {
	defer w.wg.Done()
	flush := time.NewTicker(w.cfg.FlushInterval)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			if err := w.Flush(); err != nil && !errors.Is(err, ErrStopped) {
				w.limiter.Error("flush", "flush to disk queue failed; points kept in memory and retried", "err", err)
			}
		}
	}
}

// send delivers queued records in order, forever, until ctx ends.
func (w *Writer) send(ctx context.Context) {
	backoff := 100 * time.Millisecond
	var lingerFrom time.Time
	for {
		// Linger until a full batch is queued or the flush interval has
		// passed since the queue became non-empty: few, large writes. The
		// decision uses the queue's in-memory counters, not its files.
		if st := w.q.Stats(); st.Points == 0 {
			lingerFrom = time.Time{}
			select {
			case <-ctx.Done():
				return
			case <-w.q.Notify():
			case <-time.After(time.Second):
			}
			continue
		} else if st.Points < w.cfg.BatchSize && !w.draining.Load() {
			if lingerFrom.IsZero() {
				lingerFrom = time.Now()
			}
			if wait := time.Until(lingerFrom.Add(w.cfg.FlushInterval)); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-w.q.Notify():
				case <-time.After(wait):
				}
				continue
			}
		}
		lingerFrom = time.Time{}
		rec, ok, err := w.q.PeekBatch(w.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.limiter.Error("peek", "reading the disk queue failed", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if !ok {
			continue
		}
		// The batch is the queue's buffer until the next PeekBatch: viewed as
		// a string without a copy, it must not be kept past deliver.
		retry, err := w.deliver(ctx, unsafe.String(unsafe.SliceData(rec.Data), len(rec.Data)), rec.Count)
		if retry {
			if ctx.Err() != nil {
				return
			}
			var herr *ihttp.Error
			if errors.As(err, &herr) && herr.RetryAfter > 0 {
				backoff = time.Duration(herr.RetryAfter) * time.Second
			}
			w.limiter.Warn("write", "InfluxDB write failed; points stay on the disk queue and will be retried",
				"err", err, "retry_in", backoff, "queued_points", w.q.Stats().Points)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if err := w.q.Ack(); err != nil {
			w.limiter.Error("ack", "acknowledging a delivered batch failed", "err", err)
		}
	}
}

// deliver writes one batch. Rejected data (400, 413, 422) is bisected so that
// only the offending lines are dropped; anything else is retried as a whole.
func (w *Writer) deliver(ctx context.Context, body string, count int) (retry bool, err error) {
	start := time.Now()
	err = w.api.WriteRecord(ctx, strings.TrimSuffix(body, "\n"))
	if err == nil {
		w.m.WriteLat.Observe(time.Since(start).Seconds())
		w.m.Written.Add(float64(count))
		return false, nil
	}
	status := 0
	var herr *ihttp.Error
	if errors.As(err, &herr) {
		status = herr.StatusCode
	}
	w.m.WriteErrors.WithLabelValues(fmt.Sprint(status)).Inc()
	if status != 400 && status != 413 && status != 422 {
		return true, err
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) == 1 {
		w.dropped.WithLabelValues("influx", "rejected").Add(float64(count))
		w.limiter.Error("rejected", "InfluxDB rejected a line; dropped", "status", status, "err", err, "line", strings.Clone(lines[0]))
		return false, nil
	}
	half := len(lines) / 2
	for _, part := range [][]string{lines[:half], lines[half:]} {
		n := 0
		for _, l := range part {
			n += countFields(l)
		}
		if r, e := w.deliver(ctx, strings.Join(part, "\n"), n); r {
			// Part of the batch may already be stored; resending it is
			// harmless because InfluxDB overwrites identical points.
			return true, e
		}
	}
	return false, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stop persists the pending batch (appended and fdatasynced), gives the
// sender up to drain to empty the queue, and closes it; what is left is
// replayed on the next start. A failed flush is returned, never dropped
// silently. It is safe after a failed or partial Start and when called twice.
func (w *Writer) Stop(drain time.Duration) error {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return nil
	}
	w.stopped = true
	started, q := w.started, w.q
	var err error
	if started {
		if err = w.appendLocked(); err != nil {
			w.dropped.WithLabelValues("queue", "append_failed").Add(float64(w.n))
			w.log.Error("points lost at shutdown: the disk queue refused them", "points", w.n, "err", err)
		}
	}
	w.mu.Unlock()
	if q == nil {
		return nil // Start failed before opening the queue
	}
	if started {
		w.cancelTick()
		w.wg.Wait()
		w.draining.Store(true)
		deadline := time.Now().Add(drain)
		for q.Stats().Points > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		w.cancelSend()
		<-w.sendDone
	}
	if w.client != nil {
		w.client.Close()
	}
	if st := q.Stats(); st.Points > 0 {
		w.log.Info("points kept on the disk queue for the next start", "points", st.Points)
	}
	return errors.Join(err, q.Close()) // Close fdatasyncs the head
}

// QueueStats reports the disk queue (zero before Start).
func (w *Writer) QueueStats() queue.Stats {
	w.mu.Lock()
	q := w.q
	w.mu.Unlock()
	if q == nil {
		return queue.Stats{}
	}
	return q.Stats()
}
