package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/alerts"
)

var alertMigrations = []string{
	`CREATE TABLE alerts (id TEXT PRIMARY KEY, seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, state TEXT NOT NULL, doc JSON NOT NULL);
	CREATE INDEX alerts_open ON alerts(state) WHERE state IN ('firing', 'acked');
	CREATE TABLE alert_attempts (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc JSON NOT NULL);
	CREATE TABLE used_links (key TEXT PRIMARY KEY, used_at TIMESTAMPTZ NOT NULL, expires TIMESTAMPTZ NOT NULL);
	CREATE INDEX used_links_expires ON used_links(expires);`,
}

// Alerts stores alerts, delivery attempts and used acknowledgement links.
type Alerts struct{ d *DB }

var (
	_ alerts.Store      = (*Alerts)(nil)
	_ alerts.LinkLedger = (*Alerts)(nil)
	_ alerts.Log        = (*Alerts)(nil)
)

// OpenAlerts connects to the database at url and applies the alerts
// migrations.
func OpenAlerts(ctx context.Context, url string) (*Alerts, error) {
	d, err := Open(ctx, url, "alerts")
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx, "alerts", alertMigrations); err != nil {
		d.Close()
		return nil, err
	}
	return &Alerts{d: d}, nil
}

// Close closes the pool.
func (s *Alerts) Close() error { return s.d.Close() }

// SaveAlert upserts an alert.
func (s *Alerts) SaveAlert(ctx context.Context, a *alerts.Alert) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("alerts store: %w", err)
	}
	if _, err = s.d.pool.Exec(ctx, `INSERT INTO alerts (id, state, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET state = excluded.state, doc = excluded.doc`,
		a.ID, string(a.State), string(doc)); err != nil {
		return fmt.Errorf("alerts store: saving alert %s: %w", a.ID, err)
	}
	return nil
}

// OpenAlerts are the alerts still firing or acknowledged.
func (s *Alerts) OpenAlerts(ctx context.Context) ([]*alerts.Alert, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT doc FROM alerts WHERE state IN ('firing', 'acked') ORDER BY seq`)
	out, err := scanDocs[alerts.Alert](rows, err, "alert")
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	return out, nil
}

// Alerts lists recent alerts, newest first (by when each was first saved).
func (s *Alerts) Alerts(ctx context.Context, limit int) ([]*alerts.Alert, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT doc FROM alerts ORDER BY seq DESC LIMIT $1`, limit)
	out, err := scanDocs[alerts.Alert](rows, err, "alert")
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	return out, nil
}

// Alert returns one alert; alerts.ErrNotFound when there is none.
func (s *Alerts) Alert(ctx context.Context, id string) (*alerts.Alert, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT doc FROM alerts WHERE id = $1`, id)
	as, err := scanDocs[alerts.Alert](rows, err, "alert")
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
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
	if err := s.d.pool.QueryRow(ctx, `INSERT INTO alert_attempts (doc) VALUES ($1) RETURNING id`, string(doc)).Scan(&a.ID); err != nil {
		return fmt.Errorf("alerts store: recording an attempt: %w", err)
	}
	return nil
}

// Attempts lists delivery attempts, newest first.
func (s *Alerts) Attempts(ctx context.Context, limit int) ([]*alerts.Attempt, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT id, doc FROM alert_attempts ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("alerts store: %w", err)
	}
	defer rows.Close()
	var out []*alerts.Attempt
	for rows.Next() {
		var id int64
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, fmt.Errorf("alerts store: %w", err)
		}
		a := &alerts.Attempt{}
		if err := json.Unmarshal(doc, a); err != nil {
			return nil, fmt.Errorf("alerts store: attempt %d: %w", id, err)
		}
		a.ID = id
		out = append(out, a)
	}
	return out, rows.Err()
}

// UseLink marks a link used, once, atomically even with several gateways
// on one database; expired entries are forgotten on the way.
func (s *Alerts) UseLink(ctx context.Context, key string, at, expires time.Time) (time.Time, error) {
	var usedAt time.Time
	err := s.d.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM used_links WHERE expires < $1`, at); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO used_links (key, used_at, expires) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`, key, at, expires)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		if err := tx.QueryRow(ctx, `SELECT used_at FROM used_links WHERE key = $1`, key).Scan(&usedAt); err != nil {
			return err
		}
		return alerts.ErrLinkUsed
	})
	if err != nil && !errors.Is(err, alerts.ErrLinkUsed) {
		return time.Time{}, fmt.Errorf("alerts store: using a link: %w", err)
	}
	return usedAt, err
}

// LinkUsed says whether and when a link was used.
func (s *Alerts) LinkUsed(ctx context.Context, key string) (time.Time, bool, error) {
	var at time.Time
	switch err := s.d.pool.QueryRow(ctx, `SELECT used_at FROM used_links WHERE key = $1`, key).Scan(&at); {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("alerts store: %w", err)
	}
	return at, true, nil
}
