// Package audit declares what the dashboard's access control keeps: login
// sessions and the audit log of who did what. It holds only the record types
// and the narrow interfaces; internal/store/sqlite implements them.
package audit

import (
	"context"
	"errors"
	"time"
)

// Entry is one audited request.
type Entry struct {
	At       time.Time `json:"at"`
	Username string    `json:"username"`
	Role     string    `json:"role"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Remote   string    `json:"remote,omitempty"` // client IP
	Status   int       `json:"status"`
}

// Session is one console login. Key is a digest of the cookie value, never
// the cookie itself, so a copy of the database does not log anyone in.
type Session struct {
	Key      string
	Username string
	Expires  time.Time
}

// ErrNoSession: the session does not exist (or was deleted).
var ErrNoSession = errors.New("no such session")

// Log is the audit log: appended to, capped to its newest rows by the store.
type Log interface {
	Record(ctx context.Context, e Entry) error
	Recent(ctx context.Context, limit int) ([]Entry, error)
}

// Sessions keeps console logins across restarts.
type Sessions interface {
	// SaveSession stores s and keeps at most perUser sessions of its user
	// (the oldest go first).
	SaveSession(ctx context.Context, s Session, perUser int) error
	// Session returns the session with key, or ErrNoSession.
	Session(ctx context.Context, key string) (Session, error)
	DeleteSession(ctx context.Context, key string) error
	// PruneSessions deletes the sessions expired at now; it returns how many.
	PruneSessions(ctx context.Context, now time.Time) (int64, error)
}

// Store is both.
type Store interface {
	Log
	Sessions
}
