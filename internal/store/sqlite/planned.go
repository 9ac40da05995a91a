package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/planned"
)

// Planned keeps planned works (rules/planned) in the rules database, in
// their own migration set.
type Planned struct{ d *DB }

var _ planned.Store = (*Planned)(nil)

var plannedMigrations = []string{
	`CREATE TABLE planned_works (
		id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, status TEXT NOT NULL,
		start INTEGER NOT NULL, end INTEGER NOT NULL, doc TEXT NOT NULL);
	CREATE INDEX planned_works_status ON planned_works(status, start);`,
}

// OpenPlanned adds the planned-works tables to d (migrating them once).
func OpenPlanned(d *DB) (*Planned, error) {
	if err := d.Migrate("planned_works", plannedMigrations); err != nil {
		return nil, err
	}
	return &Planned{d: d}, nil
}

// CreateWork implements planned.Store.
func (s *Planned) CreateWork(ctx context.Context, w *planned.Work) error {
	res, err := s.d.w.ExecContext(ctx, `INSERT INTO planned_works (kind, status, start, end, doc) VALUES (?, ?, ?, ?, '{}')`,
		string(w.Kind), string(w.Status), ms(w.Start), ms(w.End))
	if err != nil {
		return fmt.Errorf("store: create planned work: %w", err)
	}
	if w.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	return s.SaveWork(ctx, w)
}

// SaveWork implements planned.Store.
func (s *Planned) SaveWork(ctx context.Context, w *planned.Work) error {
	doc, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if _, err := s.d.w.ExecContext(ctx, `UPDATE planned_works SET status = ?, start = ?, end = ?, doc = ? WHERE id = ?`,
		string(w.Status), ms(w.Start), ms(w.End), string(doc), w.ID); err != nil {
		return fmt.Errorf("store: save planned work: %w", err)
	}
	return nil
}

// Work implements planned.Store.
func (s *Planned) Work(ctx context.Context, id int64) (*planned.Work, error) {
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM planned_works WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("store: planned work: %w", err)
	}
	ws, err := scanDocs[planned.Work](rows, "planned work")
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, rules.ErrNotFound
	}
	return ws[0], nil
}

// Works implements planned.Store.
func (s *Planned) Works(ctx context.Context, open bool, limit int) ([]*planned.Work, error) {
	q := `SELECT doc FROM planned_works`
	if open {
		q += ` WHERE status NOT IN ('completed', 'cancelled')`
	}
	q += ` ORDER BY start DESC, id DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.d.r.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: planned works: %w", err)
	}
	return scanDocs[planned.Work](rows, "planned work")
}
