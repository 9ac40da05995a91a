// Package modbus polls Modbus TCP, RTU-over-TCP and serial RTU devices on
// github.com/goburrow/modbus. Devices sharing a physical link are polled by
// one scheduler with one request in flight; each link has its own, so a
// failing device never delays devices on other links.
package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
)

// CommLostField is the status point each device reports: true after
// comm_lost_after failed polls, false again once it answers.
const CommLostField = "comm_lost"

// Metrics are the Modbus series, labelled by device (asset id).
type Metrics struct {
	Requests *prometheus.CounterVec   // device, result (ok, exception, error)
	Latency  *prometheus.HistogramVec // device
	Polls    *prometheus.CounterVec   // device, result (ok, failed)
	Panics   *prometheus.CounterVec   // link, during (poll, write, schedule)
}

// NewMetrics registers the Modbus series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_modbus_requests_total", Help: "Modbus requests by device and result."}, []string{"device", "result"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gateway_modbus_request_seconds", Help: "Modbus request latency by device.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"device"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_modbus_polls_total", Help: "Device poll cycles by result."}, []string{"device", "result"}),
		Panics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_modbus_link_panics_total",
			Help: "Panics recovered in a link's goroutine, by link and what it was doing (poll, write, schedule); the link is closed and reopened, a poll's readings are lost and a write fails."},
			[]string{"link", "during"}),
	}
	reg.MustRegister(m.Requests, m.Latency, m.Polls, m.Panics)
	return m
}

// Collector polls every configured Modbus device.
type Collector struct {
	cfg     Config
	dial    Dialer
	metrics *Metrics
	log     *slog.Logger

	mu      sync.Mutex
	links   map[string]*link
	devices map[string]*device // by asset id
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ collectors.Collector = (*Collector)(nil)

// New builds the collector; dial may be nil for goburrow. No I/O happens here.
func New(cfg Config, dial Dialer, m *Metrics, log *slog.Logger) *Collector {
	if dial == nil {
		dial = GoburrowDialer
	}
	cfg.SetDefaults()
	return &Collector{cfg: cfg, dial: dial, metrics: m, log: log}
}

// Name implements collectors.Collector.
func (c *Collector) Name() string { return "modbus" }

// Validate implements collectors.Collector.
func (c *Collector) Validate() error { return c.cfg.Validate() }

type device struct {
	cfg      *Device
	log      *slog.Logger
	reads    []*read
	regs     map[string]*Register
	next     time.Time
	failures int
	lost     bool
}

type writeReq struct {
	dev  *device
	reg  *Register
	val  collectors.Value
	resp chan error
}

type link struct {
	key     string
	conn    Link
	devices []*device
	writes  chan writeReq
	sink    collectors.Sink
	m       *Metrics
	log     *slog.Logger
	now     func() time.Time
}

// Start dials (without connecting) every link and starts one scheduler each.
func (c *Collector) Start(ctx context.Context, sink collectors.Sink) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, c.cancel = context.WithCancel(ctx)
	c.links = map[string]*link{}
	c.devices = map[string]*device{}
	for i := range c.cfg.Devices {
		dc := &c.cfg.Devices[i]
		key := dc.LinkKey()
		l, ok := c.links[key]
		if !ok {
			conn, err := c.dial(dc)
			if err != nil {
				return fmt.Errorf("modbus: %s: %w", key, err)
			}
			l = &link{key: key, conn: conn, writes: make(chan writeReq, 16), sink: sink, m: c.metrics,
				log: c.log.With("link", key), now: time.Now}
			c.links[key] = l
		}
		regs := dc.Fields()
		d := &device{cfg: dc, log: c.log.With("device", dc.Asset), reads: plan(regs, dc.MaxGap), regs: map[string]*Register{}}
		for j := range regs {
			d.regs[regs[j].Name] = &regs[j]
		}
		l.devices = append(l.devices, d)
		c.devices[dc.Asset] = d
	}
	for _, l := range c.links {
		c.wg.Add(1)
		go func(l *link) { defer c.wg.Done(); l.run(ctx) }(l)
	}
	c.log.Info("modbus collector started", "devices", len(c.cfg.Devices), "links", len(c.links))
	return nil
}

// Stop ends polling and closes every link; safe after a partial Start.
func (c *Collector) Stop() error {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
	var errs []error
	for _, l := range c.links {
		errs = append(errs, l.conn.Close())
	}
	return errors.Join(errs...)
}

// ErrNotWritable is returned for writes to fields the config does not declare writable.
var ErrNotWritable = errors.New("field is not declared writable")

// Write sets a writable field (a coil or holding register), queued on the
// device's link ahead of polls, and verifies it by reading it back.
func (c *Collector) Write(ctx context.Context, asset, field string, v collectors.Value) error {
	c.mu.Lock()
	d, ok := c.devices[asset]
	var l *link
	if ok {
		l = c.links[d.cfg.LinkKey()]
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("modbus write %s.%s: no Modbus device for asset %q", asset, field, asset)
	}
	r, ok := d.regs[field]
	if !ok {
		return fmt.Errorf("modbus write %s.%s: asset has no field %q", asset, field, field)
	}
	if !r.Writable {
		return fmt.Errorf("modbus write %s.%s: %w", asset, field, ErrNotWritable)
	}
	req := writeReq{dev: d, reg: r, val: v, resp: make(chan error, 1)}
	select {
	case l.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.resp:
		if err != nil {
			return fmt.Errorf("modbus write %s.%s: %w", asset, field, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrShortReply is returned (wrapped) when a device answers with fewer bytes
// than the request asked for.
var ErrShortReply = errors.New("short reply")

// errRecovered is what a write returns when its link recovered from a panic.
var errRecovered = errors.New("internal error on the link (recovered); the link was reopened")

// run schedules the link until ctx ends. A panic (a bug, or a reply nobody
// foresaw) is recovered, logged with the link name, counted, and the link
// closed so the next request reopens it; the loop carries on.
func (l *link) run(ctx context.Context) {
	start := l.now()
	for _, d := range l.devices {
		d.next = start
	}
	for ctx.Err() == nil {
		l.safely("schedule", nil, func() { l.schedule(ctx) })
	}
}

// safely runs fn, recovering a panic: it reports whether one happened.
func (l *link) safely(during string, d *device, fn func()) (panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			l.m.Panics.WithLabelValues(l.key, during).Inc()
			args := []any{"during", during, "panic", fmt.Sprint(p), "stack", string(debug.Stack())}
			if d != nil {
				args = append(args, "device", d.cfg.Asset)
			}
			l.log.Error("modbus link recovered from a panic; closing and reopening the link", args...)
			_ = l.conn.Close()
		}
	}()
	fn()
	return false
}

// schedule serves writes first and polls each device when it is due.
func (l *link) schedule(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Writes first: a playbook stopping a pump must not wait for polls.
		select {
		case w := <-l.writes:
			l.doWrite(w)
			continue
		default:
		}
		d := l.devices[0]
		for _, x := range l.devices[1:] {
			if x.next.Before(d.next) {
				d = x
			}
		}
		if wait := d.next.Sub(l.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case w := <-l.writes:
				l.doWrite(w)
				continue
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if l.safely("poll", d, func() { l.poll(d) }) {
			// Its readings are lost (counted in the panic metric); poll the
			// device again after an interval, not in a tight loop.
			l.m.Polls.WithLabelValues(d.cfg.Asset, "failed").Inc()
			d.next = l.now().Add(d.cfg.PollInterval)
		}
	}
}

// doWrite performs w and always answers it, even when the write panicked.
func (l *link) doWrite(w writeReq) {
	var err error
	if l.safely("write", w.dev, func() { err = l.write(w) }) {
		err = errRecovered
	}
	w.resp <- err
}

// request runs one Modbus call with metrics, and drops the connection on any
// error other than a protocol exception: goburrow keeps a socket open after a
// timeout, and the late reply would desynchronise every following request.
func (l *link) request(d *device, fn func(Client) ([]byte, error)) ([]byte, error) {
	t0 := time.Now()
	resp, err := fn(l.conn.Client(byte(d.cfg.UnitID)))
	l.m.Latency.WithLabelValues(d.cfg.Asset).Observe(time.Since(t0).Seconds())
	switch {
	case err == nil:
		l.m.Requests.WithLabelValues(d.cfg.Asset, "ok").Inc()
	case exceptionCode(err) != 0:
		l.m.Requests.WithLabelValues(d.cfg.Asset, "exception").Inc()
	default:
		l.m.Requests.WithLabelValues(d.cfg.Asset, "error").Inc()
		_ = l.conn.Close()
	}
	return resp, err
}

func readFn(r *read) func(Client) ([]byte, error) {
	a, q := uint16(r.start), uint16(r.qty)
	return func(c Client) ([]byte, error) {
		switch r.table {
		case Coil:
			return c.ReadCoils(a, q)
		case DiscreteInput:
			return c.ReadDiscreteInputs(a, q)
		case InputRegister:
			return c.ReadInputRegisters(a, q)
		}
		return c.ReadHoldingRegisters(a, q)
	}
}

// poll reads every field of d and publishes the points.
func (l *link) poll(d *device) {
	now := l.now()
	pts := make([]collectors.Point, 0, len(d.regs)+1)
	var failed error
	for i := 0; i < len(d.reads); i++ {
		r := d.reads[i]
		resp, err := l.request(d, readFn(r))
		if err == nil && len(resp) < r.respLen() {
			err = fmt.Errorf("%w: %d bytes for %d", ErrShortReply, len(resp), r.respLen())
			_ = l.conn.Close()
		}
		if err != nil {
			code := exceptionCode(err)
			if (code == 2 || code == 3) && len(r.fields) > 1 && len(split(r)) > 1 {
				// A hole in the device's map: read the fields one by one from now on.
				parts := split(r)
				d.reads = append(d.reads[:i], append(parts, d.reads[i+1:]...)...)
				d.log.Info("device refused a coalesced read; falling back to smaller reads",
					"table", r.table, "start", r.start, "qty", r.qty, "exception", code, "reads", len(parts))
				i--
				continue
			}
			if code != 0 {
				// The device answered: only these fields are bad.
				d.log.Debug("field read refused", "table", r.table, "start", r.start, "exception", code)
				for _, f := range r.fields {
					pts = append(pts, collectors.Point{Asset: d.cfg.Asset, Field: f.Name, Unit: f.Unit, Quality: collectors.QualityBad, Time: now})
				}
				continue
			}
			failed = err
			break
		}
		for _, f := range r.fields {
			v, q := Decode(f, r.slice(resp, f))
			pts = append(pts, collectors.Point{Asset: d.cfg.Asset, Field: f.Name, Value: v, Unit: f.Unit, Quality: q, Time: now})
		}
	}
	if failed != nil {
		l.m.Polls.WithLabelValues(d.cfg.Asset, "failed").Inc()
		d.failures++
		pts = pts[:0]
		for name, f := range d.regs {
			pts = append(pts, collectors.Point{Asset: d.cfg.Asset, Field: name, Unit: f.Unit, Quality: collectors.QualityBad, Time: now})
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].Field < pts[j].Field })
		if d.failures >= d.cfg.CommLostAfter && !d.lost {
			d.lost = true
			d.log.Warn("device communication lost", "failures", d.failures, "err", failed)
		}
		if d.failures >= d.cfg.CommLostAfter {
			pts = append(pts, collectors.Point{Asset: d.cfg.Asset, Field: CommLostField, Value: collectors.Bool(true), Quality: collectors.QualityGood, Time: now})
		}
		// Back off: interval × 2^(failures-1), capped.
		backoff := time.Duration(float64(d.cfg.PollInterval) * math.Pow(2, float64(d.failures-1)))
		if backoff > d.cfg.MaxBackoff || backoff <= 0 {
			backoff = d.cfg.MaxBackoff
		}
		d.next = now.Add(max(backoff, d.cfg.PollInterval))
	} else {
		l.m.Polls.WithLabelValues(d.cfg.Asset, "ok").Inc()
		if d.lost {
			d.log.Info("device communication restored", "after_failures", d.failures)
		}
		d.failures, d.lost = 0, false
		pts = append(pts, collectors.Point{Asset: d.cfg.Asset, Field: CommLostField, Value: collectors.Bool(false), Quality: collectors.QualityGood, Time: now})
		// Keep the cadence; if a poll overran, start the next one now.
		d.next = d.next.Add(d.cfg.PollInterval)
		if d.next.Before(now) {
			d.next = now
		}
	}
	l.sink.Publish("modbus", pts)
}

// write performs a write and reads the value back to verify it.
func (l *link) write(w writeReq) error {
	d, r := w.dev, w.reg
	var err error
	switch {
	case r.Table == Coil:
		b, ok := w.val.AsFloat()
		if !ok {
			return fmt.Errorf("coil needs a bool, got %s", w.val.Type)
		}
		v := uint16(0)
		if b != 0 {
			v = 0xFF00
		}
		_, err = l.request(d, func(c Client) ([]byte, error) { return c.WriteSingleCoil(uint16(r.Address), v) })
	case r.Bit != nil:
		// Read-modify-write of one bit of a holding register.
		var cur []byte
		cur, err = l.request(d, func(c Client) ([]byte, error) { return c.ReadHoldingRegisters(uint16(r.Address), 1) })
		if err == nil && len(cur) < 2 {
			err = fmt.Errorf("reading the register for read-modify-write: %w: %d bytes for 2", ErrShortReply, len(cur))
			_ = l.conn.Close()
		}
		if err == nil {
			b, _ := w.val.AsFloat()
			word := binary.BigEndian.Uint16(cur)
			if b != 0 {
				word |= 1 << uint(*r.Bit)
			} else {
				word &^= 1 << uint(*r.Bit)
			}
			_, err = l.request(d, func(c Client) ([]byte, error) { return c.WriteSingleRegister(uint16(r.Address), word) })
		}
	default:
		var raw []byte
		if raw, err = Encode(r, w.val); err != nil {
			return err
		}
		if len(raw) == 2 {
			_, err = l.request(d, func(c Client) ([]byte, error) {
				return c.WriteSingleRegister(uint16(r.Address), binary.BigEndian.Uint16(raw))
			})
		} else {
			_, err = l.request(d, func(c Client) ([]byte, error) {
				return c.WriteMultipleRegisters(uint16(r.Address), uint16(len(raw)/2), raw)
			})
		}
	}
	if err != nil {
		return err
	}
	rd := &read{table: r.Table, start: r.Address, qty: r.width(), fields: []*Register{r}}
	resp, err := l.request(d, readFn(rd))
	if err != nil {
		return fmt.Errorf("read-back: %w", err)
	}
	if len(resp) < rd.respLen() {
		_ = l.conn.Close() // the stream may be out of step: reconnect
		return fmt.Errorf("read-back: %w: %d bytes for %d", ErrShortReply, len(resp), rd.respLen())
	}
	got, q := Decode(r, rd.slice(resp, r))
	want := w.val
	if r.Type != TypeString && r.Type != TypeBool {
		wf, _ := want.AsFloat()
		gf, _ := got.AsFloat()
		if q != collectors.QualityGood || math.Abs(gf-wf) > math.Abs(r.Scale)/2+1e-6*math.Abs(wf) {
			return fmt.Errorf("read-back gave %s, wrote %s", got, want)
		}
	} else if wb, _ := want.AsFloat(); r.Type == TypeBool && (gf(got) != wb) {
		return fmt.Errorf("read-back gave %s, wrote %s", got, want)
	} else if r.Type == TypeString && got.S != want.S {
		return fmt.Errorf("read-back gave %s, wrote %s", got, want)
	}
	l.sink.Publish("modbus", []collectors.Point{{Asset: d.cfg.Asset, Field: r.Name, Value: got, Unit: r.Unit, Quality: q, Time: l.now()}})
	d.log.Info("field written and verified", "field", r.Name, "value", got.String())
	return nil
}

func gf(v collectors.Value) float64 { f, _ := v.AsFloat(); return f }
