package mqtt

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/testenv"
)

// The paho floor: what receiving and acknowledging QoS 1 messages costs
// with github.com/eclipse/paho.mqtt.golang alone, set up as the collector
// sets it up (PahoFactory: buffered connection, ordered delivery, manual
// PUBACK, no store), with a handler that does nothing but hand the message
// over for its PUBACK, sent in groups as the collector sends them. The consumer runs in a child process so its CPU is its
// own: BenchmarkPahoFloor reports it per message, to compare with the
// gateway's in BenchmarkRealisticIngest (docs/benchmarks.md).

const floorEnv = "PAHO_FLOOR_BROKER"

// TestPahoFloorChild is the consumer; it runs only as the benchmark's child.
func TestPahoFloorChild(t *testing.T) {
	broker := os.Getenv(floorEnv)
	if broker == "" {
		t.Skip("the paho floor benchmark's child process")
	}
	want, _ := strconv.Atoi(os.Getenv("PAHO_FLOOR_MSGS"))
	// Acknowledged as the collector does: gathered by the handler, sent in
	// groups by another goroutine (up to 256, or every 20 ms).
	var mu sync.Mutex
	var pending []Message
	kick := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		acked := 0
		timer := time.NewTicker(20 * time.Millisecond)
		defer timer.Stop()
		for {
			select {
			case <-kick:
			case <-timer.C:
			}
			mu.Lock()
			batch := pending
			pending = nil
			mu.Unlock()
			for _, m := range batch {
				m.Ack()
			}
			if acked += len(batch); acked >= want {
				close(done)
				return
			}
		}
	}()
	cfg := &Config{Broker: broker, ClientID: "paho-floor", QoS: 1}
	cfg.SetDefaults()
	var conn Conn
	subscribed := make(chan struct{})
	conn = PahoFactory(ConnOptions{Config: cfg,
		Routes: map[string]Handler{"rb/#": func(m Message) {
			mu.Lock()
			pending = append(pending, m)
			n := len(pending)
			mu.Unlock()
			if n >= 256 {
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}},
		OnConnect: func() {
			go func() {
				if err := conn.Subscribe(map[string]byte{"rb/#": 1}); err != nil {
					t.Error(err)
				}
				close(subscribed)
			}()
		},
		OnLost: func(error) {}})
	conn.Connect()
	<-subscribed
	fmt.Println("ready")
	<-done
	fmt.Println("done")
	conn.Disconnect()
}

// BenchmarkPahoFloor: BENCH_MSGS (default 100,000) QoS 1 messages of the
// realistic benchmark's sizes at BENCH_RATE (default 10,000) per second;
// CPU of the consumer process per message.
func BenchmarkPahoFloor(b *testing.B) {
	msgs, rate := envIntOr("BENCH_MSGS", 100000), envIntOr("BENCH_RATE", 10000)
	broker := testenv.StartMosquitto(b)
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("floor-pub").SetMaxResumePubInFlight(1000))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	var cpu time.Duration
	for it := 0; it < b.N; it++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPahoFloorChild$", "-test.v")
		cmd.Env = append(os.Environ(), floorEnv+"="+broker.URL, "PAHO_FLOOR_MSGS="+strconv.Itoa(msgs))
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		waitLine := func(want string) {
			for lines.Scan() {
				if strings.TrimSpace(lines.Text()) == want {
					return
				}
			}
			b.Fatalf("child ended before %q", want)
		}
		waitLine("ready")
		cpu0 := childCPU(cmd.Process.Pid)
		const tick = 10 * time.Millisecond
		per := max(1, rate/100)
		next := time.Now()
		toks := make([]paho.Token, 0, msgs)
		for i := 0; i < msgs; {
			for c := 0; c < per && i < msgs; c, i = c+1, i+1 {
				j := i % 1000
				toks = append(toks, pub.Publish(fmt.Sprintf("rb/pump/pump%05d", j), 1, false,
					fmt.Sprintf(`{"pump":{"outlet_pressure":%.3f,"running":true,"freq":%.1f},"motor":{"temp":%.1f,"current":%.1f}}`,
						0.35+float64(j%10)/100, 45+float64(j%5), 50+float64(j%20), 10+float64(j%15)/2)))
			}
			next = next.Add(tick)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		waitLine("done")
		cpu += childCPU(cmd.Process.Pid) - cpu0
		cmd.Wait()
		for _, t := range toks {
			t.Wait()
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(msgs*b.N), "µs-cpu/msg")
}

func envIntOr(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// childCPU is a process's user+system CPU time from /proc (USER_HZ 100).
func childCPU(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
