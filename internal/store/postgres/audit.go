package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/dashboard/audit"
)

// Audit is the dashboard's database: the audit log, capped to its newest
// maxRows rows, and the console's login sessions.
type Audit struct {
	*DB
	maxRows int64
}

var _ audit.Store = (*Audit)(nil)

var auditMigrations = []string{
	`CREATE TABLE audit (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at TIMESTAMPTZ, username TEXT NOT NULL,
		role TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, remote TEXT NOT NULL DEFAULT '');
	CREATE TABLE sessions (key TEXT PRIMARY KEY, seq BIGINT GENERATED ALWAYS AS IDENTITY, username TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL);
	CREATE INDEX sessions_user ON sessions(username, seq);
	CREATE INDEX sessions_expires ON sessions(expires);`,
}

// OpenAudit connects to the database at url and applies the audit
// migrations; the log keeps its newest maxRows rows (at least 1).
func OpenAudit(ctx context.Context, url string, maxRows int) (*Audit, error) {
	d, err := Open(ctx, url, "audit")
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx, "audit", auditMigrations); err != nil {
		d.Close()
		return nil, err
	}
	return &Audit{DB: d, maxRows: int64(max(maxRows, 1))}, nil
}

// Record appends e and drops the rows beyond the cap, oldest first.
func (a *Audit) Record(ctx context.Context, e audit.Entry) error {
	return a.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO audit (at, username, role, method, path, status, remote) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			ts(e.At), text(e.Username), text(e.Role), text(e.Method), text(e.Path), e.Status, text(e.Remote)).Scan(&id); err != nil {
			return fmt.Errorf("audit store: record: %w", err)
		}
		if id > a.maxRows {
			if _, err := tx.Exec(ctx, `DELETE FROM audit WHERE id <= $1`, id-a.maxRows); err != nil {
				return fmt.Errorf("audit store: rotate: %w", err)
			}
		}
		return nil
	})
}

// Recent returns the newest limit entries, newest first.
func (a *Audit) Recent(ctx context.Context, limit int) ([]audit.Entry, error) {
	rows, err := a.pool.Query(ctx, `SELECT at, username, role, method, path, remote, status FROM audit ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("audit store: %w", err)
	}
	defer rows.Close()
	out := []audit.Entry{}
	for rows.Next() {
		var e audit.Entry
		var at *time.Time
		if err := rows.Scan(&at, &e.Username, &e.Role, &e.Method, &e.Path, &e.Remote, &e.Status); err != nil {
			return nil, fmt.Errorf("audit store: %w", err)
		}
		e.At = fromTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SaveSession stores s; its user keeps at most perUser sessions.
func (a *Audit) SaveSession(ctx context.Context, s audit.Session, perUser int) error {
	return a.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (key, username, expires) VALUES ($1, $2, $3)`, s.Key, s.Username, s.Expires); err != nil {
			return fmt.Errorf("audit store: save session: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE username = $1 AND key NOT IN
			(SELECT key FROM sessions WHERE username = $1 ORDER BY seq DESC LIMIT $2)`, s.Username, max(perUser, 1)); err != nil {
			return fmt.Errorf("audit store: cap sessions: %w", err)
		}
		return nil
	})
}

// Session returns the session stored under key, or audit.ErrNoSession.
func (a *Audit) Session(ctx context.Context, key string) (audit.Session, error) {
	s := audit.Session{Key: key}
	err := a.pool.QueryRow(ctx, `SELECT username, expires FROM sessions WHERE key = $1`, key).Scan(&s.Username, &s.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, audit.ErrNoSession
	}
	if err != nil {
		return s, fmt.Errorf("audit store: session: %w", err)
	}
	return s, nil
}

// DeleteSession removes the session stored under key (logout).
func (a *Audit) DeleteSession(ctx context.Context, key string) error {
	if _, err := a.pool.Exec(ctx, `DELETE FROM sessions WHERE key = $1`, key); err != nil {
		return fmt.Errorf("audit store: delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes the sessions expired at now.
func (a *Audit) PruneSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := a.pool.Exec(ctx, `DELETE FROM sessions WHERE expires <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("audit store: prune sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
