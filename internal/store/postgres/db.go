// Package postgres is the PostgreSQL backend (github.com/jackc/pgx/v5,
// pgxpool) of the stores the gateway keeps: alarms, work orders and
// incidents (rules), alerts and delivery attempts (alerts), sessions and the
// audit log (dashboard). It implements the same narrow interfaces as
// internal/store/sqlite, checked by the same behaviour suite
// (internal/store/storetest), and is chosen by a postgres:// database URL.
//
// Several stores may share one database: each feature keeps its tables
// under its own named migration set (schema_sets), applied under an
// advisory lock so that two gateways starting on one database never run a
// migration twice.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is one PostgreSQL database reached through a connection pool.
type DB struct {
	pool *pgxpool.Pool
	name string
}

// migrationLock is the advisory lock key every migration runs under
// (pg_advisory_xact_lock): an arbitrary constant, "propgate" in ASCII.
const migrationLock int64 = 0x70726f7067617465

// IsURL says whether a database setting names a PostgreSQL database
// (postgres:// or postgresql://) rather than an SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns the URL with its password replaced, for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Open connects to the database at url (postgres://…) and checks that it
// answers; name says what it holds, for errors ("rules", "alerts",
// "audit"). Nothing is created: each store applies its own migrations.
func Open(ctx context.Context, url, name string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors may quote the URL; say where without it.
		return nil, fmt.Errorf("%s store: the database URL %s is not valid: check its form (postgres://user:password@host:port/database?sslmode=…)", name, Redact(url))
	}
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg) // the pool outlives the opening request
	if err != nil {
		return nil, fmt.Errorf("%s store: %s: %w", name, Redact(url), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s store: cannot reach PostgreSQL at %s: %w", name, Redact(url), err)
	}
	return &DB{pool: pool, name: name}, nil
}

// Close closes the pool.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

// Migrate applies a named set of migrations, each once, recorded per set
// in schema_sets, all in one transaction holding the migration advisory
// lock. A database at a newer version of the set than this gateway knows is
// refused.
func (d *DB) Migrate(ctx context.Context, set string, migrations []string) error {
	err := d.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_sets (name TEXT PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
			return err
		}
		var v int
		err := tx.QueryRow(ctx, `SELECT version FROM schema_sets WHERE name = $1`, set).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("%s tables are at schema version %d, newer than this gateway (%d): upgrade the gateway", set, v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %s %d: %w", set, i+1, err)
			}
		}
		if v < len(migrations) {
			_, err = tx.Exec(ctx, `INSERT INTO schema_sets (name, version) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET version = excluded.version`, set, len(migrations))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s store: migrate: %w", d.name, err)
	}
	return nil
}

// tx runs fn in a transaction, committing when it returns nil.
func (d *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, d.pool, fn)
}

// text is a string for a text column: PostgreSQL text cannot hold a NUL
// byte, so each becomes U+FFFD (the record is kept, the odd byte marked);
// the json documents keep it exactly (escaped as \u0000).
func text(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// ts stores a time; the zero time as NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromTS is the inverse of ts.
func fromTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// scanDocs decodes rows of one JSON document column (what names the kind,
// for errors).
func scanDocs[T any](rows pgx.Rows, err error, what string) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal(doc, v); err != nil {
			return nil, fmt.Errorf("store: %s row: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// CheckURL checks a postgres:// URL without connecting: that pgx can parse
// it and that it names a database. Errors never include the password.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s is not a valid URL (a port that is not a number, or a password with / ? # @ not percent-encoded?)", Redact(raw))
	}
	if _, err := pgconn.ParseConfig(raw); err != nil {
		return fmt.Errorf("%s is not a PostgreSQL URL pgx can use", Redact(raw))
	}
	if strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%s names no database", Redact(raw))
	}
	return nil
}

// Plaintext says whether the URL reaches a server on another machine
// without requiring TLS (sslmode unset, disable, allow or prefer: a
// man in the middle can turn TLS off).
func Plaintext(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch h := u.Hostname(); h {
	case "", "localhost", "127.0.0.1", "::1":
		return false
	}
	switch u.Query().Get("sslmode") {
	case "require", "verify-ca", "verify-full":
		return false
	}
	return true
}
