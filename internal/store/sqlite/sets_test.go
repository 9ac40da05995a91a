package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// Two features keep their own migration sets in one file: each applied
// once, independent of the other's numbering, and a set newer than the
// gateway is refused.
func TestMigrationSetsAreIndependent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	d, err := Open(path, "rules", rulesMigrations)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate("a", []string{`CREATE TABLE a1 (x INTEGER)`}); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate("b", []string{`CREATE TABLE b1 (x INTEGER)`, `CREATE TABLE b2 (x INTEGER)`}); err != nil {
		t.Fatal(err)
	}
	// Again, with one more for a: only the new one runs (a1 exists already).
	if err := d.Migrate("a", []string{`CREATE TABLE a1 (x INTEGER)`, `CREATE TABLE a2 (x INTEGER)`}); err != nil {
		t.Fatal(err)
	}
	err = d.Migrate("b", []string{`CREATE TABLE b1 (x INTEGER)`})
	if err == nil || !strings.Contains(err.Error(), "b tables are at schema version 2, newer than this gateway (1)") {
		t.Fatalf("newer set: %v", err)
	}
	for _, tbl := range []string{"a1", "a2", "b1", "b2"} {
		if _, err := d.w.Exec(`SELECT * FROM ` + tbl); err != nil {
			t.Errorf("%s: %v", tbl, err)
		}
	}
	d.Close()
}
