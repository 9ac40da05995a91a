package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/propgate/gateway/alerts"
)

// alertMigrations: the first is the schema databases made before versioned
// migrations already have (IF NOT EXISTS keeps them working).
var alertMigrations = []string{
	`CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, state TEXT NOT NULL, doc TEXT NOT NULL);
	 CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL)`,
	`CREATE TABLE used_links (key TEXT PRIMARY KEY, used_at INTEGER NOT NULL, expires INTEGER NOT NULL)`,
}

// Alerts stores alerts, delivery attempts and used acknowledgement links.
type Alerts struct{ d *DB }

var (
	_ alerts.Store      = (*Alerts)(nil)
	_ alerts.LinkLedger = (*Alerts)(nil)
	_ alerts.Log        = (*Alerts)(nil)
)

// OpenAlerts opens or creates the alerts database.
func OpenAlerts(path string) (*Alerts, error) {
	d, err := Open(path, "alerts", alertMigrations)
	if err != nil {
		return nil, err
	}
	return &Alerts{d: d}, nil
}

// Close closes the database.
func (s *Alerts) Close() error { return s.d.Close() }

// SaveAlert upserts an alert.
func (s *Alerts) SaveAlert(ctx context.Context, a *alerts.Alert) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("alerts store: %w", err)
	}
	if _, err = s.d.w.ExecContext(ctx, `INSERT INTO alerts (id, state, doc) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, doc = excluded.doc`,
		a.ID, string(a.State), string(doc)); err != nil {
		return fmt.Errorf("alerts store: saving alert %s: %w", a.ID, err)
	}
	return nil
}

// OpenAlerts are the alerts still firing or acknowledged.
func (s *Alerts) OpenAlerts(ctx context.Context) ([]*alerts.Alert, error) {
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM alerts WHERE state IN ('firing', 'acked')`)
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	return scanDocs[alerts.Alert](rows, "alert")
}

// Alerts lists recent alerts, newest first.
func (s *Alerts) Alerts(ctx context.Context, limit int) ([]*alerts.Alert, error) {
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM alerts ORDER BY rowid DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	return scanDocs[alerts.Alert](rows, "alert")
}

// Alert returns one alert; alerts.ErrNotFound when there is none.
func (s *Alerts) Alert(ctx context.Context, id string) (*alerts.Alert, error) {
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM alerts WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	as, err := scanDocs[alerts.Alert](rows, "alert")
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, fmt.Errorf("alert %s: %w", id, alerts.ErrNotFound)
	}
	return as[0], nil
}

// AddAttempt records a delivery attempt and sets its ID.
func (s *Alerts) AddAttempt(ctx context.Context, a *alerts.Attempt) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("alerts store: %w", err)
	}
	res, err := s.d.w.ExecContext(ctx, `INSERT INTO attempts (doc) VALUES (?)`, string(doc))
	if err != nil {
		return fmt.Errorf("alerts store: recording an attempt: %w", err)
	}
	a.ID, _ = res.LastInsertId()
	return nil
}

// Attempts lists delivery attempts, newest first.
func (s *Alerts) Attempts(ctx context.Context, limit int) ([]*alerts.Attempt, error) {
	rows, err := s.d.r.QueryContext(ctx, `SELECT id, doc FROM attempts ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	defer rows.Close()
	var out []*alerts.Attempt
	for rows.Next() {
		var id int64
		var doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, fmt.Errorf("alerts store: %w", err)
		}
		a := &alerts.Attempt{}
		if err := json.Unmarshal([]byte(doc), a); err != nil {
			return nil, fmt.Errorf("alerts store: attempt %d: %w", id, err)
		}
		a.ID = id
		out = append(out, a)
	}
	return out, rows.Err()
}

// UseLink marks a link used, once; expired entries are forgotten on the way.
func (s *Alerts) UseLink(ctx context.Context, key string, at, expires time.Time) (time.Time, error) {
	var usedAt time.Time
	err := s.d.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM used_links WHERE expires < ?`, ms(at)); err != nil {
			return err
		}
		var prev int64
		switch err := tx.QueryRowContext(ctx, `SELECT used_at FROM used_links WHERE key = ?`, key).Scan(&prev); {
		case err == nil:
			usedAt = fromMS(prev)
			return alerts.ErrLinkUsed
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO used_links (key, used_at, expires) VALUES (?, ?, ?)`, key, ms(at), ms(expires))
		return err
	})
	if err != nil && !errors.Is(err, alerts.ErrLinkUsed) {
		return time.Time{}, fmt.Errorf("alerts store: using a link: %w", err)
	}
	return usedAt, err
}

// LinkUsed says whether and when a link was used.
func (s *Alerts) LinkUsed(ctx context.Context, key string) (time.Time, bool, error) {
	var at int64
	switch err := s.d.r.QueryRowContext(ctx, `SELECT used_at FROM used_links WHERE key = ?`, key).Scan(&at); {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("alerts store: %w", err)
	}
	return fromMS(at), true, nil
}
