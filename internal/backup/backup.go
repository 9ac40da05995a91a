// Package backup takes an online, consistent backup of a gateway's state
// while it runs, and puts one back:
//
//   - each SQLite database through VACUUM INTO (one read transaction: a
//     consistent snapshot, written compact, checked with integrity_check);
//   - the config file (and the playbooks beside it), for reference;
//   - the InfluxDB queue: FORMAT, cursor first, then the segments (a
//     segment acknowledged meanwhile is simply absent; its points are in
//     InfluxDB; a torn last record is what the queue recovers from anyway).
//
// The backup is a gzip'd tar with manifest.json first (what, from where,
// SHA-256 of each file, the gateway version). Restore stages everything
// beside the targets, verifies the checksums and lets the caller open the
// staged databases (which refuses a schema newer than the binary) before
// anything is replaced; the replaced files are kept as *.pre-restore.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the driver the stores use
)

// FormatVersion is the backup archive's format.
const FormatVersion = 1

// Database is one SQLite database of the gateway.
type Database struct {
	Name string // rules, alerts, audit: its file name in the archive is <name>.db
	Path string
}

// Source is what a backup holds and where a restore puts it back.
type Source struct {
	Config       string     // the config file
	PlaybooksDir string     // optional: *.yaml files saved beside the config
	Databases    []Database // every SQLite database
	QueueDir     string     // optional: the InfluxDB queue directory
}

// File is one entry of the archive.
type File struct {
	Name   string `json:"name"` // path in the archive
	Kind   string `json:"kind"` // database, config, playbook, queue
	Source string `json:"source"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a backup.
type Manifest struct {
	Format  int       `json:"format"`
	Gateway string    `json:"gateway_version"`
	Site    string    `json:"site"`
	Created time.Time `json:"created"`
	Files   []File    `json:"files"`
}

// Create writes a backup of src to out (atomically: out.tmp, renamed).
func Create(ctx context.Context, src Source, out, site, version string, now time.Time) (*Manifest, error) {
	stage, err := os.MkdirTemp(filepath.Dir(out), ".backup-*")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(stage)
	m := &Manifest{Format: FormatVersion, Gateway: version, Site: site, Created: now.UTC()}
	add := func(name, kind, source string) error {
		sum, size, err := hashFile(filepath.Join(stage, name))
		if err != nil {
			return err
		}
		m.Files = append(m.Files, File{Name: name, Kind: kind, Source: source, Size: size, SHA256: sum})
		return nil
	}
	for _, db := range src.Databases {
		name := db.Name + ".db"
		if err := snapshot(ctx, db.Path, filepath.Join(stage, name)); err != nil {
			return nil, fmt.Errorf("backup: %s database %s: %w", db.Name, db.Path, err)
		}
		if err := add(name, "database", db.Path); err != nil {
			return nil, err
		}
	}
	if err := copyFile(src.Config, filepath.Join(stage, "config", filepath.Base(src.Config))); err != nil {
		return nil, fmt.Errorf("backup: config: %w", err)
	}
	if err := add("config/"+filepath.Base(src.Config), "config", src.Config); err != nil {
		return nil, err
	}
	if src.PlaybooksDir != "" {
		names, _ := filepath.Glob(filepath.Join(src.PlaybooksDir, "*.yaml"))
		for _, p := range names {
			name := "playbooks/" + filepath.Base(p)
			if err := copyFile(p, filepath.Join(stage, name)); err != nil {
				return nil, fmt.Errorf("backup: playbook: %w", err)
			}
			if err := add(name, "playbook", p); err != nil {
				return nil, err
			}
		}
	}
	if src.QueueDir != "" {
		names, err := queueFiles(src.QueueDir)
		if err != nil {
			return nil, fmt.Errorf("backup: queue: %w", err)
		}
		for _, n := range names {
			err := copyFile(filepath.Join(src.QueueDir, n), filepath.Join(stage, "queue", n))
			if errors.Is(err, os.ErrNotExist) {
				continue // acknowledged and removed since the listing
			}
			if err != nil {
				return nil, fmt.Errorf("backup: queue: %w", err)
			}
			if err := add("queue/"+n, "queue", filepath.Join(src.QueueDir, n)); err != nil {
				return nil, err
			}
		}
	}
	if err := writeArchive(stage, m, out); err != nil {
		return nil, err
	}
	return m, nil
}

// queueFiles lists the queue's files in the order a consistent copy needs:
// the format and the cursor before the segments it points into.
func queueFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var segs []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".wal") {
			segs = append(segs, e.Name())
		}
	}
	sort.Strings(segs)
	var out []string
	for _, n := range []string{"FORMAT", "cursor"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			out = append(out, n)
		}
	}
	return append(out, segs...), nil
}

// snapshot copies the database at path into dst with VACUUM INTO: one
// read transaction, so a consistent snapshot while the gateway writes.
func snapshot(ctx context.Context, path, dst string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	created := sidecarsMissing(path)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "VACUUM INTO '"+strings.ReplaceAll(dst, "'", "''")+"'")
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	fixOwner(path, created)
	if err != nil {
		return err
	}
	return integrityCheck(ctx, dst)
}

// integrityCheck runs PRAGMA integrity_check on a copy.
func integrityCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	return nil
}

// sidecarsMissing lists the -wal/-shm files a connection may create: when
// the backup runs as root beside a stopped gateway they must go back to the
// database's owner, or the service user could not open its own database.
func sidecarsMissing(path string) []string {
	var missing []string
	for _, s := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + s); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, path+s)
		}
	}
	return missing
}

func fixOwner(path string, files []string) {
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return
	}
	for _, f := range files {
		_ = os.Chown(f, int(sys.Uid), int(sys.Gid))
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func writeArchive(stage string, m *Manifest, out string) error {
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600) // holds password hashes and tokens
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp)
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	mj, _ := json.MarshalIndent(m, "", "  ")
	err = tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o600, Size: int64(len(mj)), ModTime: m.Created, Typeflag: tar.TypeReg})
	if err == nil {
		_, err = tw.Write(mj)
	}
	for _, file := range m.Files {
		if err != nil {
			break
		}
		err = tw.WriteHeader(&tar.Header{Name: file.Name, Mode: 0o600, Size: file.Size, ModTime: m.Created, Typeflag: tar.TypeReg})
		if err == nil {
			err = appendFile(tw, filepath.Join(stage, file.Name))
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		return fmt.Errorf("backup: write %s: %w", out, err)
	}
	return nil
}

func appendFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
