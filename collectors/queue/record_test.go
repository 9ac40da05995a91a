package queue

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeRecord: the decoder never panics, never returns a record whose
// checksum did not match (re-encoding it gives back the very bytes read),
// and resynchronisation always moves forward within the input.
//
//	go test -run '^$' -fuzz FuzzDecodeRecord -fuzztime 30s ./collectors/queue
func FuzzDecodeRecord(f *testing.F) {
	enq := time.Unix(1_700_000_000, 123)
	good := appendRecord(nil, []byte("pump_room,asset=pump-1 pressure=1.5 1700000000000000000\n"), 1, enq)
	two := appendRecord(append([]byte(nil), good...), []byte("x"), 7, enq)
	f.Add(good)
	f.Add(two)
	f.Add(make([]byte, 100))
	f.Add(good[:headerSize+3])
	flipped := append([]byte(nil), two...)
	flipped[20] ^= 1
	f.Add(flipped)
	f.Add(append(append([]byte(nil), magicBytes...), make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b)
		if err == nil {
			if n < headerSize+1 || n > len(b) || len(rec.Data) != n-headerSize {
				t.Fatalf("decoded %d bytes of %d, payload %d", n, len(b), len(rec.Data))
			}
			if again := appendRecord(nil, rec.Data, rec.Count, rec.Enqueued); !bytes.Equal(again, b[:n]) {
				t.Fatalf("accepted a record that does not re-encode to its bytes (checksum not honoured)")
			}
		}
		for off := 0; off < len(b); {
			if _, n, err := decodeRecord(b[off:]); err == nil {
				off += n
				continue
			}
			d := skipDamage(b, off)
			if d.next <= off || d.next > len(b) || d.records < 0 || d.points < 0 {
				t.Fatalf("skipDamage(%d) = %+v for %d bytes", off, d, len(b))
			}
			if d.next < len(b) {
				if _, _, err := decodeRecord(b[d.next:]); err != nil {
					t.Fatalf("resynchronised at %d, which is no valid record: %v", d.next, err)
				}
			}
			off = d.next
		}
	})
}

func TestDecodeRejectsZerosAndEmptyPayload(t *testing.T) {
	if _, _, err := decodeRecord(make([]byte, 64)); err == nil {
		t.Fatal("zeros decoded as a record")
	}
	rec := appendRecord(nil, []byte("a"), 1, time.Unix(0, 0))
	rec[8] = 0 // length 0; the checksum is not even looked at
	if _, _, err := decodeRecord(rec); err != errBadLength {
		t.Fatalf("empty payload: %v", err)
	}
}

// Counting damage: two damaged records with intact markers and lengths are
// counted with their points; a run of zeros counts as nothing.
func TestSkipDamageCounts(t *testing.T) {
	enq := time.Unix(1, 0)
	var b []byte
	b = appendRecord(b, []byte("aaaa"), 3, enq)
	b = appendRecord(b, []byte("bbbb"), 4, enq)
	good := len(b)
	b = appendRecord(b, []byte("cccc"), 5, enq)
	b[headerSize+1] ^= 1              // damage record 0's payload
	b[headerSize+4+headerSize+2] ^= 1 // and record 1's
	d := skipDamage(b, 0)
	if d.next != good || d.records != 2 || d.points != 7 {
		t.Fatalf("skipDamage = %+v, want next %d, 2 records, 7 points", d, good)
	}
	z := append(make([]byte, 50), appendRecord(nil, []byte("z"), 1, enq)...)
	if d := skipDamage(z, 0); d.next != 50 || d.records != 0 || d.points != 0 {
		t.Fatalf("zeros: %+v", d)
	}
}
