package backup

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// A backup taken while a writer inserts pairs of rows in transactions holds
// a snapshot: whole transactions only (an even count, each pair complete),
// and restoring it gives back exactly those rows, the config and the queue.
func TestBackupWhileWritingRestoresASnapshot(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.MkdirAll(filepath.Join(state, "queue"), 0o750)
	dbPath := filepath.Join(state, "gateway.db")
	db := openDB(t, dbPath)
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, pair INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(conf, []byte("site: test\n"), 0o640)
	os.WriteFile(filepath.Join(state, "queue", "FORMAT"), []byte("propgate-queue 2\n"), 0o640)
	os.WriteFile(filepath.Join(state, "queue", "cursor"), []byte("v2 1 0 00000000\n"), 0o640)
	os.WriteFile(filepath.Join(state, "queue", "00000000000000000001.wal"), []byte("records"), 0o640)
	src := Source{Config: conf, Databases: []Database{{Name: "rules", Path: dbPath}}, QueueDir: filepath.Join(state, "queue")}

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			tx, err := db.Begin()
			if err != nil {
				return
			}
			tx.Exec(`INSERT INTO orders (pair) VALUES (?), (?)`, i, i)
			tx.Commit()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n < 200; db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n) {
		if time.Now().After(deadline) {
			t.Fatal("writer too slow")
		}
	}
	out := filepath.Join(dir, "b.tar.gz")
	m, err := Create(ctx, src, out, "test", "v1.0.0", time.Now())
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 5 {
		t.Fatalf("manifest files %+v", m.Files)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v: it holds password hashes and tokens", st.Mode().Perm())
	}

	// Restore onto a fresh box: other paths, nothing there yet.
	box := filepath.Join(dir, "box")
	dst := Source{Config: filepath.Join(box, "etc", "gateway.yaml"), Databases: []Database{{Name: "rules", Path: filepath.Join(box, "state", "gateway.db")}},
		QueueDir: filepath.Join(box, "state", "queue")}
	staged, err := Stage(out, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer staged.Discard()
	res, err := staged.Apply(dst)
	if err != nil {
		t.Fatal(err)
	}
	if res.Config != dst.Config || len(res.Replaced) != 0 {
		t.Errorf("result %+v", res)
	}
	rdb := openDB(t, dst.Databases[0].Path)
	var n, unpaired int
	rdb.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n)
	rdb.QueryRow(`SELECT COUNT(*) FROM (SELECT pair FROM orders GROUP BY pair HAVING COUNT(*) != 2)`).Scan(&unpaired)
	if n < 200 || n%2 != 0 || unpaired != 0 {
		t.Fatalf("restored %d rows, %d half transactions", n, unpaired)
	}
	for _, f := range []string{"FORMAT", "cursor", "00000000000000000001.wal"} {
		want, _ := os.ReadFile(filepath.Join(src.QueueDir, f))
		if got, _ := os.ReadFile(filepath.Join(dst.QueueDir, f)); string(got) != string(want) {
			t.Errorf("queue %s = %q, want %q", f, got, want)
		}
	}
	if b, _ := os.ReadFile(dst.Config); string(b) != "site: test\n" {
		t.Errorf("config %q", b)
	}

	// Restoring again over it keeps what was there as .pre-restore and
	// leaves the existing config alone.
	staged2, err := Stage(out, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer staged2.Discard()
	os.WriteFile(dst.Config, []byte("site: edited\n"), 0o640)
	res, err = staged2.Apply(dst)
	if err != nil {
		t.Fatal(err)
	}
	if res.Config != dst.Config+".from-backup" || len(res.Replaced) != 2 {
		t.Errorf("second restore %+v", res)
	}
	if b, _ := os.ReadFile(dst.Config); string(b) != "site: edited\n" {
		t.Errorf("existing config overwritten: %q", b)
	}
	if _, err := os.Stat(dst.Databases[0].Path + ".pre-restore"); err != nil {
		t.Error(err)
	}
}

func TestRestoreRefusesDamagedAndNewerBackups(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gateway.db")
	db := openDB(t, dbPath)
	db.Exec(`CREATE TABLE x (v TEXT)`)
	conf := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(conf, []byte("site: test\n"), 0o640)
	src := Source{Config: conf, Databases: []Database{{Name: "rules", Path: dbPath}}}
	out := filepath.Join(dir, "b.tar.gz")
	m, err := Create(t.Context(), src, out, "test", "v1", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Newer format: refused before anything is unpacked.
	m.Format = FormatVersion + 1
	unpacked, err := Stage(out, Source{Databases: []Database{{Name: "rules", Path: filepath.Join(t.TempDir(), "g.db")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer unpacked.Discard()
	stage := unpacked.dir
	newer := filepath.Join(dir, "newer.tar.gz")
	if err := writeArchive(stage, m, newer); err != nil {
		t.Fatal(err)
	}
	if _, err := Stage(newer, Source{Databases: []Database{{Name: "rules", Path: filepath.Join(t.TempDir(), "g.db")}}}); !errors.Is(err, ErrNewerBackup) {
		t.Fatalf("newer: %v", err)
	}

	// A changed byte: the checksum catches it.
	m.Format = FormatVersion
	os.WriteFile(filepath.Join(stage, "config/gateway.yaml"), []byte("site: tEst\n"), 0o600)
	damaged := filepath.Join(dir, "damaged.tar.gz")
	if err := writeArchive(stage, m, damaged); err != nil {
		t.Fatal(err)
	}
	_, err = Stage(damaged, Source{Databases: []Database{{Name: "rules", Path: filepath.Join(t.TempDir(), "g.db")}}})
	if err == nil || !strings.Contains(err.Error(), "config/gateway.yaml in "+damaged+" is damaged (checksum mismatch)") {
		t.Fatalf("damaged: %v", err)
	}
}

func TestLockRefusesSecondHolder(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "systemctl stop propgate-gateway") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}
