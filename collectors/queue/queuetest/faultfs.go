// Package queuetest has a fault-injecting file system for testing the
// durable queue and its users: failing and short writes (disk full),
// failing syncs and truncates, and a simulated power cut that throws away
// whatever was not made durable with fdatasync or a directory fsync.
package queuetest

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/propgate/gateway/collectors/queue"
)

// FaultFS wraps the real file system. The zero value is not usable; use New.
type FaultFS struct {
	inner queue.OSFS

	mu         sync.Mutex
	files      map[string]*fileState
	writeFault func(path string, n int) (int, error)
	syncErr    error
	syncHook   func()
	truncErr   error
	syncs      int
	dirSyncs   int
}

type fileState struct {
	durable     int64 // bytes on stable storage (as of the last successful Sync)
	undurableDE bool  // created (or renamed here) since the directory's last fsync
}

var (
	_ queue.FS   = (*FaultFS)(nil)
	_ queue.File = (*faultFile)(nil)
)

// New returns a FaultFS with no faults set.
func New() *FaultFS { return &FaultFS{files: map[string]*fileState{}} }

// SetWriteFault makes every write call fn first: a non-nil error makes the
// write store only the first n bytes and fail with err. nil clears it.
func (fs *FaultFS) SetWriteFault(fn func(path string, n int) (int, error)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.writeFault = fn
}

// SetSyncError makes every file and directory sync fail with err (nil clears).
func (fs *FaultFS) SetSyncError(err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.syncErr = err
}

// SetSyncHook makes every file sync call fn first (to hold a sync in
// progress); nil clears it.
func (fs *FaultFS) SetSyncHook(fn func()) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.syncHook = fn
}

// SetTruncateError makes every Truncate fail with err (nil clears).
func (fs *FaultFS) SetTruncateError(err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.truncErr = err
}

// Syncs reports the successful file syncs (fdatasync) and directory fsyncs so far.
func (fs *FaultFS) Syncs() (files, dirs int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.syncs, fs.dirSyncs
}

func (fs *FaultFS) state(path string) *fileState {
	st, ok := fs.files[path]
	if !ok {
		st = &fileState{}
		if fi, err := os.Stat(path); err == nil {
			st.durable = fi.Size() // existed before: assume durable
		}
		fs.files[path] = st
	}
	return st
}

// OpenFile opens a file, tracking its durability.
func (fs *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (queue.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	_, statErr := os.Stat(name)
	f, err := fs.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	st := fs.state(name)
	if os.IsNotExist(statErr) {
		st.durable, st.undurableDE = 0, true
	}
	if flag&os.O_TRUNC != 0 && st.durable > 0 {
		st.durable = 0 // a truncation that is not synced may or may not survive: assume the worst for the old data
	}
	return &faultFile{File: f, fs: fs, path: name}, nil
}

// ReadDir lists dir.
func (fs *FaultFS) ReadDir(dir string) ([]string, error) { return fs.inner.ReadDir(dir) }

// Remove removes a file.
func (fs *FaultFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.files, name)
	return fs.inner.Remove(name)
}

// Rename renames a file; the data's durability moves with it, the new
// directory entry is durable after the next SyncDir.
func (fs *FaultFS) Rename(oldpath, newpath string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.inner.Rename(oldpath, newpath); err != nil {
		return err
	}
	st := fs.state(oldpath)
	delete(fs.files, oldpath)
	fs.files[newpath] = &fileState{durable: st.durable, undurableDE: st.undurableDE}
	return nil
}

// SyncDir makes the directory entries in dir durable.
func (fs *FaultFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.syncErr != nil {
		return fs.syncErr
	}
	if err := fs.inner.SyncDir(dir); err != nil {
		return err
	}
	fs.dirSyncs++
	for path, st := range fs.files {
		if filepath.Dir(path) == filepath.Clean(dir) {
			st.undurableDE = false
		}
	}
	return nil
}

// PowerCut simulates losing power: files whose directory entry was never
// fsynced disappear, and every file loses what was written after its last
// sync. With zeroFill the lost bytes read as zeros instead (ext4 after a
// power cut: the size was extended, the data blocks never written). Open
// handles must not be used afterwards.
func (fs *FaultFS) PowerCut(zeroFill bool) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for path, st := range fs.files {
		fi, err := os.Stat(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if st.undurableDE {
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		if fi.Size() <= st.durable {
			continue
		}
		if err := os.Truncate(path, st.durable); err != nil {
			return err
		}
		if zeroFill {
			if err := os.Truncate(path, fi.Size()); err != nil { // extends with zeros
				return err
			}
		}
	}
	fs.files = map[string]*fileState{}
	return nil
}

type faultFile struct {
	queue.File
	fs   *FaultFS
	path string
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	fault := f.fs.writeFault
	f.fs.mu.Unlock()
	if fault != nil {
		if n, err := fault(f.path, len(p)); err != nil {
			m, werr := f.File.Write(p[:min(max(n, 0), len(p))])
			if werr != nil {
				return m, werr
			}
			return m, err
		}
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err, hook := f.fs.syncErr, f.fs.syncHook
	f.fs.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err != nil {
		return err
	}
	size, err := f.File.Size()
	if err != nil {
		return err
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.syncs++
	if st, ok := f.fs.files[f.path]; ok {
		st.durable = size
	}
	return nil
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	err := f.fs.truncErr
	if err == nil {
		if st, ok := f.fs.files[f.path]; ok && st.durable > size {
			st.durable = size
		}
	}
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Truncate(size)
}
