package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The queue directory records the format it is written in, so that a
// gateway older than its state refuses it instead of misreading it (after
// a downgrade, or a backup from a newer release restored on an older one):
//
//	DIR/FORMAT: "propgate-queue <version>\n"
//
// Version 2 is the record-marker format with the checksummed v2 cursor;
// version 1 (DIR/<id>.seg, no FORMAT file) is migrated on open. A newer
// cursor ("v3 …") is refused the same way.
const (
	formatName    = "FORMAT"
	formatMagic   = "propgate-queue"
	FormatVersion = 2
)

// ErrNewerFormat is wrapped when the queue directory was written by a newer
// gateway: nothing is read, changed or removed.
var ErrNewerFormat = errors.New("written by a newer gateway")

// checkFormat refuses a directory in a newer format; a missing or older
// FORMAT file is (re)written after the queue has loaded.
func (q *Queue) checkFormat() (current bool, err error) {
	f, err := q.fs.OpenFile(filepath.Join(q.opts.Dir, formatName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, q.checkCursorVersion()
	}
	if err != nil {
		return false, fmt.Errorf("queue: open format: %w", err)
	}
	defer f.Close()
	b := make([]byte, 64)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("queue: read format: %w", err)
	}
	fields := strings.Fields(string(b[:n]))
	v, perr := 0, error(nil)
	if len(fields) == 2 && fields[0] == formatMagic {
		v, perr = strconv.Atoi(fields[1])
	}
	if len(fields) != 2 || fields[0] != formatMagic || perr != nil {
		// Not ours to judge: a damaged marker says nothing about the records.
		return false, q.checkCursorVersion()
	}
	if v > FormatVersion {
		return false, fmt.Errorf("queue: %s is in queue format %d, %w than this one (format %d): upgrade the gateway, or restore a backup made by this version",
			q.opts.Dir, v, ErrNewerFormat, FormatVersion)
	}
	return v == FormatVersion, q.checkCursorVersion()
}

// checkCursorVersion refuses a cursor written in a newer form ("v3 …").
func (q *Queue) checkCursorVersion() error {
	f, err := q.fs.OpenFile(filepath.Join(q.opts.Dir, cursorName), os.O_RDONLY, 0)
	if err != nil {
		return nil // missing or unreadable: readCursor decides
	}
	defer f.Close()
	b := make([]byte, 8)
	n, _ := f.ReadAt(b, 0)
	s := string(b[:n])
	if len(s) < 2 || s[0] != 'v' {
		return nil
	}
	end := 1
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if v, err := strconv.Atoi(s[1:end]); err == nil && end < len(s) && s[end] == ' ' && v > 2 {
		return fmt.Errorf("queue: the cursor in %s is in version %d, %w than this one (2): upgrade the gateway, or restore a backup made by this version",
			q.opts.Dir, v, ErrNewerFormat)
	}
	return nil
}

// writeFormat records the current format (best effort: without it an
// older gateway simply cannot tell, as before this file existed).
func (q *Queue) writeFormat() {
	path := filepath.Join(q.opts.Dir, formatName)
	f, err := q.fs.OpenFile(path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return
	}
	_, err = fmt.Fprintf(f, "%s %d\n", formatMagic, FormatVersion)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && q.fs.Rename(path+".tmp", path) == nil {
		_ = q.fs.SyncDir(q.opts.Dir)
	}
}
