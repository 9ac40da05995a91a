package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
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

func TestAlertsStore(t *testing.T) {
	s, err := OpenAlerts(filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a := &alerts.Alert{ID: "r:a@1", AlarmID: "r:a", State: alerts.Firing}
	if err := s.SaveAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.State = alerts.Resolved
	if err := s.SaveAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenAlerts(ctx); len(open) != 0 {
		t.Fatalf("a resolved alert is open: %+v", open[0])
	}
	if got, err := s.Alert(ctx, "r:a@1"); err != nil || got.State != alerts.Resolved {
		t.Fatalf("alert %+v %v", got, err)
	}
	if _, err := s.Alert(ctx, "nope"); !errors.Is(err, alerts.ErrNotFound) {
		t.Fatalf("unknown alert: %v", err)
	}
	for i := range 3 {
		if err := s.AddAttempt(ctx, &alerts.Attempt{Person: "wang", Try: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	atts, err := s.Attempts(ctx, 2)
	if err != nil || len(atts) != 2 || atts[0].Try != 3 || atts[0].ID != 3 {
		t.Fatalf("attempts %+v %v", atts, err)
	}

	// Links: once; the second use says when the first was; expired entries go.
	t1 := time.UnixMilli(1_000_000)
	if _, err := s.UseLink(ctx, "sig-1", t1, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if at, err := s.UseLink(ctx, "sig-1", t1.Add(time.Minute), t1.Add(time.Hour)); !errors.Is(err, alerts.ErrLinkUsed) || !at.Equal(t1) {
		t.Fatalf("second use: %v %v", at, err)
	}
	if at, used, err := s.LinkUsed(ctx, "sig-1"); err != nil || !used || !at.Equal(t1) {
		t.Fatalf("used: %v %v %v", at, used, err)
	}
	if _, used, _ := s.LinkUsed(ctx, "sig-2"); used {
		t.Fatal("an unused link is used")
	}
	if _, err := s.UseLink(ctx, "sig-2", t1.Add(2*time.Hour), t1.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, used, _ := s.LinkUsed(ctx, "sig-1"); used {
		t.Fatal("an expired link entry was kept")
	}
}
