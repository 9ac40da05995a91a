package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/rules/maintenance"
)

// maintenanceMigrations are the PM items' own set ("maintenance"). due_ms
// is the due time in Unix milliseconds, 0 for running-hours items: a
// unique key needs a value there (NULLs are never equal).
var maintenanceMigrations = []string{
	`CREATE TABLE pm_items (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, plan TEXT NOT NULL, asset TEXT NOT NULL, due_ms BIGINT NOT NULL,
		due_hours DOUBLE PRECISION NOT NULL, opened TIMESTAMPTZ NOT NULL, opened_hours DOUBLE PRECISION NOT NULL, workorder BIGINT NOT NULL DEFAULT 0);
	CREATE UNIQUE INDEX pm_items_due ON pm_items(plan, asset, due_ms, due_hours);
	CREATE INDEX pm_items_opened ON pm_items(opened);
	CREATE INDEX pm_items_latest ON pm_items(plan, asset, id);`,
}

// Maintenance is the preventive-maintenance items in the rules database.
type Maintenance struct{ d *DB }

var _ maintenance.Store = (*Maintenance)(nil)

// NewMaintenance adds the maintenance tables to an open database (the
// rules database).
func NewMaintenance(ctx context.Context, d *DB) (*Maintenance, error) {
	if err := d.Migrate(ctx, "maintenance", maintenanceMigrations); err != nil {
		return nil, err
	}
	return &Maintenance{d: d}, nil
}

func dueMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// CreatePMItem implements maintenance.Store.
func (s *Maintenance) CreatePMItem(ctx context.Context, it *maintenance.Item) (bool, error) {
	err := s.d.pool.QueryRow(ctx, `INSERT INTO pm_items (plan, asset, due_ms, due_hours, opened, opened_hours, workorder) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT DO NOTHING RETURNING id`, text(it.Plan), text(it.Asset), dueMS(it.Due), it.DueHours, it.Opened, it.OpenedHours, it.WorkOrder).Scan(&it.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("maintenance store: %w", err)
	}
	return true, nil
}

// SetPMWorkOrder implements maintenance.Store.
func (s *Maintenance) SetPMWorkOrder(ctx context.Context, id, workorder int64) error {
	if _, err := s.d.pool.Exec(ctx, `UPDATE pm_items SET workorder = $1 WHERE id = $2`, workorder, id); err != nil {
		return fmt.Errorf("maintenance store: %w", err)
	}
	return nil
}

const pmCols = `id, plan, asset, due_ms, due_hours, opened, opened_hours, workorder`

func scanPM(sc interface{ Scan(...any) error }) (*maintenance.Item, error) {
	it := &maintenance.Item{}
	var due int64
	if err := sc.Scan(&it.ID, &it.Plan, &it.Asset, &due, &it.DueHours, &it.Opened, &it.OpenedHours, &it.WorkOrder); err != nil {
		return nil, err
	}
	if due != 0 {
		it.Due = time.UnixMilli(due)
	}
	return it, nil
}

// LatestPMItem implements maintenance.Store.
func (s *Maintenance) LatestPMItem(ctx context.Context, plan, asset string) (*maintenance.Item, error) {
	it, err := scanPM(s.d.pool.QueryRow(ctx, `SELECT `+pmCols+` FROM pm_items WHERE plan = $1 AND asset = $2 ORDER BY id DESC LIMIT 1`, text(plan), text(asset)))
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := s.d.pool.Query(ctx, `SELECT `+pmCols+` FROM pm_items WHERE ($1 = '' OR plan = $1) AND opened >= $2 ORDER BY id DESC LIMIT $3`,
		text(plan), since, limit)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("maintenance store: %w", err)
	}
	return out, nil
}
