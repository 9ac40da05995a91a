package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type drops map[DropReason][2]int

func open(t *testing.T, dir string, mod func(*Options)) (*Queue, drops) {
	t.Helper()
	d := drops{}
	o := Options{Dir: dir, SegmentBytes: 1024, MaxBytes: 1 << 20, OnDrop: func(r DropReason, rec, pts int, _ int64) {
		v := d[r]
		d[r] = [2]int{v[0] + rec, v[1] + pts}
	}}
	if mod != nil {
		mod(&o)
	}
	q, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return q, d
}

func drain(t *testing.T, q *Queue) []string {
	t.Helper()
	var out []string
	for {
		rec, ok, err := q.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, string(rec.Data))
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFIFOAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	q, _ := open(t, dir, nil)
	for i := 0; i < 100; i++ { // ~100 bytes each: spans ~10 segments of 1 KiB
		if err := q.Append([]byte(fmt.Sprintf("rec-%03d-%s", i, string(make([]byte, 80)))), 2); err != nil {
			t.Fatal(err)
		}
	}
	if s := q.Stats(); s.Records != 100 || s.Points != 200 || s.Segments < 5 {
		t.Fatalf("stats after append = %+v", s)
	}
	// Consume 30, close, reopen: the other 70 come back in order.
	for i := 0; i < 30; i++ {
		rec, ok, err := q.Peek()
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if want := fmt.Sprintf("rec-%03d", i); string(rec.Data[:7]) != want {
			t.Fatalf("record %d = %q, want %q", i, rec.Data[:7], want)
		}
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, _ = open(t, dir, nil)
	defer q.Close()
	if s := q.Stats(); s.Records != 70 || s.Points != 140 {
		t.Fatalf("stats after reopen = %+v, want 70 records / 140 points", s)
	}
	got := drain(t, q)
	if len(got) != 70 || got[0][:7] != "rec-030" || got[69][:7] != "rec-099" {
		t.Fatalf("after reopen got %d records, first %q last %q", len(got), got[0][:7], got[len(got)-1][:7])
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if len(segs) != 1 {
		t.Fatalf("consumed segments not removed: %v", segs)
	}
}

func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	q, _ := open(t, dir, nil)
	for _, s := range []string{"one", "two", "three"} {
		if err := q.Append([]byte(s), 1); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3}) // a header cut short by a crash
	f.Close()

	q, d := open(t, dir, nil)
	defer q.Close()
	if d[DropTorn] != [2]int{1, 0} || len(d) != 1 {
		t.Fatalf("torn tail not reported as one torn record of unknown points: %v", d)
	}
	if err := q.Append([]byte("four"), 1); err != nil {
		t.Fatal(err)
	}
	got := drain(t, q)
	if fmt.Sprint(got) != "[one two three four]" {
		t.Fatalf("got %v", got)
	}
}

// One damaged record in a sealed segment costs that record only: the reader
// resynchronises at the next record marker and counts what it skipped.
func TestCorruptRecordInOldSegmentIsSkippedAndCounted(t *testing.T) {
	dir := t.TempDir()
	q, _ := open(t, dir, nil)
	for i := 0; i < 30; i++ {
		q.Append([]byte(fmt.Sprintf("r%02d-%s", i, make([]byte, 90))), 3)
	}
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	b, _ := os.ReadFile(segs[0])
	b[headerSize+1] ^= 0xFF // flip a payload byte of the first record
	os.WriteFile(segs[0], b, 0o640)
	q, d := open(t, dir, nil)
	defer q.Close()
	got := drain(t, q)
	if d[DropCorrupt] != [2]int{1, 3} || len(got) != 29 || got[0][:3] != "r01" {
		t.Fatalf("drops %v, got %d records starting %q; want 1 record/3 points dropped, r01..r29 delivered", d, len(got), got[0][:3])
	}
}

func TestMaxBytesDropsOldestAndCounts(t *testing.T) {
	q, d := open(t, t.TempDir(), func(o *Options) { o.SegmentBytes = 1000; o.MaxBytes = 3000 })
	defer q.Close()
	for i := 0; i < 100; i++ {
		if err := q.Append(make([]byte, 80), 3); err != nil { // 100 bytes with header
			t.Fatal(err)
		}
	}
	s := q.Stats()
	if s.Bytes > 3000 {
		t.Fatalf("queue holds %d bytes, bound is 3000", s.Bytes)
	}
	dropped := d[DropFull]
	if dropped[0]+s.Records != 100 || dropped[1]+s.Points != 300 {
		t.Fatalf("dropped %v + kept %d records/%d points != 100/300", dropped, s.Records, s.Points)
	}
}

func TestMaxAgeDropsOldRecords(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	q, d := open(t, t.TempDir(), func(o *Options) { o.MaxAge = time.Hour; o.Now = func() time.Time { return now } })
	defer q.Close()
	q.Append([]byte("old"), 5)
	now = now.Add(50 * time.Minute)
	q.Append([]byte("new"), 7)
	now = now.Add(20 * time.Minute) // "old" is 70 min old, "new" 20
	got := drain(t, q)
	if fmt.Sprint(got) != "[new]" || d[DropAge] != [2]int{1, 5} {
		t.Fatalf("got %v, drops %v", got, d)
	}
}

func TestMaxBytesMustExceedTwoSegments(t *testing.T) {
	_, err := Open(Options{Dir: t.TempDir(), SegmentBytes: 1000, MaxBytes: 1500})
	if err == nil || err.Error() != "queue: max_bytes 1500 must be at least twice the segment size 1000" {
		t.Fatalf("err = %v", err)
	}
}

func TestPeekBatchJoinsRecordsUpToMaxPoints(t *testing.T) {
	q, _ := open(t, t.TempDir(), func(o *Options) { o.SegmentBytes = 1 << 16 })
	defer q.Close()
	for i := 0; i < 10; i++ {
		q.Append([]byte(fmt.Sprintf("l%d\n", i)), 3)
	}
	rec, ok, err := q.PeekBatch(10) // 3 records of 3 points fit in 10
	if err != nil || !ok || rec.Count != 9 || string(rec.Data) != "l0\nl1\nl2\n" {
		t.Fatalf("PeekBatch = %q (%d points), %v, %v", rec.Data, rec.Count, ok, err)
	}
	// Not acknowledged: the same batch comes again.
	rec, _, _ = q.PeekBatch(10)
	if rec.Count != 9 {
		t.Fatalf("re-peek got %d points", rec.Count)
	}
	if err := q.Ack(); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Records != 7 || s.Points != 21 {
		t.Fatalf("after ack: %+v", s)
	}
	rec, _, _ = q.PeekBatch(1) // one record even when it exceeds maxPoints
	if string(rec.Data) != "l3\n" {
		t.Fatalf("got %q", rec.Data)
	}
}

// PeekBatch reads ahead at most peekChunk bytes: a batch ends before a
// record the read cut, and the next batch starts with it; every record is
// delivered once, in order, whole.
func TestPeekBatchReadAheadCutsBetweenRecords(t *testing.T) {
	q, _ := open(t, t.TempDir(), func(o *Options) { o.SegmentBytes = 8 << 20; o.MaxBytes = 64 << 20 })
	defer q.Close()
	const n, size = 300, 10_000 // 3 MB: several read-aheads
	for i := 0; i < n; i++ {
		line := fmt.Sprintf("r%04d %s\n", i, strings.Repeat("x", size))
		if err := q.Append([]byte(line), 1); err != nil {
			t.Fatal(err)
		}
	}
	next, batches := 0, 0
	for next < n {
		rec, ok, err := q.PeekBatch(1 << 20)
		if err != nil || !ok {
			t.Fatalf("PeekBatch after %d records: %v %v", next, ok, err)
		}
		lines := strings.Split(strings.TrimSuffix(string(rec.Data), "\n"), "\n")
		if len(lines) != rec.Count {
			t.Fatalf("%d lines for %d points", len(lines), rec.Count)
		}
		for _, l := range lines {
			if want := fmt.Sprintf("r%04d %s", next, strings.Repeat("x", size)); l != want {
				t.Fatalf("record %d: got %.12q…", next, l)
			}
			next++
		}
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
		batches++
	}
	if batches < 3 {
		t.Fatalf("%d batches: the read-ahead was not bounded", batches)
	}
}
