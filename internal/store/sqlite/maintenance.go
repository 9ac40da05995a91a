package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/propgate/gateway/rules/maintenance"
)

// Maintenance is the preventive-maintenance items, kept in the rules
// database file under their own migration set.
type Maintenance struct{ db *DB }

var _ maintenance.Store = (*Maintenance)(nil)

var maintenanceMigrations = []string{
	`CREATE TABLE pm_items (id INTEGER PRIMARY KEY AUTOINCREMENT, plan TEXT NOT NULL, asset TEXT NOT NULL, due INTEGER NOT NULL,
		due_hours REAL NOT NULL, opened INTEGER NOT NULL, opened_hours REAL NOT NULL, workorder INTEGER NOT NULL DEFAULT 0);
	CREATE UNIQUE INDEX pm_items_due ON pm_items(plan, asset, due, due_hours);
	CREATE INDEX pm_items_opened ON pm_items(opened);`,
}

// OpenMaintenance adds the maintenance tables to d.
func OpenMaintenance(d *DB) (*Maintenance, error) {
	if err := d.Migrate("maintenance", maintenanceMigrations); err != nil {
		return nil, err
	}
	return &Maintenance{db: d}, nil
}

// CreatePMItem implements maintenance.Store.
func (s *Maintenance) CreatePMItem(ctx context.Context, it *maintenance.Item) (bool, error) {
	res, err := s.db.w.ExecContext(ctx, `INSERT INTO pm_items (plan, asset, due, due_hours, opened, opened_hours, workorder) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, it.Plan, it.Asset, ms(it.Due), it.DueHours, ms(it.Opened), it.OpenedHours, it.WorkOrder)
	if err != nil {
		return false, fmt.Errorf("maintenance store: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	it.ID, err = res.LastInsertId()
	return err == nil, err
}

// SetPMWorkOrder implements maintenance.Store.
func (s *Maintenance) SetPMWorkOrder(ctx context.Context, id, workorder int64) error {
	if _, err := s.db.w.ExecContext(ctx, `UPDATE pm_items SET workorder = ? WHERE id = ?`, workorder, id); err != nil {
		return fmt.Errorf("maintenance store: %w", err)
	}
	return nil
}

const pmCols = `id, plan, asset, due, due_hours, opened, opened_hours, workorder`

func scanPM(sc interface{ Scan(...any) error }) (*maintenance.Item, error) {
	it := &maintenance.Item{}
	var due, opened int64
	if err := sc.Scan(&it.ID, &it.Plan, &it.Asset, &due, &it.DueHours, &opened, &it.OpenedHours, &it.WorkOrder); err != nil {
		return nil, err
	}
	it.Due, it.Opened = fromMS(due), fromMS(opened)
	return it, nil
}

// LatestPMItem implements maintenance.Store.
func (s *Maintenance) LatestPMItem(ctx context.Context, plan, asset string) (*maintenance.Item, error) {
	it, err := scanPM(s.db.w.QueryRowContext(ctx, `SELECT `+pmCols+` FROM pm_items WHERE plan = ? AND asset = ? ORDER BY id DESC LIMIT 1`, plan, asset))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maintenance store: %w", err)
	}
	return it, nil
}

// PMItems implements maintenance.Store: newest first.
func (s *Maintenance) PMItems(ctx context.Context, plan string, since time.Time, limit int) ([]*maintenance.Item, error) {
	if limit <= 0 || limit > 10000 {
		limit = 200
	}
	rows, err := s.db.r.QueryContext(ctx, `SELECT `+pmCols+` FROM pm_items WHERE (? = '' OR plan = ?) AND opened >= ? ORDER BY id DESC LIMIT ?`,
		plan, plan, ms(since), limit)
	if err != nil {
		return nil, fmt.Errorf("maintenance store: %w", err)
	}
	defer rows.Close()
	out := []*maintenance.Item{}
	for rows.Next() {
		it, err := scanPM(rows)
		if err != nil {
			return nil, fmt.Errorf("maintenance store: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}
