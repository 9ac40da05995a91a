package queue_test

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors/queue"
	"github.com/propgate/gateway/collectors/queue/queuetest"
)

// Random appends, reads, acknowledgements, short writes, ENOSPC, failed
// fdatasyncs and power cuts (with and without zero-filled tails), 100
// times: Open never fails, no record is ever made up from damaged bytes,
// and every record that a successful Sync covered is delivered at least once.
func TestRandomFaultsAndPowerCutsKeepSyncedRecords(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	dir, fs := t.TempDir(), queuetest.New()
	open := func() *queue.Queue {
		q, err := queue.Open(queue.Options{Dir: dir, SegmentBytes: 2048, MaxBytes: 1 << 30, FS: fs})
		if err != nil {
			t.Fatalf("Open after a power cut: %v (seed %d)", err, seed)
		}
		return q
	}
	appended := map[int]bool{} // Append returned nil
	durable := map[int]bool{}  // and a later Sync returned nil
	delivered := map[int]bool{}
	var pending []int // appended since the last successful Sync
	next := 0
	q := open()
	deliver := func(q *queue.Queue) {
		rec, ok, err := q.PeekBatch(1 + rng.IntN(10))
		if err != nil || !ok {
			return
		}
		for _, l := range splitLines(string(rec.Data)) {
			var id int
			if _, err := fmt.Sscanf(l, "id-%d", &id); err != nil || !appended[id] || l != payload(id)[:len(payload(id))-1] {
				t.Fatalf("delivered a record never appended: %q (seed %d)", l, seed)
			}
			delivered[id] = true
		}
		_ = q.Ack() // may fail under injected faults: delivered again later
	}
	for round := 0; round < 100; round++ {
		for op := rng.IntN(30); op > 0; op-- {
			switch r := rng.IntN(10); {
			case r < 5:
				if rng.IntN(8) == 0 {
					fs.SetWriteFault(func(_ string, n int) (int, error) { return rng.IntN(n), syscall.ENOSPC })
				}
				id := next
				next++
				if err := q.Append([]byte(payload(id)), 1); err == nil {
					appended[id] = true
					pending = append(pending, id)
				}
				fs.SetWriteFault(nil)
			case r < 7:
				if rng.IntN(6) == 0 {
					fs.SetSyncError(syscall.EIO)
				}
				if err := q.Sync(); err == nil {
					for _, id := range pending {
						durable[id] = true
					}
					pending = pending[:0]
				}
				fs.SetSyncError(nil)
			default:
				deliver(q)
			}
		}
		if err := fs.PowerCut(rng.IntN(2) == 0); err != nil {
			t.Fatal(err)
		}
		pending = pending[:0]
		q = open()
	}
	for range 100000 {
		if q.Stats().Records == 0 {
			break
		}
		deliver(q)
	}
	q.Close()
	lost := 0
	for id := range durable {
		if !delivered[id] {
			lost++
			if lost <= 5 {
				t.Errorf("record %d was synced but never delivered (seed %d)", id, seed)
			}
		}
	}
	if len(durable) < 150 {
		t.Fatalf("only %d records were synced: the test did too little", len(durable))
	}
	t.Logf("%d appended, %d synced, all delivered", len(appended), len(durable))
}

func payload(id int) string {
	return fmt.Sprintf("id-%d %s\n", id, "abcdefghijklmnopqrstuvwxyz"[:id%26])
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
