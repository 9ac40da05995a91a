package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	// IF NOT EXISTS: databases written before versioned migrations already have it.
	`CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, username TEXT NOT NULL,
		role TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL)`,
	`ALTER TABLE audit ADD COLUMN remote TEXT NOT NULL DEFAULT '';
	CREATE TABLE sessions (key TEXT PRIMARY KEY, username TEXT NOT NULL, expires INTEGER NOT NULL);
	CREATE INDEX sessions_user ON sessions(username);
	CREATE INDEX sessions_expires ON sessions(expires);`,
}

// OpenAudit opens (creating and migrating) the audit database at path; the
// log keeps its newest maxRows rows (at least 1).
func OpenAudit(path string, maxRows int) (*Audit, error) {
	d, err := Open(path, "audit", auditMigrations)
	if err != nil {
		return nil, err
	}
	return &Audit{DB: d, maxRows: int64(max(maxRows, 1))}, nil
}

// Record appends e and drops the rows beyond the cap, oldest first.
func (a *Audit) Record(ctx context.Context, e audit.Entry) error {
	return a.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO audit (at, username, role, method, path, status, remote) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ms(e.At), e.Username, e.Role, e.Method, e.Path, e.Status, e.Remote)
		if err != nil {
			return fmt.Errorf("audit store: record: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("audit store: record: %w", err)
		}
		if id > a.maxRows {
			if _, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE id <= ?`, id-a.maxRows); err != nil {
				return fmt.Errorf("audit store: rotate: %w", err)
			}
		}
		return nil
	})
}

// Recent returns the newest limit entries, newest first.
func (a *Audit) Recent(ctx context.Context, limit int) ([]audit.Entry, error) {
	rows, err := a.r.QueryContext(ctx, `SELECT at, username, role, method, path, remote, status FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("audit store: %w", err)
	}
	defer rows.Close()
	out := []audit.Entry{}
	for rows.Next() {
		var e audit.Entry
		var at int64
		if err := rows.Scan(&at, &e.Username, &e.Role, &e.Method, &e.Path, &e.Remote, &e.Status); err != nil {
			return nil, fmt.Errorf("audit store: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SaveSession stores s; its user keeps at most perUser sessions.
func (a *Audit) SaveSession(ctx context.Context, s audit.Session, perUser int) error {
	return a.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (key, username, expires) VALUES (?, ?, ?)`,
			s.Key, s.Username, ms(s.Expires)); err != nil {
			return fmt.Errorf("audit store: save session: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE username = ? AND key NOT IN
			(SELECT key FROM sessions WHERE username = ? ORDER BY rowid DESC LIMIT ?)`, s.Username, s.Username, max(perUser, 1)); err != nil {
			return fmt.Errorf("audit store: cap sessions: %w", err)
		}
		return nil
	})
}

// Session returns the session stored under key, or audit.ErrNoSession.
func (a *Audit) Session(ctx context.Context, key string) (audit.Session, error) {
	s := audit.Session{Key: key}
	var exp int64
	err := a.r.QueryRowContext(ctx, `SELECT username, expires FROM sessions WHERE key = ?`, key).Scan(&s.Username, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return s, audit.ErrNoSession
	}
	if err != nil {
		return s, fmt.Errorf("audit store: session: %w", err)
	}
	s.Expires = fromMS(exp)
	return s, nil
}

// DeleteSession removes the session stored under key (logout).
func (a *Audit) DeleteSession(ctx context.Context, key string) error {
	if _, err := a.w.ExecContext(ctx, `DELETE FROM sessions WHERE key = ?`, key); err != nil {
		return fmt.Errorf("audit store: delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes the sessions expired at now.
func (a *Audit) PruneSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := a.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("audit store: prune sessions: %w", err)
	}
	return res.RowsAffected()
}
