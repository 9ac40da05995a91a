package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"
)

// Record layout (little endian), version 2:
//
//	off  0  magic    u32  0xE55157FA: finds record starts again after damage
//	off  4  crc32c   u32  over bytes 8..24 and the payload (header included)
//	off  8  length   u32  payload bytes, 1..maxRecordBytes
//	off 12  count    u32  points in the payload
//	off 16  enqueued i64  unix nanoseconds
//	off 24  payload
//
// The magic's bytes (FA 57 51 E5) contain 0xFA, which never occurs in UTF-8,
// so line-protocol payloads cannot imitate a record start; a zero-filled
// tail fails the magic check.
const (
	headerSize     = 24
	recordMagic    = 0xE55157FA
	maxRecordBytes = 64 << 20
)

var (
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
	magicBytes = binary.LittleEndian.AppendUint32(nil, recordMagic)
)

// Decoding errors; all wrap ErrCorrupt.
var (
	ErrCorrupt     = errors.New("queue: damaged record")
	errTruncated   = wrapCorrupt("record cut short")
	errBadMagic    = wrapCorrupt("no record marker")
	errBadLength   = wrapCorrupt("implausible record length")
	errBadChecksum = wrapCorrupt("checksum mismatch")
)

type corruptError string

func wrapCorrupt(s string) error            { return corruptError(s) }
func (e corruptError) Error() string        { return "queue: damaged record: " + string(e) }
func (e corruptError) Is(target error) bool { return target == ErrCorrupt }

// appendRecord appends the encoded record to dst.
func appendRecord(dst, payload []byte, count int, enq time.Time) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, recordMagic)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, below
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(count))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(enq.UnixNano()))
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], crcTable))
	return dst
}

// decodeRecord decodes the record at the start of b. The returned Data
// aliases b. It returns an error wrapping ErrCorrupt unless the marker,
// the length and the checksum over header and payload all match.
func decodeRecord(b []byte) (rec Record, n int, err error) {
	if len(b) < headerSize {
		return Record{}, 0, errTruncated
	}
	if binary.LittleEndian.Uint32(b) != recordMagic {
		return Record{}, 0, errBadMagic
	}
	length := binary.LittleEndian.Uint32(b[8:])
	if length == 0 || length > maxRecordBytes {
		return Record{}, 0, errBadLength
	}
	n = headerSize + int(length)
	if len(b) < n {
		return Record{}, 0, errTruncated
	}
	if crc32.Checksum(b[8:n], crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return Record{}, 0, errBadChecksum
	}
	return Record{
		Data:     b[headerSize:n:n],
		Count:    int(binary.LittleEndian.Uint32(b[12:])),
		Enqueued: time.Unix(0, int64(binary.LittleEndian.Uint64(b[16:]))),
	}, n, nil
}

// damage describes a damaged run of bytes [from, next) that the reader
// skips: next is the start of the next valid record, or len(b).
type damage struct {
	next    int
	records int // damaged records identified (by their marker)
	points  int // points in them, where a header is consistent with its neighbours
}

// skipDamage finds the next valid record after the damaged one at off and
// counts what lies between. A header whose marker is intact and whose
// length ends exactly at the next marker (or the end of the damage) is
// trusted for its point count even though its checksum failed; any other
// run of non-zero bytes counts as one record of unknown points; zeros
// (a tail the file system extended but never wrote) count as nothing.
func skipDamage(b []byte, off int) damage {
	d := damage{next: len(b)}
	for p := off + 1; p < len(b); {
		i := bytes.Index(b[p:], magicBytes)
		if i < 0 {
			break
		}
		p += i
		if _, _, err := decodeRecord(b[p:]); err == nil {
			d.next = p
			break
		}
		p++
	}
	if !bytes.HasPrefix(b[off:], magicBytes) && !allZero(b[off:d.next]) {
		d.records++ // the first damaged record lost its marker: size unknown
	}
	for q := off; ; {
		i := bytes.Index(b[q:d.next], magicBytes)
		if i < 0 {
			break
		}
		q += i
		d.records++
		if q+headerSize > d.next {
			break // a header cut short
		}
		length := int(binary.LittleEndian.Uint32(b[q+8:]))
		end := q + headerSize + length
		if count := int(binary.LittleEndian.Uint32(b[q+12:])); length > 0 && count <= length && (end == d.next || (end < d.next && bytes.HasPrefix(b[end:], magicBytes))) {
			d.points += count // plausible: every point takes at least a byte
			q = end
			continue
		}
		q++
	}
	return d
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
