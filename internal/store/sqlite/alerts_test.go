package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// A database made by earlier versions (the two tables, no schema_version)
// opens, keeps its alerts, and gains the used-links table.
func TestAlertsStoreOpensAnOlderDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, state TEXT NOT NULL, doc TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL)`,
		`INSERT INTO alerts (id, state, doc) VALUES ('p:x@1', 'firing', '{"id":"p:x@1","alarm_id":"p:x","state":"firing","policy":"standard","level":1}')`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	s, err := OpenAlerts(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	open, err := s.OpenAlerts(ctx)
	if err != nil || len(open) != 1 || open[0].Policy != "standard" || open[0].Level != 1 {
		t.Fatalf("open %+v %v", open, err)
	}
	if _, err := s.UseLink(ctx, "sig", time.UnixMilli(1000), time.UnixMilli(5000)); err != nil {
		t.Fatal(err)
	}
}
