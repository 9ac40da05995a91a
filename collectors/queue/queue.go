// Package queue is a bounded, durable FIFO of records kept in segment files
// on disk. The InfluxDB writer puts every batch through it, so points
// survive an InfluxDB outage, a gateway crash and a power cut, and are
// replayed in order.
//
// Layout: DIR/<id>.wal segment files, each a run of records (see record.go:
// marker, CRC32C over header and payload, length, point count, enqueue
// time), and DIR/cursor holding the position of the first unacknowledged
// record, replaced atomically (temp file, fdatasync, rename, directory
// fsync) on every Ack.
//
// Durability: Append writes to the page cache; Sync makes every record
// appended before it durable with one fdatasync (group commit), and a new
// segment's directory entry is fsynced when the segment is created.
// Delivery is at least once: a record sent but not yet acknowledged when the
// process dies is sent again. docs/queue.md has the details.
package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DropReason says why records were discarded.
type DropReason string

// Reasons the queue discards records; each is counted by the owner.
const (
	DropFull    DropReason = "queue_full" // MaxBytes reached: oldest segment dropped
	DropAge     DropReason = "too_old"    // older than MaxAge when read
	DropCorrupt DropReason = "corrupt"    // failed its checksum in a sealed segment or mid-segment (disk damage)
	DropTorn    DropReason = "torn_tail"  // unreadable tail of the head segment at open: a write never synced before a crash
)

// ErrClosed is returned by operations on a closed queue.
var ErrClosed = errors.New("queue: closed")

// Options configure a queue.
type Options struct {
	Dir          string
	SegmentBytes int64         // rotate segments at this size; default 8 MiB
	MaxBytes     int64         // total bound; 0 means 1 GiB
	MaxAge       time.Duration // records older than this are dropped when read; 0 keeps them
	// OnDrop is told of every discard: records and the points they held
	// (points only where a header could be trusted) and the bytes skipped.
	OnDrop func(reason DropReason, records, points int, bytes int64)
	// OnCursorReset is told when the stored read position could not be used
	// (damaged, or past the end of its segment) and delivery restarts from
	// an earlier position: records may be delivered twice.
	OnCursorReset func(err error)
	Now           func() time.Time
	FS            FS // default OSFS{}
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

// pos is a position in the queue: segment id, then offset.
type pos struct {
	id  uint64
	off int64
}

func (p pos) less(o pos) bool { return p.id < o.id || p.id == o.id && p.off < o.off }

// hole is a damaged byte range found at open, already counted, that the
// reader jumps over.
type hole struct{ from, to int64 }

type segment struct {
	id      uint64
	size    int64 // bytes written (records and holes)
	records int   // unread records (from the cursor, for the read segment)
	points  int   // unread points
	bytes   int64 // unread bytes
	holes   []hole
}

// Queue is safe for concurrent use by appenders and one reader.
type Queue struct {
	opts Options
	fs   FS

	syncMu sync.Mutex // one Sync at a time; taken before mu
	mu     sync.Mutex
	segs   []*segment // oldest first; last is the head being written
	head   *headFile
	synced pos // everything before this is on stable storage

	reader  File // the read segment, opened lazily
	readID  uint64
	readOff int64
	peek    peekState // what the last Peek returned, until Ack
	wbuf    []byte    // Append's record buffer, reused
	rbuf    []byte    // PeekBatch's read-ahead buffer (peekChunk), reused
	dbuf    []byte    // PeekBatch's joined records, reused
	notify  chan struct{}
	closed  bool
}

type headFile struct {
	id     uint64
	f      File
	broken bool // a failed write could not be truncated away: rotate before the next append
}

// Open opens or creates the queue in opts.Dir, recovering from a torn last
// write, damaged records and a damaged cursor (all counted through the
// callbacks). It fails only on I/O errors.
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
		opts.OnDrop = func(DropReason, int, int, int64) {}
	}
	if opts.OnCursorReset == nil {
		opts.OnCursorReset = func(error) {}
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue: create %s: %w", opts.Dir, err)
	}
	q := &Queue{opts: opts, fs: opts.FS, notify: make(chan struct{}, 1), rbuf: make([]byte, peekChunk)}
	current, err := q.checkFormat()
	if err != nil {
		return nil, err
	}
	if err := q.load(); err != nil {
		return nil, err
	}
	if !current {
		q.writeFormat()
	}
	return q, nil
}

const segExt = ".wal"

func (q *Queue) segPath(id uint64) string {
	return filepath.Join(q.opts.Dir, fmt.Sprintf("%020d%s", id, segExt))
}

func (q *Queue) load() error {
	names, err := q.fs.ReadDir(q.opts.Dir)
	if err != nil {
		return fmt.Errorf("queue: read %s: %w", q.opts.Dir, err)
	}
	var ids []uint64
	for _, name := range names {
		if name == cursorTmp || name == formatName+".tmp" || strings.HasSuffix(name, segExt+".tmp") {
			_ = q.fs.Remove(filepath.Join(q.opts.Dir, name)) // an interrupted cursor write or migration
			continue
		}
		if !strings.HasSuffix(name, segExt) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	cur, err := q.readCursor()
	if errors.Is(err, errCursorDamaged) {
		// Replay from the oldest segment: at least once, never lost.
		q.opts.OnCursorReset(fmt.Errorf("queue: %w; delivering again from the oldest segment", err))
		cur = cursorState{}
	} else if err != nil {
		return err
	}
	if cur, ids, err = q.migrateV1(names, cur, ids); err != nil {
		return err
	}
	curID, curOff, haveCursor := cur.id, cur.off, cur.ok
	if haveCursor && len(ids) > 0 && curID > ids[len(ids)-1] {
		// Every segment on disk is older than the cursor: fully acknowledged.
		// Keep them only if the cursor is not plausible (it never runs ahead
		// of the newest segment by more than one rotation).
		if curID > ids[len(ids)-1]+1 {
			q.opts.OnCursorReset(fmt.Errorf("queue: cursor names segment %d, newest on disk is %d; delivering again from the oldest segment", curID, ids[len(ids)-1]))
			curID, curOff = 0, 0
		}
	}
	for i, id := range ids {
		if id < curID {
			// Fully acknowledged before a crash, not yet removed.
			if err := q.fs.Remove(q.segPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("queue: remove acknowledged segment: %w", err)
			}
			continue
		}
		var from int64
		if id == curID {
			from = curOff
		}
		seg, from, err := q.scan(id, from, i == len(ids)-1)
		if err != nil {
			return err
		}
		if len(q.segs) == 0 {
			q.readID, q.readOff = id, from
		}
		q.segs = append(q.segs, seg)
	}
	if len(q.segs) == 0 {
		next := max(curID, 1)
		if len(ids) > 0 {
			next = max(next, ids[len(ids)-1]+1)
		}
		return q.createHeadLocked(next)
	}
	h := q.segs[len(q.segs)-1]
	f, err := q.fs.OpenFile(q.segPath(h.id), os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("queue: open head segment: %w", err)
	}
	// What a killed process wrote may still be only in the page cache:
	// make everything found durable before anything builds on it.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("queue: sync head segment: %w", err)
	}
	q.head = &headFile{id: h.id, f: f}
	q.synced = pos{h.id, h.size}
	return nil
}

// scan reads segment id and counts its records from offset from on. A
// damaged range is counted, remembered as a hole and skipped; an unreadable
// tail of the head segment is a write cut short by a crash and truncated.
// It returns the read offset to use, moved back to a record boundary (or on
// to the end of a damaged range) if the cursor was not on one.
func (q *Queue) scan(id uint64, from int64, isHead bool) (*segment, int64, error) {
	path := q.segPath(id)
	f, err := q.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("queue: open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("queue: stat %s: %w", path, err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("queue: read %s: %w", path, err)
	}
	seg := &segment{id: id}
	off := 0
	for off < len(b) {
		rec, n, err := decodeRecord(b[off:])
		if err == nil {
			switch {
			case int64(off) >= from:
				seg.records++
				seg.points += rec.Count
				seg.bytes += int64(n)
			case int64(off+n) > from: // cursor inside a record: deliver it again
				q.opts.OnCursorReset(fmt.Errorf("queue: cursor %d:%d is not at a record start; delivering again from %d", id, from, off))
				from = int64(off)
				seg.records++
				seg.points += rec.Count
				seg.bytes += int64(n)
			}
			off += n
			continue
		}
		d := skipDamage(b, off)
		if d.next == len(b) && isHead {
			if err := q.truncateTail(path, int64(off)); err != nil {
				return nil, 0, err
			}
			if int64(off) < from {
				q.opts.OnCursorReset(fmt.Errorf("queue: cursor %d:%d is past the last intact record (%d); reading on from there", id, from, off))
				from = int64(off)
			}
			q.opts.OnDrop(DropTorn, d.records, d.points, int64(len(b)-off))
			b = b[:off]
			break
		}
		switch {
		case int64(off) >= from:
			q.opts.OnDrop(DropCorrupt, d.records, d.points, int64(d.next-off))
		case int64(d.next) > from: // cursor inside the damage: what follows it is unknown
			from = int64(d.next)
		}
		seg.holes = append(seg.holes, hole{int64(off), int64(d.next)})
		off = d.next
	}
	seg.size = int64(len(b))
	if from > seg.size {
		q.opts.OnCursorReset(fmt.Errorf("queue: cursor %d:%d is past the end of its segment (%d bytes); reading on from there", id, from, seg.size))
		from = seg.size
	}
	return seg, from, nil
}

func (q *Queue) truncateTail(path string, size int64) error {
	f, err := q.fs.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("queue: truncate torn tail of %s: %w", path, err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("queue: truncate torn tail of %s: %w", path, err)
	}
	return nil
}

// createHeadLocked creates segment id as the new head and fsyncs the
// directory so its entry survives a power cut.
func (q *Queue) createHeadLocked(id uint64) error {
	path := q.segPath(id)
	f, err := q.fs.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("queue: new segment: %w", err)
	}
	if err := q.fs.SyncDir(q.opts.Dir); err != nil {
		f.Close()
		_ = q.fs.Remove(path)
		return fmt.Errorf("queue: new segment: sync directory: %w", err)
	}
	if len(q.segs) == 0 {
		q.readID, q.readOff = id, 0
	}
	q.segs = append(q.segs, &segment{id: id})
	q.head = &headFile{id: id, f: f}
	q.synced = pos{id, 0}
	return nil
}

// Append adds one record holding count points. It is durable after the next
// Sync returns nil. On a write error the head segment is truncated back to
// its last good record, so later appends stay readable. When the queue
// would exceed MaxBytes the oldest segment is dropped (and reported).
func (q *Queue) Append(data []byte, count int) error {
	if len(data) == 0 || len(data) > maxRecordBytes {
		return fmt.Errorf("queue: append: record of %d bytes; must be 1..%d", len(data), maxRecordBytes)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	h := q.segs[len(q.segs)-1]
	if q.head.broken || h.size > 0 && h.size+headerSize+int64(len(data)) > q.opts.SegmentBytes {
		if err := q.rotateLocked(); err != nil {
			return err
		}
		h = q.segs[len(q.segs)-1]
	}
	q.wbuf = appendRecord(q.wbuf[:0], data, count, q.opts.Now())
	if n, err := q.head.f.Write(q.wbuf); err != nil || n != len(q.wbuf) {
		if err == nil {
			err = io.ErrShortWrite
		}
		// Remove the torn bytes, so the next record follows the last good
		// one. If that fails too, seal this segment at its good size.
		if terr := q.head.f.Truncate(h.size); terr != nil {
			q.head.broken = true
			err = errors.Join(err, fmt.Errorf("truncate after failed write: %w", terr))
		}
		return fmt.Errorf("queue: append: %w", err)
	}
	h.size += int64(len(q.wbuf))
	h.records++
	h.points += count
	h.bytes += int64(len(q.wbuf))
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

// rotateLocked seals the head (fdatasync) and starts a new segment. On
// error nothing has changed.
func (q *Queue) rotateLocked() error {
	old := q.head
	// Even a broken head is synced: its records before the torn bytes
	// count as durable once the next segment exists.
	if err := q.syncHeadLocked(); err != nil {
		return err
	}
	if err := q.createHeadLocked(old.id + 1); err != nil {
		q.head = old
		return err
	}
	_ = old.f.Close() // its data is synced; a close error changes nothing
	return nil
}

// syncHeadLocked fdatasyncs the head segment with mu held.
func (q *Queue) syncHeadLocked() error {
	target := pos{q.head.id, q.segs[len(q.segs)-1].size}
	if !q.synced.less(target) {
		return nil
	}
	if err := q.head.f.Sync(); err != nil {
		return fmt.Errorf("queue: sync segment: %w", err)
	}
	q.synced = target
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
	q.opts.OnDrop(DropFull, old.records, old.points, old.bytes)
	q.segs = q.segs[1:]
	if q.reader != nil && q.readID == old.id {
		q.reader.Close()
		q.reader = nil
	}
	q.readID, q.readOff, q.peek = q.segs[0].id, 0, peekState{}
	if err := q.writeCursorLocked(); err != nil {
		return err
	}
	if err := q.fs.Remove(q.segPath(old.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
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
// segment with one pread of at most peekChunk bytes (a record that does not
// fit waits for the next batch). With maxPoints > 0, rec.Data is the
// queue's own buffer, valid until the next Peek or PeekBatch.
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
	chunk := q.rbuf[:min(rest, peekChunk)]
	if _, err := q.reader.ReadAt(chunk, q.readOff+n); err != nil && !errors.Is(err, io.EOF) {
		return rec, true, nil // the rest is read record by record next time
	}
	data := append(q.dbuf[:0], first.Data...)
	for off := 0; off < len(chunk); {
		r, size, err := decodeRecord(chunk[off:])
		if err != nil || rec.Count+r.Count > maxPoints {
			break // damage is handled when the cursor reaches it; a cut record is read next time
		}
		data = append(data, r.Data...)
		rec.Count += r.Count
		q.peek.bytes += int64(size)
		q.peek.records++
		q.peek.points += r.Count
		off += size
	}
	q.dbuf = data
	rec.Data = data
	return rec, true, nil
}

// peekChunk bounds PeekBatch's read ahead (one pread, one reused buffer).
const peekChunk = 1 << 20

// nextLocked reads the record at the cursor, first moving past finished
// segments, damaged data and expired records.
func (q *Queue) nextLocked() (rec Record, n int64, ok bool, err error) {
	dirty := false // the read position moved past dropped records
	defer func() {
		if dirty && err == nil {
			err = q.writeCursorLocked()
		}
	}()
	for {
		if q.closed {
			return Record{}, 0, false, ErrClosed
		}
		seg := q.segs[0]
		for _, h := range seg.holes {
			if q.readOff == h.from {
				q.readOff = h.to // counted at open
			}
		}
		if q.readOff >= seg.size {
			if len(q.segs) == 1 {
				return Record{}, 0, false, nil
			}
			if err := q.advanceSegmentLocked(); err != nil {
				return Record{}, 0, false, err
			}
			dirty = false // advanceSegmentLocked wrote the cursor
			continue
		}
		if q.reader == nil {
			f, err := q.fs.OpenFile(q.segPath(q.readID), os.O_RDONLY, 0)
			if err != nil {
				return Record{}, 0, false, fmt.Errorf("queue: open segment: %w", err)
			}
			q.reader = f
		}
		rec, n, err = readRecordAt(q.reader, q.readOff, seg.size)
		if errors.Is(err, ErrCorrupt) {
			// Damaged since open (or while running): find the next good
			// record in this segment and count what lies between.
			if err := q.skipDamageLocked(seg); err != nil {
				return Record{}, 0, false, err
			}
			dirty = true
			continue
		}
		if err != nil {
			return Record{}, 0, false, err
		}
		if q.opts.MaxAge > 0 && q.opts.Now().Sub(rec.Enqueued) > q.opts.MaxAge {
			q.opts.OnDrop(DropAge, 1, rec.Count, n)
			q.consumeLocked(n, 1, rec.Count)
			dirty = true
			continue
		}
		return rec, n, true, nil
	}
}

func (q *Queue) skipDamageLocked(seg *segment) error {
	b := make([]byte, seg.size-q.readOff)
	if _, err := q.reader.ReadAt(b, q.readOff); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("queue: read segment: %w", err)
	}
	d := skipDamage(b, 0)
	q.opts.OnDrop(DropCorrupt, d.records, d.points, int64(d.next))
	q.consumeLocked(int64(d.next), d.records, d.points)
	seg.records, seg.points, seg.bytes = max(seg.records, 0), max(seg.points, 0), max(seg.bytes, 0)
	return nil
}

// readRecordAt reads and checks the record at off in a segment of size
// bytes; the payload is a fresh copy.
func readRecordAt(f File, off, size int64) (Record, int64, error) {
	var hdr [headerSize]byte
	if size-off < headerSize {
		return Record{}, 0, errTruncated
	}
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return Record{}, 0, fmt.Errorf("queue: read record: %w", err)
	}
	length := int64(hdr[8]) | int64(hdr[9])<<8 | int64(hdr[10])<<16 | int64(hdr[11])<<24
	if length == 0 || length > maxRecordBytes || off+headerSize+length > size {
		return Record{}, 0, errBadLength
	}
	buf := make([]byte, headerSize+length)
	if _, err := f.ReadAt(buf, off); err != nil {
		return Record{}, 0, fmt.Errorf("queue: read record: %w", err)
	}
	rec, n, err := decodeRecord(buf)
	return rec, int64(n), err
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
	if err := q.writeCursorLocked(); err != nil {
		return err
	}
	if err := q.fs.Remove(q.segPath(old.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: remove consumed segment: %w", err)
	}
	return nil
}

// Ack removes the records returned by the last Peek or PeekBatch and
// persists the read position.
func (q *Queue) Ack() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.peek.records == 0 {
		// Nothing peeked, or the peeked records' segment was dropped for
		// space meanwhile (and counted as dropped).
		return nil
	}
	q.consumeLocked(q.peek.bytes, q.peek.records, q.peek.points)
	q.peek = peekState{}
	return q.writeCursorLocked()
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

// Sync makes every record appended before the call durable: one fdatasync
// of the head segment (earlier segments were synced when sealed, and each
// segment's directory entry when it was created). Concurrent callers share
// one fdatasync (group commit); with nothing new to sync it costs nothing.
// The fdatasync runs without blocking Append and Peek.
func (q *Queue) Sync() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	target := pos{q.head.id, q.segs[len(q.segs)-1].size}
	if !q.synced.less(target) {
		q.mu.Unlock()
		return nil
	}
	f := q.head.f
	q.mu.Unlock()

	err := f.Sync()

	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.synced.less(target) {
		return nil // a rotation synced it meanwhile (and may have closed f)
	}
	if err != nil {
		return fmt.Errorf("queue: sync segment: %w", err)
	}
	q.synced = target
	return nil
}

// Close syncs and closes the queue; it is safe to call twice.
func (q *Queue) Close() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
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
	errs = append(errs, q.syncHeadLocked(), q.head.f.Close())
	return errors.Join(errs...)
}

var _ io.Closer = (*Queue)(nil)
