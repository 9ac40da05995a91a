package queue_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors/queue"
	"github.com/propgate/gateway/collectors/queue/queuetest"
)

// drop is what OnDrop reported for one reason, summed.
type drop struct {
	records, points int
	bytes           int64
}

type harness struct {
	t      *testing.T
	dir    string
	fs     *queuetest.FaultFS
	drops  map[queue.DropReason]drop
	resets []error
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, dir: t.TempDir(), fs: queuetest.New(), drops: map[queue.DropReason]drop{}}
}

func (h *harness) open(segBytes int64) *queue.Queue {
	h.t.Helper()
	q, err := queue.Open(queue.Options{Dir: h.dir, SegmentBytes: segBytes, MaxBytes: 1 << 30, FS: h.fs,
		OnDrop: func(r queue.DropReason, rec, pts int, b int64) {
			d := h.drops[r]
			h.drops[r] = drop{d.records + rec, d.points + pts, d.bytes + b}
		},
		OnCursorReset: func(err error) { h.resets = append(h.resets, err) },
	})
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	return q
}

func (h *harness) segments() []string {
	h.t.Helper()
	segs, err := filepath.Glob(filepath.Join(h.dir, "*.wal"))
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Strings(segs)
	return segs
}

func appendN(t *testing.T, q *queue.Queue, from, n, points int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := q.Append([]byte(fmt.Sprintf("rec-%04d %s", i, bytes.Repeat([]byte{'x'}, 60))), points); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// drainIDs reads and acknowledges everything, returning the record numbers.
func drainIDs(t *testing.T, q *queue.Queue) []int {
	t.Helper()
	var ids []int
	for {
		rec, ok, err := q.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ids
		}
		var id int
		if _, err := fmt.Sscanf(string(rec.Data), "rec-%04d", &id); err != nil {
			t.Fatalf("record %q: %v", rec.Data, err)
		}
		ids = append(ids, id)
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// Item 16: a record is durable once Sync returns, including records in a
// segment created by a rotation (its directory entry is fsynced); what was
// appended after the last Sync may be lost to a power cut, and a zero-filled
// tail left by the file system is not taken for records.
func TestSyncedRecordsSurvivePowerCut(t *testing.T) {
	h := newHarness(t)
	q := h.open(1024) // ~12 records per segment: several rotations
	appendN(t, q, 0, 40, 2)
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	appendN(t, q, 40, 3, 2) // not synced
	if err := h.fs.PowerCut(true); err != nil {
		t.Fatal(err)
	}
	q = h.open(1024)
	defer q.Close()
	if got := drainIDs(t, q); fmt.Sprint(got) != fmt.Sprint(seq(0, 40)) {
		t.Fatalf("after the power cut got records %v, want 0..39 (every synced one, nothing else)", got)
	}
	if d := h.drops[queue.DropTorn]; d.records != 0 || d.bytes == 0 || len(h.drops) != 1 {
		t.Fatalf("the zero-filled tail should be one torn_tail drop of 0 records and some bytes, got %v", h.drops)
	}
}

// Group commit: one fdatasync per batch, however many records, none when
// nothing new was appended, and one directory fsync per new segment.
func TestSyncIsOneFdatasyncPerBatch(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	defer q.Close()
	files0, dirs0 := h.fs.Syncs()
	appendN(t, q, 0, 100, 1)
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil { // nothing new
		t.Fatal(err)
	}
	files, dirs := h.fs.Syncs()
	if files-files0 != 1 || dirs-dirs0 != 0 {
		t.Fatalf("100 appends + 2 syncs cost %d fdatasyncs and %d directory fsyncs, want 1 and 0", files-files0, dirs-dirs0)
	}
}

// Item 17: a short write (disk full) is cut back to the last good record
// and reported; later appends stay readable, in this run and after a restart.
func TestShortWriteIsTruncatedAndLaterRecordsStayReadable(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	appendN(t, q, 0, 2, 1)
	h.fs.SetWriteFault(func(_ string, n int) (int, error) { return n / 2, syscall.ENOSPC })
	err := q.Append([]byte("rec-9999 lost"), 1)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v, want ENOSPC", err)
	}
	h.fs.SetWriteFault(nil)
	appendN(t, q, 2, 5, 1)
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Records != 7 {
		t.Fatalf("stats %+v, want 7 records", s)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = h.open(1 << 20)
	defer q.Close()
	if got := drainIDs(t, q); fmt.Sprint(got) != fmt.Sprint(seq(0, 7)) {
		t.Fatalf("got %v, want 0..6", got)
	}
	if len(h.drops) != 0 {
		t.Fatalf("drops %v, want none", h.drops)
	}
}

// When the torn bytes cannot even be truncated, the segment is sealed at its
// last good record and appends go on in a new segment.
func TestShortWriteWithFailedTruncateSealsTheSegment(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	appendN(t, q, 0, 2, 1)
	h.fs.SetWriteFault(func(_ string, n int) (int, error) { return n / 2, syscall.EIO })
	h.fs.SetTruncateError(syscall.EIO)
	if err := q.Append([]byte("rec-9999 lost"), 1); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append = %v, want EIO", err)
	}
	h.fs.SetWriteFault(nil)
	h.fs.SetTruncateError(nil)
	appendN(t, q, 2, 3, 1)
	if n := len(h.segments()); n != 2 {
		t.Fatalf("%d segments, want 2 (the damaged one sealed)", n)
	}
	if got := drainIDs(t, q); fmt.Sprint(got) != fmt.Sprint(seq(0, 5)) {
		t.Fatalf("got %v, want 0..4", got)
	}
	q.Close()
}

// Item 17: damage in the middle of the head segment costs the damaged record
// only, counted with its points; the rest of the segment is delivered.
func TestDamagedRecordInHeadSegmentKeepsLaterRecords(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	appendN(t, q, 0, 10, 5)
	q.Close()
	seg := h.segments()[0]
	recLen := int64(24 + len("rec-0000 ") + 60)
	flipByte(t, seg, 3*recLen+30) // a payload byte of record 3
	q = h.open(1 << 20)
	defer q.Close()
	if s := q.Stats(); s.Records != 9 || s.Points != 45 {
		t.Fatalf("stats %+v, want 9 records / 45 points", s)
	}
	want := append(seq(0, 3), seq(4, 10)...)
	if got := drainIDs(t, q); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if d := h.drops[queue.DropCorrupt]; d.records != 1 || d.points != 5 || d.bytes != recLen {
		t.Fatalf("drops %v, want corrupt: 1 record, 5 points, %d bytes", h.drops, recLen)
	}
}

// Item 17: the checksum covers the header: a flipped bit in the enqueue time
// is damage (not a silently "too old" record), in the count it is caught too.
func TestHeaderBitFlipIsDetected(t *testing.T) {
	for _, field := range []struct {
		name string
		off  int64
	}{{"count", 12}, {"enqueued", 23}, {"length", 9}} {
		t.Run(field.name, func(t *testing.T) {
			h := newHarness(t)
			q := h.open(1 << 20)
			appendN(t, q, 0, 4, 5)
			q.Close()
			flipByte(t, h.segments()[0], field.off)
			q = h.open(1 << 20)
			defer q.Close()
			if got := drainIDs(t, q); fmt.Sprint(got) != fmt.Sprint(seq(1, 4)) {
				t.Fatalf("got %v, want 1..3", got)
			}
			if d := h.drops[queue.DropCorrupt]; d.records != 1 || len(h.drops) != 1 {
				t.Fatalf("drops %v, want exactly one corrupt record", h.drops)
			}
		})
	}
}

// Item 17: zeros after the last record (power cut on ext4) are not records.
func TestZeroFilledTailIsNotRecords(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	appendN(t, q, 0, 1, 3)
	q.Close()
	seg := h.segments()[0]
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 4000))
	f.Close()
	q = h.open(1 << 20)
	defer q.Close()
	if s := q.Stats(); s.Records != 1 || s.Points != 3 {
		t.Fatalf("stats %+v, want 1 record / 3 points", s)
	}
	if d := h.drops[queue.DropTorn]; d != (drop{0, 0, 4000}) {
		t.Fatalf("drops %v, want torn_tail: 0 records, 0 points, 4000 bytes", h.drops)
	}
	appendN(t, q, 1, 1, 3)
	if got := drainIDs(t, q); fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("got %v", got)
	}
}

// A tail cut inside a record (crash mid-write) is truncated; records before
// it are kept and the next append follows them.
func TestTruncatedTailIsCutBack(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	appendN(t, q, 0, 3, 2)
	q.Close()
	seg := h.segments()[0]
	st, _ := os.Stat(seg)
	if err := os.Truncate(seg, st.Size()-7); err != nil {
		t.Fatal(err)
	}
	q = h.open(1 << 20)
	defer q.Close()
	if d := h.drops[queue.DropTorn]; d.records != 1 || d.points != 0 {
		t.Fatalf("drops %v, want one torn record (its length does not fit: points unknown)", h.drops)
	}
	appendN(t, q, 3, 1, 2)
	if got := drainIDs(t, q); fmt.Sprint(got) != "[0 1 3]" {
		t.Fatalf("got %v, want [0 1 3]", got)
	}
}

// Item 17: an empty, NUL-filled or garbage cursor does not stop Open: the
// queue delivers again from the oldest segment and says so.
func TestDamagedCursorFallsBackToReplay(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":     {},
		"nul":       make([]byte, 42),
		"garbage":   []byte("\x00\x17zz"),
		"bad crc":   []byte("v2 1 100 deadbeef\n"),
		"negative":  []byte("1 -5\n"),
		"far ahead": []byte("v2 999 0 " + "00000000"),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			q := h.open(1 << 20)
			appendN(t, q, 0, 5, 1)
			drainIDs(t, q) // acknowledged: the cursor is past all five
			appendN(t, q, 5, 2, 1)
			q.Close()
			if err := os.WriteFile(filepath.Join(h.dir, "cursor"), content, 0o640); err != nil {
				t.Fatal(err)
			}
			q = h.open(1 << 20)
			defer q.Close()
			if len(h.resets) != 1 {
				t.Fatalf("cursor resets reported: %v, want 1", h.resets)
			}
			if got := drainIDs(t, q); fmt.Sprint(got) != fmt.Sprint(seq(0, 7)) {
				t.Fatalf("got %v, want every record again (0..6)", got)
			}
		})
	}
}

// Item 17: the cursor is replaced atomically and durably: after a power cut
// right after an Ack, acknowledged records are not delivered again.
func TestCursorSurvivesPowerCut(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	appendN(t, q, 0, 5, 1)
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := drainIDs(t, q); len(got) != 5 {
		t.Fatalf("drained %v", got)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "cursor.tmp")); !os.IsNotExist(err) {
		t.Fatalf("cursor.tmp left behind: %v", err)
	}
	if err := h.fs.PowerCut(true); err != nil {
		t.Fatal(err)
	}
	q = h.open(1 << 20)
	defer q.Close()
	if got := drainIDs(t, q); len(got) != 0 || len(h.resets) != 0 || len(h.drops) != 0 {
		t.Fatalf("after the power cut: delivered %v again, resets %v, drops %v", got, h.resets, h.drops)
	}
}

// The reader may deliver records before they were synced; the cursor written
// for them must not point past durable data, or records appended after a
// power cut would be skipped.
func TestCursorIsNeverAheadOfDurableRecords(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	appendN(t, q, 0, 5, 1) // no Sync
	if got := drainIDs(t, q); len(got) != 5 {
		t.Fatalf("drained %v", got)
	}
	if err := h.fs.PowerCut(true); err != nil {
		t.Fatal(err)
	}
	q = h.open(1 << 20)
	defer q.Close()
	appendN(t, q, 5, 1, 1)
	if got := drainIDs(t, q); fmt.Sprint(got) != "[5]" || len(h.resets) != 0 {
		t.Fatalf("got %v (resets %v), want [5]", got, h.resets)
	}
}

// A failed fdatasync is returned by Sync; a later Sync retries it.
func TestSyncErrorIsReturned(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	defer q.Close()
	appendN(t, q, 0, 3, 1)
	h.fs.SetSyncError(syscall.EIO)
	if err := q.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync = %v, want EIO", err)
	}
	h.fs.SetSyncError(nil)
	files0, _ := h.fs.Syncs()
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if files, _ := h.fs.Syncs(); files-files0 != 1 {
		t.Fatalf("the retried Sync did not fdatasync (%d)", files-files0)
	}
}

// Group commit across callers: while one fdatasync is in progress, Append
// goes on, and the Syncs waiting behind it share a single fdatasync.
func TestConcurrentSyncsShareOneFdatasync(t *testing.T) {
	h := newHarness(t)
	q := h.open(1 << 20)
	defer q.Close()
	appendN(t, q, 0, 5, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.fs.SetSyncHook(func() { once.Do(func() { close(entered); <-release }) })
	files0, _ := h.fs.Syncs()
	errs := make(chan error, 3)
	go func() { errs <- q.Sync() }() // A: holds the fdatasync
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first Sync never reached fdatasync")
	}
	appended := make(chan error, 1)
	go func() { // Append must not wait for the fdatasync in progress
		for i := 5; i < 15; i++ {
			if err := q.Append([]byte(fmt.Sprintf("rec-%04d", i)), 1); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append blocked behind an fdatasync")
	}
	go func() { errs <- q.Sync() }() // B and C wait behind A
	go func() { errs <- q.Sync() }()
	close(release)
	for range 3 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Sync did not return")
		}
	}
	if files, _ := h.fs.Syncs(); files-files0 != 2 {
		t.Fatalf("3 concurrent Syncs cost %d fdatasyncs, want 2 (A, then one for B and C)", files-files0)
	}
}
