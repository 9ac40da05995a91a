package queue

import (
	"io"
	"os"
)

// FS is the file-system layer the queue uses: the few operations it needs,
// so tests can inject short writes, ENOSPC, failed syncs and power cuts.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	ReadDir(dir string) ([]string, error) // file names, any order
	Remove(name string) error
	Rename(oldpath, newpath string) error
	SyncDir(dir string) error // fsync the directory: makes creates, renames and removes durable
}

// File is an open file. It mirrors the methods of *os.File the queue uses;
// Sync is fdatasync (data and size, not timestamps) where the OS has it.
type File interface {
	io.ReaderAt
	io.Writer
	io.Closer
	Truncate(size int64) error
	Sync() error
	Size() (int64, error)
}

// OSFS is the real file system.
type OSFS struct{}

var (
	_ FS   = OSFS{}
	_ File = (*osFile)(nil)
)

type osFile struct{ *os.File }

func (f *osFile) Sync() error { return fdatasync(f.File) }

func (f *osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// OpenFile opens name with os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &osFile{f}, nil
}

// ReadDir lists the names in dir.
func (OSFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Remove removes a file.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename renames a file (atomically replacing newpath on POSIX systems).
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// SyncDir fsyncs a directory.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	if cerr := d.Close(); serr == nil {
		serr = cerr
	}
	return serr
}
