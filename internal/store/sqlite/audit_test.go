package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/propgate/gateway/dashboard/audit"
)

// The audit log keeps its newest maxRows rows: 30 requests with a 1 MiB
// username once grew it by 31 MB, and nothing ever pruned it.
func TestAuditLogIsCapped(t *testing.T) {
	a, err := OpenAudit(filepath.Join(t.TempDir(), "audit.db"), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 250 {
		if err := a.Record(t.Context(), audit.Entry{At: t0.Add(time.Duration(i) * time.Second), Username: fmt.Sprint("u", i), Role: "none",
			Method: "POST", Path: "/login", Remote: "10.0.0.1", Status: 401}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := a.r.QueryRow(`SELECT COUNT(*) FROM audit`).Scan(&n); err != nil || n != 100 {
		t.Fatalf("%d rows (%v), want 100", n, err)
	}
	es, err := a.Recent(t.Context(), 500)
	if err != nil || len(es) != 100 || es[0].Username != "u249" || es[99].Username != "u150" || !es[0].At.Equal(t0.Add(249*time.Second)) || es[0].Remote != "10.0.0.1" {
		t.Fatalf("recent: %d %v %+v", len(es), err, es[0])
	}
}

// A database written by the gateway before versioned migrations (the audit
// table alone) opens, keeps its rows and gains the new columns and tables.
func TestAuditOpensAnOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, username TEXT NOT NULL,
		role TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL);
		INSERT INTO audit (at, username, role, method, path, status) VALUES (1, 'wang.li', 'operator', 'POST', '/api/v1/alarms/x/ack', 200)`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	a, err := OpenAudit(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	es, err := a.Recent(t.Context(), 10)
	if err != nil || len(es) != 1 || es[0].Username != "wang.li" || es[0].Remote != "" {
		t.Fatalf("%v %+v", err, es)
	}
}

func TestSessions(t *testing.T) {
	a, err := OpenAudit(filepath.Join(t.TempDir(), "audit.db"), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := t.Context()
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 5 {
		if err := a.SaveSession(ctx, audit.Session{Key: fmt.Sprint("k", i), Username: "wang.li", Expires: t0.Add(time.Duration(i) * time.Hour)}, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SaveSession(ctx, audit.Session{Key: "z", Username: "admin", Expires: t0.Add(time.Hour)}, 3); err != nil {
		t.Fatal(err)
	}
	// The two oldest of wang.li's five went.
	for i, want := range []bool{false, false, true, true, true} {
		_, err := a.Session(ctx, fmt.Sprint("k", i))
		if got := err == nil; got != want || (err != nil && !errors.Is(err, audit.ErrNoSession)) {
			t.Fatalf("k%d: %v", i, err)
		}
	}
	s, err := a.Session(ctx, "k4")
	if err != nil || s.Username != "wang.li" || !s.Expires.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("%+v %v", s, err)
	}
	if n, err := a.PruneSessions(ctx, t0.Add(150*time.Minute)); err != nil || n != 2 { // k2 and z
		t.Fatalf("pruned %d %v", n, err)
	}
	if err := a.DeleteSession(ctx, "k4"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, "k4"); !errors.Is(err, audit.ErrNoSession) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := a.Session(ctx, "k3"); err != nil {
		t.Fatalf("k3: %v", err)
	}
}
