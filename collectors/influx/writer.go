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
	SyncInterval time.Duration `yaml:"sync_interval"` // fsync period; default 1s
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
	if c.Queue.SyncInterval == 0 {
		c.Queue.SyncInterval = time.Second
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
	Written     prometheus.Counter
	WriteErrors *prometheus.CounterVec
	QueuedPts   prometheus.GaugeFunc
	QueuedBytes prometheus.GaugeFunc
	WriteLat    prometheus.Histogram
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

	mu      sync.Mutex // guards buf and n
	buf     []byte
	n       int // points in buf
	stopped bool

	draining   atomic.Bool // Stop: send what is queued without lingering
	cancelSend context.CancelFunc
	cancelTick context.CancelFunc
	wg         sync.WaitGroup
	sendDone   chan struct{}
}

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
// the flush and send loops.
func (w *Writer) Start(ctx context.Context) error {
	q, err := queue.Open(queue.Options{
		Dir: w.cfg.Queue.Dir, SegmentBytes: int64(w.cfg.Queue.SegmentBytes), MaxBytes: int64(w.cfg.Queue.MaxBytes),
		MaxAge: w.cfg.Queue.MaxAge,
		OnDrop: func(r queue.DropReason, records, points int) {
			w.dropped.WithLabelValues("queue", string(r)).Add(float64(points))
			w.log.Error("points dropped from the disk queue", "reason", r, "records", records, "points", points)
		},
	})
	if err != nil {
		return fmt.Errorf("influx: %w", err)
	}
	w.q = q
	if st := q.Stats(); st.Points > 0 {
		w.log.Info("replaying points queued by a previous run", "points", st.Points, "bytes", st.Bytes)
	}
	w.m = WriterMetrics{
		Written: prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_influx_points_written_total", Help: "Points InfluxDB accepted."}),
		WriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_influx_write_errors_total",
			Help: "Failed InfluxDB writes by HTTP status (0: no answer)."}, []string{"status"}),
		QueuedPts: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_influx_queue_points", Help: "Points on the disk queue, not yet in InfluxDB."},
			func() float64 { return float64(w.q.Stats().Points) }),
		QueuedBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_influx_queue_bytes", Help: "Bytes on the disk queue."},
			func() float64 { return float64(w.q.Stats().Bytes) }),
		WriteLat: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_influx_write_seconds", Help: "InfluxDB write latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
	}
	for _, c := range []prometheus.Collector{w.m.Written, w.m.WriteErrors, w.m.QueuedPts, w.m.QueuedBytes, w.m.WriteLat} {
		if err := w.reg.Register(c); err != nil {
			return fmt.Errorf("influx: register metrics: %w", err)
		}
	}
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(w.cfg.Timeout / time.Second))
	w.client = influxdb2.NewClientWithOptions(w.cfg.URL, w.cfg.Token, opts)
	w.api = w.client.WriteAPIBlocking(w.cfg.Org, w.cfg.Bucket)
	w.buf = make([]byte, 0, w.cfg.BatchSize*64)

	sendCtx, cancelSend := context.WithCancel(context.Background())
	tickCtx, cancelTick := context.WithCancel(ctx)
	w.cancelSend, w.cancelTick = cancelSend, cancelTick
	w.sendDone = make(chan struct{})
	w.wg.Add(1)
	go w.tick(tickCtx)
	go func() { defer close(w.sendDone); w.send(sendCtx) }()
	return nil
}

// Enqueue encodes points into the current batch; a full batch goes to disk
// before Enqueue returns.
func (w *Writer) Enqueue(pts []collectors.Point) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.q == nil {
		return errors.New("influx: writer is not running")
	}
	var written, skipped int
	w.buf, written, skipped = encode(w.buf, w.series, pts)
	if skipped > 0 {
		w.dropped.WithLabelValues("influx", "no_value").Add(float64(skipped))
	}
	w.n += written
	if w.n >= w.cfg.BatchSize {
		return w.flushLocked()
	}
	return nil
}

func (w *Writer) flushLocked() error {
	if w.n == 0 {
		return nil
	}
	if err := w.q.Append(w.buf, w.n); err != nil {
		w.dropped.WithLabelValues("queue", "append_failed").Add(float64(w.n))
		w.buf, w.n = w.buf[:0], 0
		return fmt.Errorf("influx: queue: %w", err)
	}
	w.buf, w.n = w.buf[:0], 0
	return nil
}

// Flush moves the pending partial batch to the disk queue.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) tick(ctx context.Context) {
	defer w.wg.Done()
	flush := time.NewTicker(w.cfg.FlushInterval)
	sync := time.NewTicker(w.cfg.Queue.SyncInterval)
	defer flush.Stop()
	defer sync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			if err := w.Flush(); err != nil {
				w.limiter.Error("flush", "flush to disk queue failed", "err", err)
			}
		case <-sync.C:
			if err := w.q.Sync(); err != nil {
				w.limiter.Error("sync", "disk queue fsync failed", "err", err)
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
		retry, err := w.deliver(ctx, string(rec.Data), rec.Count)
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
		w.limiter.Error("rejected", "InfluxDB rejected a line; dropped", "status", status, "err", err, "line", lines[0])
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

// Stop persists the pending batch, gives the sender up to drain to empty
// the queue, and closes it; what is left is replayed on the next start.
// It is safe after a failed Start and when called twice.
func (w *Writer) Stop(drain time.Duration) error {
	w.mu.Lock()
	if w.stopped || w.q == nil {
		w.stopped = true
		w.mu.Unlock()
		return nil
	}
	err := w.flushLocked()
	w.stopped = true
	w.mu.Unlock()
	w.cancelTick()
	w.wg.Wait()
	w.draining.Store(true)
	deadline := time.Now().Add(drain)
	for w.q.Stats().Points > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	w.cancelSend()
	<-w.sendDone
	w.client.Close()
	if st := w.q.Stats(); st.Points > 0 {
		w.log.Info("points kept on the disk queue for the next start", "points", st.Points)
	}
	return errors.Join(err, w.q.Close())
}

// QueueStats reports the disk queue.
func (w *Writer) QueueStats() queue.Stats { return w.q.Stats() }
