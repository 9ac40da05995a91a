package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// appendV1 encodes a record the way version 1 of the queue did.
func appendV1(dst, payload []byte, count int, enq time.Time) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, crcTable))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(count))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(enq.UnixNano()))
	return append(dst, payload...)
}

// An upgrade keeps what version 1 had queued and not yet acknowledged, in
// order, with point counts and enqueue times, and leaves no .seg behind.
func TestUpgradeFromVersion1KeepsUnreadRecords(t *testing.T) {
	dir := t.TempDir()
	enq := time.Unix(1_700_000_000, 0)
	var seg1, seg2 []byte
	var ackedTo int
	for i := 0; i < 5; i++ {
		seg1 = appendV1(seg1, []byte(fmt.Sprintf("a%d", i)), i+1, enq)
		if i == 1 {
			ackedTo = len(seg1) // a0 and a1 acknowledged
		}
	}
	for i := 0; i < 3; i++ {
		seg2 = appendV1(seg2, []byte(fmt.Sprintf("b%d", i)), 10, enq)
	}
	os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), seg1, 0o640)
	os.WriteFile(filepath.Join(dir, "00000000000000000002.seg"), seg2, 0o640)
	os.WriteFile(filepath.Join(dir, "cursor"), fmt.Appendf(nil, "%020d %020d\n", 1, ackedTo), 0o640)

	q, d := open(t, dir, nil)
	if s := q.Stats(); s.Records != 6 || s.Points != 3+4+5+30 {
		t.Fatalf("stats after upgrade %+v, want 6 records / 42 points", s)
	}
	rec, _, _ := q.Peek()
	if !rec.Enqueued.Equal(enq) || rec.Count != 3 {
		t.Fatalf("first record %+v: enqueue time or count not kept", rec)
	}
	if got := drain(t, q); strings.Join(got, " ") != "a2 a3 a4 b0 b1 b2" || len(d) != 0 {
		t.Fatalf("got %v, drops %v", got, d)
	}
	q.Close()
	if old, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(old) != 0 {
		t.Fatalf("version-1 segments left: %v", old)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cursor"))
	if !strings.HasPrefix(string(b), "v2 ") {
		t.Fatalf("cursor not rewritten: %q", b)
	}
}

// Fully acknowledged version-1 segments leave an empty queue that works.
func TestUpgradeFromVersion1AllAcknowledged(t *testing.T) {
	dir := t.TempDir()
	seg := appendV1(nil, []byte("old"), 1, time.Unix(1, 0))
	os.WriteFile(filepath.Join(dir, "00000000000000000004.seg"), seg, 0o640)
	os.WriteFile(filepath.Join(dir, "cursor"), fmt.Appendf(nil, "%020d %020d\n", 4, len(seg)), 0o640)
	q, d := open(t, dir, nil)
	defer q.Close()
	q.Append([]byte("new"), 1)
	if got := drain(t, q); fmt.Sprint(got) != "[new]" || len(d) != 0 {
		t.Fatalf("got %v, drops %v", got, d)
	}
}

// A queue directory written by a newer gateway (its FORMAT, or a newer
// cursor) is refused with what to do, and left untouched; a directory
// without FORMAT (an older gateway's) gets one.
func TestNewerFormatRefused(t *testing.T) {
	for _, tc := range []struct{ file, content, want string }{
		{"FORMAT", "propgate-queue 3\n", "is in queue format 3, written by a newer gateway than this one (format 2): upgrade the gateway"},
		{"cursor", "v3 1 0 deadbeef extra\n", "the cursor in DIR is in version 3, written by a newer gateway than this one (2): upgrade the gateway"},
	} {
		dir := t.TempDir()
		seg := filepath.Join(dir, "00000000000000000001.wal")
		if err := os.WriteFile(seg, []byte("not touched"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Options{Dir: dir})
		if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), strings.ReplaceAll(tc.want, "DIR", dir)) {
			t.Fatalf("%s: got %v", tc.file, err)
		}
		if b, _ := os.ReadFile(seg); string(b) != "not touched" {
			t.Fatalf("%s: segment changed to %q", tc.file, b)
		}
	}
	dir := t.TempDir()
	q, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "FORMAT")); string(b) != "propgate-queue 2\n" {
		t.Fatalf("FORMAT = %q", b)
	}
	if _, err := Open(Options{Dir: dir}); err != nil {
		t.Fatalf("reopen: %v", err)
	}
}
