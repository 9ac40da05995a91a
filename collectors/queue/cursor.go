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

func parseCursor(b []byte) (uint64, int64, error) {
	f := strings.Fields(string(b))
	var idS, offS string
	switch {
	case len(f) == 4 && f[0] == "v2":
		idS, offS = f[1], f[2]
		want, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || crc32.Checksum([]byte(idS+" "+offS), crcTable) != uint32(want) {
			return 0, 0, fmt.Errorf("%w: checksum mismatch in %q", errCursorDamaged, b)
		}
	case len(f) == 2: // version 1, written in place without a checksum
		idS, offS = f[0], f[1]
	default:
		return 0, 0, fmt.Errorf("%w: %q is not a cursor", errCursorDamaged, truncateForLog(b))
	}
	id, err1 := strconv.ParseUint(idS, 10, 64)
	off, err2 := strconv.ParseInt(offS, 10, 64)
	if err1 != nil || err2 != nil || off < 0 {
		return 0, 0, fmt.Errorf("%w: %q is not a cursor", errCursorDamaged, truncateForLog(b))
	}
	return id, off, nil
}

func truncateForLog(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// readCursor returns the stored position; ok is false when there is none.
// A damaged cursor is reported with an error wrapping errCursorDamaged.
func (q *Queue) readCursor() (id uint64, off int64, ok bool, err error) {
	f, err := q.fs.OpenFile(filepath.Join(q.opts.Dir, cursorName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("queue: open cursor: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, 0, false, fmt.Errorf("queue: read cursor: %w", err)
	}
	b := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, false, fmt.Errorf("queue: read cursor: %w", err)
	}
	id, off, err = parseCursor(b)
	if err != nil {
		return 0, 0, false, err
	}
	return id, off, true, nil
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
	tmp := filepath.Join(q.opts.Dir, cursorTmp)
	f, err := q.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("queue: write cursor: %w", err)
	}
	_, err = f.Write(formatCursor(q.readID, q.readOff))
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
