package modbus

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propgate/gateway/collectors"
)

type nullSink struct{}

func (nullSink) Publish(string, []collectors.Point) {}

// benchCycle polls `devices` devices × 50 registers once per iteration,
// against real Modbus TCP servers (simonvetter), `links` servers with the
// devices spread over them. layout gives each device's register addresses.
// It reports requests per cycle, the cycle time and the slowest link's.
func benchCycle(b *testing.B, devices, links int, layout func(i int) int) {
	const regs = 50
	addrs := make([]string, links)
	for i := range addrs {
		addrs[i] = serve(b, &bank{})
	}
	m := NewMetrics(prometheus.NewRegistry())
	byLink := map[string]*link{}
	for i := 0; i < devices; i++ {
		dc := &Device{Asset: fmt.Sprintf("d%03d", i), Address: addrs[i%links], UnitID: 1 + i/links, PollInterval: time.Second, Timeout: time.Second, MaxGap: 10}
		for r := 0; r < regs; r++ {
			dc.Registers = append(dc.Registers, Register{Name: fmt.Sprintf("r%02d", r), Address: layout(r)})
		}
		cfg := Config{Devices: []Device{*dc}}
		cfg.SetDefaults()
		dc = &cfg.Devices[0]
		l := byLink[dc.LinkKey()]
		if l == nil {
			conn, _ := GoburrowDialer(dc)
			l = &link{key: dc.LinkKey(), conn: conn, sink: nullSink{}, m: m, log: quiet(), now: time.Now}
			byLink[dc.LinkKey()] = l
		}
		regsResolved := dc.Fields()
		l.devices = append(l.devices, &device{cfg: dc, log: quiet(), reads: plan(regsResolved, dc.MaxGap), regs: map[string]*Register{}})
	}
	var slowest time.Duration // the slowest link's poll, over all cycles
	var mu sync.Mutex
	cycle := func() {
		var wg sync.WaitGroup
		for _, l := range byLink {
			wg.Add(1)
			go func(l *link) {
				defer wg.Done()
				start := time.Now()
				for _, d := range l.devices {
					l.poll(d)
				}
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			}(l)
		}
		wg.Wait()
	}
	cycle() // connect
	before := testutil.ToFloat64(m.Requests.WithLabelValues("d000", "ok"))
	var total float64
	for _, l := range byLink {
		for _, d := range l.devices {
			total -= testutil.ToFloat64(m.Requests.WithLabelValues(d.cfg.Asset, "ok"))
		}
	}
	slowest = 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		cycle()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	for _, l := range byLink {
		for _, d := range l.devices {
			total += testutil.ToFloat64(m.Requests.WithLabelValues(d.cfg.Asset, "ok"))
		}
		l.conn.Close()
	}
	if errs := testutil.ToFloat64(m.Requests.WithLabelValues("d000", "error")); errs > 0 || before == 0 {
		b.Fatalf("requests failed: %v errors", errs)
	}
	b.ReportMetric(total/float64(b.N), "requests/cycle")
	b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N), "ms/cycle")
	b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms/link-cycle")
}

// 50 consecutive registers per device: one read each.
func contiguous(r int) int { return r }

// 5 blocks of 10 registers, 20 apart (beyond max_gap 10): five reads each.
func blocks(r int) int { return (r/10)*30 + r%10 }

func BenchmarkPollCycle200x50_10Links(b *testing.B)        { benchCycle(b, 200, 10, contiguous) }
func BenchmarkPollCycle200x50_OneLink(b *testing.B)        { benchCycle(b, 200, 1, contiguous) }
func BenchmarkPollCycle200x50_10Links_Blocks(b *testing.B) { benchCycle(b, 200, 10, blocks) }

// Issue 16's site: 500 devices × 50 registers across 20 links (25 devices
// each); the minimum the coalescing allows is 500 requests per cycle for
// contiguous registers and 2,500 for five blocks.
func BenchmarkPollCycle500x50_20Links(b *testing.B)        { benchCycle(b, 500, 20, contiguous) }
func BenchmarkPollCycle500x50_20Links_Blocks(b *testing.B) { benchCycle(b, 500, 20, blocks) }
