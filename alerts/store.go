package alerts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// Store keeps alerts (their escalation state survives a restart) and every
// delivery attempt.
type Store struct{ db *sql.DB }

// OpenStore opens or creates the alerts database.
func OpenStore(path string) (*Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, state TEXT NOT NULL, doc TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL)`,
	} {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("alerts store: %w", err)
		}
	}
	return &Store{db: db}, nil
}

// SaveAlert upserts an alert.
func (s *Store) SaveAlert(ctx context.Context, a *Alert) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO alerts (id, state, doc) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, doc = excluded.doc`,
		a.ID, string(a.State), string(doc))
	return err
}

// OpenAlerts are the alerts still firing or acknowledged.
func (s *Store) OpenAlerts(ctx context.Context) ([]*Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM alerts WHERE state IN ('firing', 'acked')`)
	if err != nil {
		return nil, err
	}
	return scanDocs[Alert](rows, "alert")
}

// Alerts lists recent alerts, newest first.
func (s *Store) Alerts(ctx context.Context, limit int) ([]*Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM alerts ORDER BY rowid DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	return scanDocs[Alert](rows, "alert")
}

// ErrNotFound is returned for unknown alerts.
var ErrNotFound = errors.New("no such alert")

// Alert returns one alert.
func (s *Store) Alert(ctx context.Context, id string) (*Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM alerts WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	as, err := scanDocs[Alert](rows, "alert")
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, ErrNotFound
	}
	return as[0], nil
}

// AddAttempt records a delivery attempt.
func (s *Store) AddAttempt(ctx context.Context, a *Attempt) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO attempts (doc) VALUES (?)`, string(doc))
	if err != nil {
		return err
	}
	a.ID, _ = res.LastInsertId()
	return nil
}

// Attempts lists delivery attempts, newest first.
func (s *Store) Attempts(ctx context.Context, limit int) ([]*Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, doc FROM attempts ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Attempt
	for rows.Next() {
		var id int64
		var doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, err
		}
		a := &Attempt{}
		if err := json.Unmarshal([]byte(doc), a); err != nil {
			return nil, err
		}
		a.ID = id
		out = append(out, a)
	}
	return out, rows.Err()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// scanDocs decodes rows of one JSON document column and closes rows.
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
