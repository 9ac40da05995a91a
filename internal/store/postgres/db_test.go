package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/propgate/gateway/internal/testenv"
)

// Features keep their own migration sets in one database: each applied
// once, independent of the others' numbering; a set newer than the gateway
// is refused; two gateways starting at once on an empty database both open
// it (the advisory lock serialises the migrations; neither fails on the
// other's tables).
func TestMigrationsIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()

	t.Run("SetsAreIndependent", func(t *testing.T) {
		d, err := Open(ctx, pg.NewDatabase(t), "x")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Migrate(ctx, "a", []string{`CREATE TABLE a1 (x INTEGER)`}); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, "b", []string{`CREATE TABLE b1 (x INTEGER)`, `CREATE TABLE b2 (x INTEGER)`}); err != nil {
			t.Fatal(err)
		}
		// Again, with one more for a: only the new one runs (a1 exists).
		if err := d.Migrate(ctx, "a", []string{`CREATE TABLE a1 (x INTEGER)`, `CREATE TABLE a2 (x INTEGER)`}); err != nil {
			t.Fatal(err)
		}
		err = d.Migrate(ctx, "b", []string{`CREATE TABLE b1 (x INTEGER)`})
		if err == nil || !strings.Contains(err.Error(), "b tables are at schema version 2, newer than this gateway (1): upgrade the gateway") {
			t.Fatalf("newer set: %v", err)
		}
		// A failing migration leaves nothing half-done.
		err = d.Migrate(ctx, "c", []string{`CREATE TABLE c1 (x INTEGER)`, `CREATE TABLE c1 (x INTEGER)`})
		if err == nil || !strings.Contains(err.Error(), "migration c 2") {
			t.Fatalf("failing migration: %v", err)
		}
		for tbl, want := range map[string]bool{"a1": true, "a2": true, "b1": true, "b2": true, "c1": false} {
			_, err := d.pool.Exec(ctx, `SELECT * FROM `+tbl)
			if (err == nil) != want {
				t.Errorf("%s: %v", tbl, err)
			}
		}
	})

	t.Run("ConcurrentOpens", func(t *testing.T) {
		url := pg.NewDatabase(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				var err error
				switch i % 2 {
				case 0:
					var s *Rules
					if s, err = OpenRules(ctx, url, false); err == nil {
						s.Close()
					}
				case 1:
					var s *Alerts
					if s, err = OpenAlerts(ctx, url); err == nil {
						s.Close()
					}
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("open %d: %v", i, err)
			}
		}
	})
}

// A database URL's password never shows in an error (they reach logs).
func TestOpenErrorsHideThePassword(t *testing.T) {
	port := testenv.FreePort(t) // nothing listens there
	for _, url := range []string{
		fmt.Sprintf("postgres://gw:s3cret-pw@127.0.0.1:%d/gateway?sslmode=disable&connect_timeout=2", port),
		fmt.Sprintf("postgres://gw@127.0.0.1:%d/gateway?sslmode=disable&password=s3cret-pw&connect_timeout=2", port),
		"postgres://gw:s3cret-pw@127.0.0.1:notaport/gateway",
	} {
		_, err := OpenRules(context.Background(), url, false)
		if err == nil {
			t.Fatalf("%s opened", url)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the password is in the error: %v", err)
		}
		if !strings.Contains(err.Error(), "rules store") {
			t.Errorf("the error does not say which store: %v", err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://gw:pw@db:5432/gateway?sslmode=require":    "postgres://gw:xxxxx@db:5432/gateway?sslmode=require",
		"postgres://gw@db/gateway?password=pw&sslmode=verify": "postgres://gw@db/gateway?password=xxxxx&sslmode=verify",
		"postgresql://db/gateway":                             "postgresql://db/gateway",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if !IsURL("postgres://x") || !IsURL("postgresql://x") || IsURL("data/gateway.db") || IsURL("/var/lib/postgres://x") {
		t.Error("IsURL")
	}
}
