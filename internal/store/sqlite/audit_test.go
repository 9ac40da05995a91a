package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

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
