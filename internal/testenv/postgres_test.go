package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The server starts, serves two separate databases, survives a restart
// with its data, and runs as a non-root user.
func TestStartPostgresIntegration(t *testing.T) {
	pg := StartPostgres(t)
	ctx := t.Context()
	a, b := pg.NewDatabase(t), pg.NewDatabase(t)
	if a == b {
		t.Fatalf("the same database twice: %s", a)
	}
	exec := func(url, q string) string {
		t.Helper()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		var s string
		if err := c.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s
	}
	c, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE x AS SELECT 'kept'::text AS v`); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	pg.Stop()
	pg.Start()
	if got := exec(a, `SELECT v FROM x`); got != "kept" {
		t.Fatalf("after a restart: %q", got)
	}
	if got := exec(b, `SELECT count(*)::text FROM pg_tables WHERE tablename = 'x'`); got != "0" {
		t.Fatalf("the second database sees the first's table: %s", got)
	}
	if u := exec(a, `SELECT rolname::text FROM pg_roles WHERE rolsuper AND rolname = current_user`); u != "postgres" {
		t.Fatalf("connected as %q", u)
	}
}
