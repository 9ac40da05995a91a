package backup

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNewerBackup is wrapped when the archive's format is newer than this
// gateway reads.
var ErrNewerBackup = errors.New("backup made by a newer gateway")

// Staged is a backup unpacked and checked beside its targets, nothing
// replaced yet: Databases maps a database's name to its staged copy.
type Staged struct {
	Manifest  *Manifest
	Databases map[string]string
	dir       string
}

// Discard removes the staged copies.
func (s *Staged) Discard() { os.RemoveAll(s.dir) }

// Stage unpacks the backup at in next to the targets of src (the directory
// of the first database, so the final renames stay on one file system) and
// verifies every file against the manifest.
func Stage(in string, src Source) (*Staged, error) {
	base := filepath.Dir(filepath.Clean(src.QueueDir))
	if len(src.Databases) > 0 {
		base = filepath.Dir(src.Databases[0].Path)
	}
	if err := os.MkdirAll(base, 0o750); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	dir, err := os.MkdirTemp(base, ".restore-*")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	s := &Staged{dir: dir, Databases: map[string]string{}}
	if err := s.unpack(in); err != nil {
		s.Discard()
		return nil, err
	}
	for _, db := range src.Databases {
		p := filepath.Join(dir, db.Name+".db")
		if _, err := os.Stat(p); err != nil {
			s.Discard()
			return nil, fmt.Errorf("restore: the backup has no %s database", db.Name)
		}
		s.Databases[db.Name] = p
	}
	return s, nil
}

func (s *Staged) unpack(in string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("restore: %s is not a gateway backup: %w", in, err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "manifest.json" {
		return fmt.Errorf("restore: %s is not a gateway backup (no manifest.json first)", in)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return fmt.Errorf("restore: manifest: %w", err)
	}
	if m.Format > FormatVersion {
		return fmt.Errorf("restore: %s is in backup format %d (gateway %s), %w (this one reads format %d): restore it with that gateway or newer",
			in, m.Format, m.Gateway, ErrNewerBackup, FormatVersion)
	}
	want := map[string]File{}
	for _, file := range m.Files {
		clean := path.Clean(file.Name)
		if clean != file.Name || path.IsAbs(clean) || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("restore: manifest names %q, outside the backup", file.Name)
		}
		want[file.Name] = file
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: read %s: %w", in, err)
		}
		file, ok := want[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("restore: %s holds %q, not in its manifest", in, hdr.Name)
		}
		dst := filepath.Join(s.dir, filepath.FromSlash(file.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		_, err = io.Copy(out, io.LimitReader(tr, file.Size+1))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		sum, size, err := hashFile(dst)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if sum != file.SHA256 || size != file.Size {
			return fmt.Errorf("restore: %s in %s is damaged (checksum mismatch)", file.Name, in)
		}
		delete(want, file.Name)
	}
	for name := range want {
		return fmt.Errorf("restore: %s lacks %s (truncated?)", in, name)
	}
	s.Manifest = &m
	return nil
}

// Result says what Apply put where.
type Result struct {
	Replaced []string // targets whose previous version is kept as <target>.pre-restore
	Config   string   // where the backed-up config was written
}

// Apply puts the staged backup in place: each database (its -wal and -shm
// removed), the queue directory, and the config (written to src.Config when
// none exists, otherwise beside it as <config>.from-backup, for the person
// to compare). The gateway must not be running (see Lock). Files get the
// owner of their directory, so a restore run as root leaves them readable
// by the service user.
func (s *Staged) Apply(src Source) (*Result, error) {
	res := &Result{}
	for _, db := range src.Databases {
		if err := replaceFile(s.Databases[db.Name], db.Path, res); err != nil {
			return res, err
		}
		for _, side := range []string{"-wal", "-shm"} {
			if err := os.Remove(db.Path + side); err != nil && !errors.Is(err, os.ErrNotExist) {
				return res, fmt.Errorf("restore: %w", err)
			}
		}
	}
	if src.QueueDir != "" {
		staged := filepath.Join(s.dir, "queue")
		if _, err := os.Stat(staged); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(staged, 0o750); err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(src.QueueDir), 0o750); err != nil {
			return res, fmt.Errorf("restore: %w", err)
		}
		if _, err := os.Stat(src.QueueDir); err == nil {
			old := src.QueueDir + ".pre-restore"
			if err := os.RemoveAll(old); err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
			if err := os.Rename(src.QueueDir, old); err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
			res.Replaced = append(res.Replaced, src.QueueDir)
		}
		if err := moveTree(staged, src.QueueDir); err != nil {
			return res, err
		}
	}
	for _, f := range s.Manifest.Files {
		if f.Kind != "config" {
			continue
		}
		dst := src.Config
		if _, err := os.Stat(dst); err == nil {
			dst += ".from-backup"
		}
		if err := copyFile(filepath.Join(s.dir, filepath.FromSlash(f.Name)), dst); err != nil {
			return res, fmt.Errorf("restore: config: %w", err)
		}
		_ = os.Chmod(dst, 0o640)
		res.Config = dst
	}
	return res, nil
}

func replaceFile(staged, target string, res *Result) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := os.Stat(target); err == nil {
		if err := os.Rename(target, target+".pre-restore"); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		res.Replaced = append(res.Replaced, target)
	}
	if err := moveFile(staged, target); err != nil {
		return err
	}
	ownLikeParent(target)
	return nil
}

// moveFile renames, or copies across file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	if err := copyFile(src, dst); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return os.Chmod(dst, 0o640)
}

func moveTree(src, dst string) error {
	if err := os.Rename(src, dst); err != nil {
		if err := os.MkdirAll(dst, 0o750); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		for _, e := range entries {
			if err := moveFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	}
	ownLikeParent(dst)
	entries, _ := os.ReadDir(dst)
	for _, e := range entries {
		ownLikeParent(filepath.Join(dst, e.Name()))
	}
	return nil
}

func ownLikeParent(p string) {
	if os.Geteuid() != 0 {
		return
	}
	st, err := os.Stat(filepath.Dir(p))
	if err != nil {
		return
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		_ = os.Lchown(p, int(sys.Uid), int(sys.Gid))
	}
}

// ErrRunning is returned by Lock when a gateway holds the state.
var ErrRunning = errors.New("a gateway is running on this state")

// Lock takes the state directory's lock (DIR/gateway.lock, flock): the
// running gateway holds it, so a restore — or a second gateway on the same
// state — is refused instead of corrupting it. unlock releases it.
func Lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	p := filepath.Join(dir, "gateway.lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is locked: %w (stop it first: systemctl stop propgate-gateway)", p, ErrRunning)
		}
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// QueueDir is the staged queue directory.
func (s *Staged) QueueDir() string { return filepath.Join(s.dir, "queue") }
