package queue_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors/queue"
)

const crashEnv = "QUEUE_CRASH_CHILD_DIR"

func crashOpts(dir string, out io.Writer) queue.Options {
	return queue.Options{Dir: dir, SegmentBytes: 16 << 10, MaxBytes: 1 << 30,
		OnDrop: func(r queue.DropReason, rec, pts int, b int64) {
			fmt.Fprintf(out, "X drop %s %d records %d points %d bytes\n", r, rec, pts, b)
		},
		OnCursorReset: func(err error) { fmt.Fprintf(out, "R %v\n", err) },
	}
}

// crashPayload is the record for id, padded with content derived from it so
// a record returned with the wrong bytes is caught.
func crashPayload(id string) string {
	return id + " " + strings.Repeat(id[len(id)-1:], 40) + "\n"
}

// TestCrashLoopChild is the process the crash-loop test kills: it appends
// records in batches, reporting "A <round>-<seq>" after each successful Sync
// (acknowledged: every record up to seq is durable), and consumes them,
// reporting "D <ids>" before each Ack. It only runs when re-executed.
func TestCrashLoopChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashLoopAcknowledgedRecordsSurviveSIGKILL")
	}
	round := os.Getenv("QUEUE_CRASH_ROUND")
	out := os.Stdout
	q, err := queue.Open(crashOpts(dir, out))
	if err != nil {
		fmt.Fprintf(out, "X open: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(out, "S\n") // opened: the parent starts its kill timer

	go func() { // consumer
		var line bytes.Buffer
		for {
			rec, ok, err := q.PeekBatch(1 + rand.IntN(30))
			if err != nil {
				fmt.Fprintf(out, "X peek: %v\n", err)
				os.Exit(1)
			}
			if !ok {
				select {
				case <-q.Notify():
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			line.Reset()
			line.WriteString("D")
			for _, l := range strings.SplitAfter(string(rec.Data), "\n") {
				if l == "" {
					continue
				}
				id, _, _ := strings.Cut(l, " ")
				if l != crashPayload(id) {
					fmt.Fprintf(out, "X bad record %q\n", l)
					os.Exit(1)
				}
				line.WriteString(" " + id)
			}
			line.WriteString("\n")
			out.Write(line.Bytes())
			if err := q.Ack(); err != nil {
				fmt.Fprintf(out, "X ack: %v\n", err)
				os.Exit(1)
			}
		}
	}()
	for seq := 0; ; {
		n := 1 + rand.IntN(40)
		for range n {
			if err := q.Append([]byte(crashPayload(round+"-"+strconv.Itoa(seq))), 1); err != nil {
				fmt.Fprintf(out, "X append: %v\n", err)
				os.Exit(1)
			}
			seq++
		}
		if err := q.Sync(); err != nil {
			fmt.Fprintf(out, "X sync: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "A %s-%d\n", round, seq-1)
	}
}

// Item 17: a producer and a consumer on one queue, SIGKILLed at random
// points 50 times: every record acknowledged by a successful Sync is
// delivered at least once across the restarts; records delivered twice
// (killed between delivery and Ack) are counted. No damage may be reported
// but the torn tail of an unsynced write (SIGKILL can stop a write between
// two pages): any other drop is a bug.
func TestCrashLoopAcknowledgedRecordsSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)

	acked := map[int]int{} // round → highest acknowledged seq
	delivered := map[string]int{}
	for round := range 50 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLoopChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, "QUEUE_CRASH_ROUND="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Most rounds die at a random point of the load; every fifth at a
		// random point from spawn, which may fall inside Open's recovery.
		killAfter := time.Duration(5+rng.IntN(120)) * time.Millisecond
		kill := time.AfterFunc(time.Hour, func() { cmd.Process.Signal(syscall.SIGKILL) })
		if round%5 == 0 {
			kill.Reset(time.Duration(rng.IntN(40)) * time.Millisecond)
		}
		guard := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() }) // deadline
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break // EOF: the child is dead; a fragment without newline is ignored
			}
			switch f := strings.Fields(l); f[0] {
			case "S":
				if round%5 != 0 {
					kill.Reset(killAfter)
				}
			case "A":
				_, s, _ := strings.Cut(f[1], "-")
				n, _ := strconv.Atoi(s)
				acked[round] = max(acked[round], n)
			case "D":
				for _, id := range f[1:] {
					delivered[id]++
				}
			case "X":
				// Linux copies a write into the page cache page by page and
				// stops between pages when a fatal signal is pending, so
				// SIGKILL can tear a record that straddles a page boundary
				// (seen: a 56-byte tail). Such a record was never synced,
				// so never acknowledged: its tail may be dropped at the next
				// open; any other damage is a bug. That nothing
				// acknowledged is lost is checked below.
				if len(f) >= 7 && f[1] == "drop" && f[2] == string(queue.DropTorn) && f[5] == "0" {
					t.Logf("round %d: %s (an unsynced write torn by SIGKILL)", round, strings.TrimSpace(l))
					continue
				}
				t.Errorf("round %d: child reported %s", round, strings.TrimSpace(l))
			default:
				t.Errorf("round %d: child reported %s", round, strings.TrimSpace(l))
			}
		}
		werr := cmd.Wait()
		kill.Stop()
		if !guard.Stop() {
			t.Fatalf("round %d: child still running after 20 s", round)
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by %v, not by our SIGKILL", round, werr)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	// The last restart: drain what is left.
	var report bytes.Buffer
	q, err := queue.Open(crashOpts(dir, &report))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		rec, ok, err := q.PeekBatch(1000)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		for _, l := range strings.SplitAfter(string(rec.Data), "\n") {
			if id, _, _ := strings.Cut(l, " "); l != "" {
				delivered[id]++
			}
		}
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if report.Len() > 0 {
		t.Fatalf("damage reported after SIGKILLs: %s", report.String())
	}
	var total, missing, dups int
	for round, hi := range acked {
		for s := 0; s <= hi; s++ {
			total++
			switch n := delivered[fmt.Sprintf("%d-%d", round, s)]; {
			case n == 0:
				missing++
				if missing <= 5 {
					t.Errorf("acknowledged record %d-%d never delivered", round, s)
				}
			case n > 1:
				dups += n - 1
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged records lost", missing, total)
	}
	if total < 200 {
		t.Fatalf("only %d records acknowledged in 50 rounds: the test did not put the queue under load", total)
	}
	t.Logf("50 SIGKILLs: %d acknowledged records all delivered; %d deliveries were duplicates (killed between delivery and Ack)", total, dups)
}
