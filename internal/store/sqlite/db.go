// Package sqlite is the embedded backend (modernc.org/sqlite, WAL mode) of
// every store the gateway keeps: alarms, work orders and incidents (rules),
// alerts and delivery attempts (alerts), sessions and the audit log
// (dashboard). Each consumer declares the narrow interface it needs; the
// types here implement them.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// DB is one database file: a single writer connection (SQLite serialises
// writes anyway) and a separate pool of read connections, so a long read
// (a report, a KPI range, a websocket snapshot) never holds up a write on
// the ingest path. WAL mode lets readers and the writer run side by side.
type DB struct {
	w    *sql.DB
	r    *sql.DB
	name string
}

// readers is the size of the read pool.
const readers = 4

// Open opens (creating and migrating) the database at path; name says what
// it holds, for errors ("rules", "alerts", "audit"). migrations are applied
// in order, each once, recorded in schema_version.
func Open(path, name string, migrations []string) (*DB, error) {
	const pragmas = "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)"
	w, err := sql.Open("sqlite", "file:"+path+pragmas)
	if err != nil {
		return nil, fmt.Errorf("%s store: open %s: %w", name, path, err)
	}
	w.SetMaxOpenConns(1)
	d := &DB{w: w, name: name}
	if err := d.migrate(migrations); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("%s store: open %s: %w", name, path, err)
	}
	r.SetMaxOpenConns(readers)
	d.r = r
	return d, nil
}

// Close closes both pools.
func (d *DB) Close() error {
	var err error
	if d.r != nil {
		err = d.r.Close()
	}
	return errors.Join(err, d.w.Close())
}

func (d *DB) migrate(migrations []string) error {
	ctx := context.Background()
	if _, err := d.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("%s store: migrate: %w", d.name, err)
	}
	var v int
	if err := d.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("%s store: migrate: %w", d.name, err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%s store: the database is at schema version %d, newer than this gateway (%d): upgrade the gateway", d.name, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if err := d.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, i+1)
			return err
		}); err != nil {
			return fmt.Errorf("%s store: %w", d.name, err)
		}
	}
	return nil
}

// Migrate applies a named set of migrations to this database file, each
// once, recorded per set in schema_sets. A feature that keeps its own tables
// in a shared file (the duty log, planned works, the asset register…) owns
// one set, so features never renumber each other's migrations. A database
// at a newer version of the set than this gateway knows is refused.
func (d *DB) Migrate(set string, migrations []string) error {
	ctx := context.Background()
	if _, err := d.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_sets (name TEXT PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("%s store: migrate %s: %w", d.name, set, err)
	}
	var v int
	err := d.w.QueryRowContext(ctx, `SELECT version FROM schema_sets WHERE name = ?`, set).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s store: migrate %s: %w", d.name, set, err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%s store: %s tables are at schema version %d, newer than this gateway (%d): upgrade the gateway", d.name, set, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if err := d.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %s %d: %w", set, i+1, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_sets (name, version) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET version = excluded.version`, set, i+1)
			return err
		}); err != nil {
			return fmt.Errorf("%s store: %w", d.name, err)
		}
	}
	return nil
}

// tx runs fn in a write transaction, committing when it returns nil.
func (d *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// ms stores a time as Unix milliseconds; the zero time as 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// scanDocs decodes rows of one JSON document column (what names the kind,
// for errors) and closes rows.
func scanDocs[T any](rows *sql.Rows, what string) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(doc), v); err != nil {
			return nil, fmt.Errorf("store: %s row: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
