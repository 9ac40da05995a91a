// Package queue is a bounded, durable FIFO of records kept in segment files
// on disk. The InfluxDB writer puts every batch through it, so points
// survive an InfluxDB outage and a gateway crash, and are replayed in order.
//
// Layout: DIR/<id>.seg segment files, each a run of records
//
//	[len u32][crc32c u32][count u32][enqueued unix-nanos i64][payload len bytes]
//
// and DIR/cursor holding "<segment id> <offset>" of the first unacknowledged
// record, replaced atomically on every Ack. Delivery is at least once: a
// record sent but not yet acknowledged when the process dies is sent again.
package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const headerSize = 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// DropReason says why records were discarded.
type DropReason string

// Reasons the queue discards records; each is counted by the owner.
const (
	DropFull    DropReason = "queue_full" // MaxBytes reached: oldest segment dropped
	DropAge     DropReason = "too_old"    // older than MaxAge when read
	DropCorrupt DropReason = "corrupt"    // failed its checksum (disk damage, torn write)
)

// Options configure a queue.
type Options struct {
	Dir          string
	SegmentBytes int64         // rotate segments at this size; default 8 MiB
	MaxBytes     int64         // total bound; 0 means 1 GiB
	MaxAge       time.Duration // records older than this are dropped when read; 0 keeps them
	// OnDrop is told of every discard (records and the points they held).
	OnDrop func(reason DropReason, records, points int)
	Now    func() time.Time
}

// Record is one queued batch.
type Record struct {
	Data     []byte
	Count    int // points in Data
	Enqueued time.Time
}

type peekState struct {
	bytes   int64
	records int
	points  int
}

type segment struct {
	id      uint64
	size    int64 // bytes written
	records int   // unread records (from the cursor, for the read segment)
	points  int   // unread points
	bytes   int64 // unread bytes
}

// Queue is safe for one appender and one reader at a time, or more.
type Queue struct {
	opts Options

	mu      sync.Mutex
	segs    []*segment // oldest first; last is the head being written
	head    *os.File
	reader  *os.File // the read segment, opened lazily
	readID  uint64
	readOff int64
	peek    peekState // what the last Peek returned, until Ack
	cursor  *os.File
	wbuf    []byte // Append's record buffer, reused
	notify  chan struct{}
	closed  bool
}

// Open opens or creates the queue in opts.Dir, recovering from a torn last write.
func Open(opts Options) (*Queue, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 8 << 20
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.MaxBytes < 2*opts.SegmentBytes {
		return nil, fmt.Errorf("queue: max_bytes %d must be at least twice the segment size %d", opts.MaxBytes, opts.SegmentBytes)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnDrop == nil {
		opts.OnDrop = func(DropReason, int, int) {}
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue: create %s: %w", opts.Dir, err)
	}
	q := &Queue{opts: opts, notify: make(chan struct{}, 1)}
	if err := q.load(); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Queue) segPath(id uint64) string {
	return filepath.Join(q.opts.Dir, fmt.Sprintf("%020d.seg", id))
}

func (q *Queue) load() error {
	entries, err := os.ReadDir(q.opts.Dir)
	if err != nil {
		return fmt.Errorf("queue: read %s: %w", q.opts.Dir, err)
	}
	var ids []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".seg") {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	curID, curOff, err := q.readCursor()
	if err != nil {
		return err
	}
	for i, id := range ids {
		if id < curID {
			// Fully acknowledged before a crash, not yet removed.
			_ = os.Remove(q.segPath(id))
			continue
		}
		var from int64
		if id == curID {
			from = curOff
		}
		seg, err := q.scan(id, from, i == len(ids)-1)
		if err != nil {
			return err
		}
		q.segs = append(q.segs, seg)
	}
	if len(q.segs) == 0 {
		next := curID
		if next == 0 {
			next = 1
		}
		q.segs = append(q.segs, &segment{id: next})
		q.readID, q.readOff = next, 0
	} else {
		q.readID = q.segs[0].id
		q.readOff = 0
		if q.segs[0].id == curID {
			q.readOff = curOff
		}
	}
	h := q.segs[len(q.segs)-1]
	f, err := os.OpenFile(q.segPath(h.id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("queue: open head segment: %w", err)
	}
	q.head = f
	return nil
}

// scan counts the records of a segment from offset from; for the head segment
// it truncates a torn or corrupt tail, elsewhere it drops the unreadable rest.
func (q *Queue) scan(id uint64, from int64, isHead bool) (*segment, error) {
	path := q.segPath(id)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	seg := &segment{id: id, size: st.Size()}
	off := from
	for off < seg.size {
		n, count, _, err := readRecordAt(f, off, nil)
		if err != nil {
			// Torn write or damage: everything from here on is unreadable.
			if isHead {
				if terr := os.Truncate(path, off); terr != nil {
					return nil, fmt.Errorf("queue: truncate torn tail of %s: %w", path, terr)
				}
			}
			q.opts.OnDrop(DropCorrupt, 1, 0)
			seg.size = off
			break
		}
		seg.records++
		seg.points += count
		seg.bytes += n
		off += n
	}
	return seg, nil
}

// readRecordAt reads the record at off; with buf nil it validates without
// keeping the payload.
func readRecordAt(f *os.File, off int64, keep *Record) (n int64, count int, enq time.Time, err error) {
	var hdr [headerSize]byte
	if _, err = f.ReadAt(hdr[:], off); err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("short header: %w", err)
	}
	length := binary.LittleEndian.Uint32(hdr[0:])
	sum := binary.LittleEndian.Uint32(hdr[4:])
	count = int(binary.LittleEndian.Uint32(hdr[8:]))
	enq = time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[12:])))
	if length > 256<<20 {
		return 0, 0, time.Time{}, errors.New("implausible record length")
	}
	data := make([]byte, length)
	if _, err = f.ReadAt(data, off+headerSize); err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("short payload: %w", err)
	}
	if crc32.Checksum(data, crcTable) != sum {
		return 0, 0, time.Time{}, errors.New("checksum mismatch")
	}
	if keep != nil {
		*keep = Record{Data: data, Count: count, Enqueued: enq}
	}
	return headerSize + int64(length), count, enq, nil
}

func (q *Queue) readCursor() (uint64, int64, error) {
	b, err := os.ReadFile(filepath.Join(q.opts.Dir, "cursor"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("queue: read cursor: %w", err)
	}
	var id uint64
	var off int64
	if _, err := fmt.Sscanf(string(b), "%d %d", &id, &off); err != nil {
		return 0, 0, fmt.Errorf("queue: cursor file %s is damaged (%q): remove it to replay the whole queue", filepath.Join(q.opts.Dir, "cursor"), b)
	}
	return id, off, nil
}

// writeCursor overwrites the fixed-width cursor record in place: one pwrite,
// well inside a disk sector, so it is never torn.
func (q *Queue) writeCursor() error {
	if q.cursor == nil {
		f, err := os.OpenFile(filepath.Join(q.opts.Dir, "cursor"), os.O_CREATE|os.O_RDWR, 0o640)
		if err != nil {
			return fmt.Errorf("queue: open cursor: %w", err)
		}
		q.cursor = f
	}
	if _, err := q.cursor.WriteAt([]byte(fmt.Sprintf("%020d %020d\n", q.readID, q.readOff)), 0); err != nil {
		return fmt.Errorf("queue: write cursor: %w", err)
	}
	return nil
}

// Append adds one record holding count points. When the queue would exceed
// MaxBytes the oldest segment is dropped (and reported through OnDrop).
func (q *Queue) Append(data []byte, count int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errors.New("queue: closed")
	}
	h := q.segs[len(q.segs)-1]
	if h.size > 0 && h.size+headerSize+int64(len(data)) > q.opts.SegmentBytes {
		if err := q.rotate(); err != nil {
			return err
		}
		h = q.segs[len(q.segs)-1]
	}
	q.wbuf = append(q.wbuf[:0], make([]byte, headerSize)...)
	q.wbuf = append(q.wbuf, data...)
	buf := q.wbuf
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(data)))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(data, crcTable))
	binary.LittleEndian.PutUint32(buf[8:], uint32(count))
	binary.LittleEndian.PutUint64(buf[12:], uint64(q.opts.Now().UnixNano()))
	if _, err := q.head.Write(buf); err != nil {
		// A partial write leaves a torn record that Open truncates; make the
		// in-memory size match what a reader may safely read.
		return fmt.Errorf("queue: append: %w", err)
	}
	h.size += int64(len(buf))
	h.records++
	h.points += count
	h.bytes += int64(len(buf))
	for q.totalBytesLocked() > q.opts.MaxBytes && len(q.segs) > 1 {
		if err := q.dropOldestLocked(); err != nil {
			return err
		}
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

func (q *Queue) rotate() error {
	if err := q.head.Sync(); err != nil {
		return fmt.Errorf("queue: sync segment: %w", err)
	}
	if err := q.head.Close(); err != nil {
		return fmt.Errorf("queue: close segment: %w", err)
	}
	id := q.segs[len(q.segs)-1].id + 1
	f, err := os.OpenFile(q.segPath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("queue: new segment: %w", err)
	}
	q.head = f
	q.segs = append(q.segs, &segment{id: id})
	return nil
}

func (q *Queue) totalBytesLocked() int64 {
	var n int64
	for _, s := range q.segs {
		n += s.bytes
	}
	return n
}

func (q *Queue) dropOldestLocked() error {
	old := q.segs[0]
	q.opts.OnDrop(DropFull, old.records, old.points)
	q.segs = q.segs[1:]
	if q.reader != nil && q.readID == old.id {
		q.reader.Close()
		q.reader = nil
	}
	q.readID, q.readOff, q.peek = q.segs[0].id, 0, peekState{}
	if err := q.writeCursor(); err != nil {
		return err
	}
	if err := os.Remove(q.segPath(old.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: remove dropped segment: %w", err)
	}
	return nil
}

// Peek returns the oldest unacknowledged record. ok is false when the queue
// is empty. Records older than MaxAge are dropped on the way.
func (q *Queue) Peek() (Record, bool, error) { return q.PeekBatch(0) }

// PeekBatch returns consecutive unacknowledged records of one segment,
// joined, holding at most maxPoints points (but always at least one record
// when the queue is not empty; maxPoints 0 means exactly one). Ack
// acknowledges all of them. The records after the first are read from the
// segment with one pread.
func (q *Queue) PeekBatch(maxPoints int) (rec Record, ok bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.peek = peekState{}
	first, n, ok, err := q.nextLocked()
	if err != nil || !ok {
		return Record{}, false, err
	}
	rec = first
	q.peek = peekState{bytes: n, records: 1, points: first.Count}
	seg := q.segs[0]
	rest := seg.size - q.readOff - n
	if maxPoints <= first.Count || rest <= 0 {
		return rec, true, nil
	}
	chunk := make([]byte, min(rest, 8<<20))
	if _, err := q.reader.ReadAt(chunk, q.readOff+n); err != nil && !errors.Is(err, io.EOF) {
		return rec, true, nil // the rest is read record by record next time
	}
	data := make([]byte, 0, len(first.Data)+len(chunk))
	data = append(data, first.Data...)
	for off := 0; off+headerSize <= len(chunk); {
		length := int(binary.LittleEndian.Uint32(chunk[off:]))
		count := int(binary.LittleEndian.Uint32(chunk[off+8:]))
		end := off + headerSize + length
		if end > len(chunk) || rec.Count+count > maxPoints {
			break
		}
		payload := chunk[off+headerSize : end]
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(chunk[off+4:]) {
			break // damage: handled when the cursor reaches it
		}
		data = append(data, payload...)
		rec.Count += count
		q.peek.bytes += int64(end - off)
		q.peek.records++
		q.peek.points += count
		off = end
	}
	rec.Data = data
	return rec, true, nil
}

// nextLocked reads the record at the cursor, first moving past finished
// segments, damaged data and expired records.
func (q *Queue) nextLocked() (rec Record, n int64, ok bool, err error) {
	for {
		if q.closed {
			return Record{}, 0, false, errors.New("queue: closed")
		}
		seg := q.segs[0]
		if q.readOff >= seg.size {
			if len(q.segs) == 1 {
				return Record{}, 0, false, nil
			}
			if err := q.advanceSegmentLocked(); err != nil {
				return Record{}, 0, false, err
			}
			continue
		}
		if q.reader == nil {
			f, err := os.Open(q.segPath(q.readID))
			if err != nil {
				return Record{}, 0, false, fmt.Errorf("queue: open segment: %w", err)
			}
			q.reader = f
		}
		n, _, _, rerr := readRecordAt(q.reader, q.readOff, &rec)
		if rerr != nil {
			// Damage in the middle of the queue: skip the rest of this segment.
			q.opts.OnDrop(DropCorrupt, seg.records, seg.points)
			seg.records, seg.points, seg.bytes = 0, 0, 0
			q.readOff = seg.size
			continue
		}
		if q.opts.MaxAge > 0 && q.opts.Now().Sub(rec.Enqueued) > q.opts.MaxAge {
			q.opts.OnDrop(DropAge, 1, rec.Count)
			q.consumeLocked(n, 1, rec.Count)
			if err := q.writeCursor(); err != nil {
				return Record{}, 0, false, err
			}
			continue
		}
		return rec, n, true, nil
	}
}

func (q *Queue) consumeLocked(bytes int64, records, points int) {
	seg := q.segs[0]
	q.readOff += bytes
	seg.records -= records
	seg.points -= points
	seg.bytes -= bytes
}

func (q *Queue) advanceSegmentLocked() error {
	old := q.segs[0]
	if q.reader != nil {
		q.reader.Close()
		q.reader = nil
	}
	q.segs = q.segs[1:]
	q.readID, q.readOff = q.segs[0].id, 0
	if err := q.writeCursor(); err != nil {
		return err
	}
	if err := os.Remove(q.segPath(old.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: remove consumed segment: %w", err)
	}
	return nil
}

// Ack removes the records returned by the last Peek or PeekBatch.
func (q *Queue) Ack() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.peek.records == 0 {
		// Nothing peeked, or the peeked records' segment was dropped for
		// space meanwhile (and counted as dropped).
		return nil
	}
	q.consumeLocked(q.peek.bytes, q.peek.records, q.peek.points)
	q.peek = peekState{}
	return q.writeCursor()
}

// Notify is signalled (coalesced) after each Append.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

// Stats are the queue's current contents.
type Stats struct {
	Records  int
	Points   int
	Bytes    int64
	Segments int
}

// Stats reports what is queued and unacknowledged.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s Stats
	for _, seg := range q.segs {
		s.Records += seg.records
		s.Points += seg.points
		s.Bytes += seg.bytes
	}
	s.Segments = len(q.segs)
	return s
}

// Sync flushes the head segment to stable storage.
func (q *Queue) Sync() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	return q.head.Sync()
}

// Close syncs and closes the queue; it is safe to call twice.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	var errs []error
	if q.reader != nil {
		errs = append(errs, q.reader.Close())
	}
	if q.cursor != nil {
		errs = append(errs, q.cursor.Sync(), q.cursor.Close())
	}
	errs = append(errs, q.head.Sync(), q.head.Close())
	return errors.Join(errs...)
}

var _ io.Closer = (*Queue)(nil)
