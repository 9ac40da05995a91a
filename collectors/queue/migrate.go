package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version 1 of the queue (before record markers) kept DIR/<id>.seg files of
// [len u32][crc32c of payload u32][count u32][enqueued i64][payload] and a
// cursor "<id> <offset>" into them. migrateV1 converts what is unread in
// them into .wal segments of the same ids, so an upgrade loses nothing
// queued. Each step is safe to repeat after a crash: .wal files are written
// through a temp file and renamed; the version-2 cursor is written only
// after every .wal is durable; .seg files are removed last, and leftovers
// next to a version-2 cursor are simply removed.
const (
	v1Ext        = ".seg"
	v1HeaderSize = 20
)

func (q *Queue) migrateV1(names []string, cur cursorState, ids []uint64) (cursorState, []uint64, error) {
	var old []uint64
	for _, name := range names {
		if id, err := strconv.ParseUint(strings.TrimSuffix(name, v1Ext), 10, 64); err == nil && strings.HasSuffix(name, v1Ext) {
			old = append(old, id)
		}
	}
	if len(old) == 0 {
		return cur, ids, nil
	}
	slices.Sort(old)
	v1Path := func(id uint64) string { return filepath.Join(q.opts.Dir, fmt.Sprintf("%020d%s", id, v1Ext)) }
	if cur.ok && !cur.v1 {
		// Migrated before a crash; only the removal was left to do.
		for _, id := range old {
			if err := q.fs.Remove(v1Path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return cur, ids, fmt.Errorf("queue: remove migrated %s: %w", v1Path(id), err)
			}
		}
		return cur, ids, nil
	}
	first := uint64(0)
	for _, id := range old {
		if cur.ok && id < cur.id {
			continue // acknowledged before the upgrade
		}
		var from int64
		if cur.ok && id == cur.id {
			from = cur.off
		}
		if err := q.convertV1(v1Path(id), q.segPath(id), from); err != nil {
			return cur, ids, err
		}
		if first == 0 {
			first = id
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if err := q.fs.SyncDir(q.opts.Dir); err != nil {
		return cur, ids, fmt.Errorf("queue: migrate: %w", err)
	}
	if first == 0 { // everything was acknowledged: start after the old segments
		first = old[len(old)-1] + 1
	}
	cur = cursorState{id: first, ok: true}
	if err := q.writeCursorFile(first, 0); err != nil {
		return cur, ids, err
	}
	for _, id := range old {
		if err := q.fs.Remove(v1Path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return cur, ids, fmt.Errorf("queue: remove migrated %s: %w", v1Path(id), err)
		}
	}
	return cur, ids, nil
}

// convertV1 writes the intact version-1 records of src from offset from on
// as a version-2 segment dst. Records after the first damaged one cannot
// be found again (version 1 had no markers); they are counted as dropped.
func (q *Queue) convertV1(src, dst string, from int64) error {
	f, err := q.fs.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("queue: migrate %s: %w", src, err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return fmt.Errorf("queue: migrate %s: %w", src, err)
	}
	b := make([]byte, size)
	_, err = f.ReadAt(b, 0)
	f.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("queue: migrate %s: %w", src, err)
	}
	var out []byte
	off := min(from, size)
	for off < size {
		rest := b[off:]
		if len(rest) < v1HeaderSize {
			break
		}
		length := int64(binary.LittleEndian.Uint32(rest))
		if length == 0 || length > maxRecordBytes || int64(len(rest)) < v1HeaderSize+length {
			break
		}
		payload := rest[v1HeaderSize : v1HeaderSize+length]
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(rest[4:]) {
			break
		}
		count := int(binary.LittleEndian.Uint32(rest[8:]))
		enq := time.Unix(0, int64(binary.LittleEndian.Uint64(rest[12:])))
		out = appendRecord(out, payload, count, enq)
		off += v1HeaderSize + length
	}
	if off < size {
		q.opts.OnDrop(DropCorrupt, 1, 0, size-off)
	}
	tmp := dst + ".tmp"
	w, err := q.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("queue: migrate %s: %w", src, err)
	}
	_, err = w.Write(out)
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = q.fs.Rename(tmp, dst)
	}
	if err != nil {
		return fmt.Errorf("queue: migrate %s: %w", src, err)
	}
	return nil
}
