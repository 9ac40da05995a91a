package queue

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The cursor file holds the position of the first unacknowledged record:
//
//	v2 <segment id> <offset> <crc32c of "<segment id> <offset>", hex>\n
//
// It is replaced atomically: written to cursor.tmp, fdatasynced, renamed
// over cursor, and the directory fsynced. The version-1 form "<id> <off>"
// (no checksum) is still read.
const (
	cursorName = "cursor"
	cursorTmp  = "cursor.tmp"
)

// errCursorDamaged wraps every reason a cursor file cannot be trusted.
var errCursorDamaged = errors.New("cursor damaged")

func formatCursor(id uint64, off int64) []byte {
	pos := fmt.Sprintf("%d %d", id, off)
	return fmt.Appendf(nil, "v2 %s %08x\n", pos, crc32.Checksum([]byte(pos), crcTable))
}

func parseCursor(b []byte) (id uint64, off int64, v1 bool, err error) {
	f := strings.Fields(string(b))
	var idS, offS string
	switch {
	case len(f) == 4 && f[0] == "v2":
		idS, offS = f[1], f[2]
		want, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || crc32.Checksum([]byte(idS+" "+offS), crcTable) != uint32(want) {
			return 0, 0, false, fmt.Errorf("%w: checksum mismatch in %q", errCursorDamaged, b)
		}
	case len(f) == 2: // version 1, written in place without a checksum
		idS, offS, v1 = f[0], f[1], true
	default:
		return 0, 0, false, fmt.Errorf("%w: %q is not a cursor", errCursorDamaged, truncateForLog(b))
	}
	id, err1 := strconv.ParseUint(idS, 10, 64)
	off, err2 := strconv.ParseInt(offS, 10, 64)
	if err1 != nil || err2 != nil || off < 0 {
		return 0, 0, false, fmt.Errorf("%w: %q is not a cursor", errCursorDamaged, truncateForLog(b))
	}
	return id, off, v1, nil
}

func truncateForLog(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// cursorState is what the cursor file says.
type cursorState struct {
	id  uint64
	off int64
	ok  bool // a cursor file exists and is intact
	v1  bool // written by version 1 (offsets into .seg files)
}

// readCursor returns the stored position. A damaged cursor is reported
// with an error wrapping errCursorDamaged.
func (q *Queue) readCursor() (cursorState, error) {
	f, err := q.fs.OpenFile(filepath.Join(q.opts.Dir, cursorName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return cursorState{}, nil
	}
	if err != nil {
		return cursorState{}, fmt.Errorf("queue: open cursor: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return cursorState{}, fmt.Errorf("queue: read cursor: %w", err)
	}
	b := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return cursorState{}, fmt.Errorf("queue: read cursor: %w", err)
	}
	id, off, v1, err := parseCursor(b)
	if err != nil {
		return cursorState{}, err
	}
	return cursorState{id: id, off: off, ok: true, v1: v1}, nil
}

// writeCursorLocked persists the read position atomically. The records
// before it must be durable first, or a power cut could leave the cursor
// past the end of its segment: the head is synced if the reader got ahead
// of the last sync.
func (q *Queue) writeCursorLocked() error {
	if q.synced.less(pos{q.readID, q.readOff}) {
		if err := q.syncHeadLocked(); err != nil {
			return err
		}
	}
	return q.writeCursorFile(q.readID, q.readOff)
}

// writeCursorFile replaces the cursor file atomically and durably.
func (q *Queue) writeCursorFile(id uint64, off int64) error {
	tmp := filepath.Join(q.opts.Dir, cursorTmp)
	f, err := q.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("queue: write cursor: %w", err)
	}
	_, err = f.Write(formatCursor(id, off))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = q.fs.Rename(tmp, filepath.Join(q.opts.Dir, cursorName))
	}
	if err == nil {
		err = q.fs.SyncDir(q.opts.Dir)
	}
	if err != nil {
		return fmt.Errorf("queue: write cursor: %w", err)
	}
	return nil
}
