package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/planned"
)

// plannedMigrations are the planned-works tables' own set ("planned_works").
var plannedMigrations = []string{
	`CREATE TABLE planned_works (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL,
		start_at TIMESTAMPTZ, end_at TIMESTAMPTZ, doc JSON NOT NULL);
	CREATE INDEX planned_works_status ON planned_works(status, start_at);`,
}

// Planned keeps planned works (rules/planned) in the rules database.
type Planned struct{ d *DB }

var _ planned.Store = (*Planned)(nil)

// NewPlanned adds the planned-works tables to an open database (the rules
// database).
func NewPlanned(ctx context.Context, d *DB) (*Planned, error) {
	if err := d.Migrate(ctx, "planned_works", plannedMigrations); err != nil {
		return nil, err
	}
	return &Planned{d: d}, nil
}

// CreateWork implements planned.Store.
func (s *Planned) CreateWork(ctx context.Context, w *planned.Work) error {
	err := s.d.pool.QueryRow(ctx, `INSERT INTO planned_works (kind, status, start_at, end_at, doc) VALUES ($1, $2, $3, $4, '{}') RETURNING id`,
		text(string(w.Kind)), text(string(w.Status)), ts(w.Start), ts(w.End)).Scan(&w.ID)
	if err != nil {
		return fmt.Errorf("store: create planned work: %w", err)
	}
	return s.SaveWork(ctx, w)
}

// SaveWork implements planned.Store.
func (s *Planned) SaveWork(ctx context.Context, w *planned.Work) error {
	doc, err := json.Marshal(w)
	if err != nil {
		return err
	}
	tag, err := s.d.pool.Exec(ctx, `UPDATE planned_works SET status = $1, start_at = $2, end_at = $3, doc = $4 WHERE id = $5`,
		text(string(w.Status)), ts(w.Start), ts(w.End), string(doc), w.ID)
	if err != nil {
		return fmt.Errorf("store: save planned work %d: %w", w.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: save planned work %d: %w", w.ID, rules.ErrNotFound)
	}
	return nil
}

// Work implements planned.Store.
func (s *Planned) Work(ctx context.Context, id int64) (*planned.Work, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT doc FROM planned_works WHERE id = $1`, id)
	ws, err := scanDocs[planned.Work](rows, err, "planned work")
	if err != nil {
		return nil, fmt.Errorf("store: planned work %d: %w", id, err)
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("planned work %d: %w", id, rules.ErrNotFound)
	}
	return ws[0], nil
}

// Works implements planned.Store.
func (s *Planned) Works(ctx context.Context, open bool, limit int) ([]*planned.Work, error) {
	q := `SELECT doc FROM planned_works`
	if open {
		q += ` WHERE status NOT IN ('completed', 'cancelled')`
	}
	q += ` ORDER BY start_at DESC, id DESC LIMIT $1`
	rows, err := s.d.pool.Query(ctx, q, limitOr(limit))
	ws, err := scanDocs[planned.Work](rows, err, "planned work")
	if err != nil {
		return nil, fmt.Errorf("store: planned works: %w", err)
	}
	return ws, nil
}
