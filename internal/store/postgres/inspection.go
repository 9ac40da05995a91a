package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/rules/inspection"
)

// inspectionMigrations are the inspection rounds' own set ("inspections"),
// as in SQLite.
var inspectionMigrations = []string{
	`CREATE TABLE inspection_rounds (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, route TEXT NOT NULL, scheduled TIMESTAMPTZ,
		status TEXT NOT NULL, version INTEGER NOT NULL, doc JSON NOT NULL);
	CREATE INDEX inspection_rounds_status ON inspection_rounds(status, route, id);
	CREATE INDEX inspection_rounds_route ON inspection_rounds(route, id);
	CREATE TABLE inspection_cursors (route TEXT PRIMARY KEY, at TIMESTAMPTZ NOT NULL);
	CREATE TABLE inspection_photos (round BIGINT NOT NULL, checkpoint TEXT NOT NULL, item TEXT NOT NULL, mime TEXT NOT NULL, data BYTEA NOT NULL,
		PRIMARY KEY (round, checkpoint, item));`,
}

// Inspections are the inspection rounds, their photos and each route's
// schedule cursor, in the rules database.
type Inspections struct{ d *DB }

var _ inspection.Store = (*Inspections)(nil)

// NewInspections adds the inspection tables to an open database (the
// rules database).
func NewInspections(ctx context.Context, d *DB) (*Inspections, error) {
	if err := d.Migrate(ctx, "inspections", inspectionMigrations); err != nil {
		return nil, err
	}
	return &Inspections{d: d}, nil
}

// CreateRound implements inspection.Store.
func (s *Inspections) CreateRound(ctx context.Context, r *inspection.Round) error {
	err := s.d.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO inspection_rounds (route, scheduled, status, version, doc) VALUES ($1, $2, $3, $4, '{}') RETURNING id`,
			text(r.Route), ts(r.Scheduled), text(r.Status), r.Version).Scan(&r.ID); err != nil {
			return err
		}
		doc, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE inspection_rounds SET doc = $1 WHERE id = $2`, string(doc), r.ID)
		return err
	})
	if err != nil {
		r.ID = 0
		return fmt.Errorf("inspection store: %w", err)
	}
	return nil
}

// SaveRound implements inspection.Store.
func (s *Inspections) SaveRound(ctx context.Context, r *inspection.Round) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tag, err := s.d.pool.Exec(ctx, `UPDATE inspection_rounds SET status = $1, version = $2, doc = $3 WHERE id = $4 AND version = $5`,
		text(r.Status), r.Version, string(doc), r.ID, r.Version-1)
	if err != nil {
		return fmt.Errorf("inspection store: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return inspection.ErrConflict
	}
	return nil
}

// Round implements inspection.Store.
func (s *Inspections) Round(ctx context.Context, id int64) (*inspection.Round, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT doc FROM inspection_rounds WHERE id = $1`, id)
	rs, err := scanDocs[inspection.Round](rows, err, "inspection round")
	if err != nil {
		return nil, fmt.Errorf("inspection store: round %d: %w", id, err)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("round %d: %w", id, inspection.ErrNotFound)
	}
	return rs[0], nil
}

// Rounds implements inspection.Store: newest first.
func (s *Inspections) Rounds(ctx context.Context, f inspection.RoundFilter) ([]*inspection.Round, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Route != "" {
		add("route = $%d", text(f.Route))
	}
	if f.Status != "" {
		add("status = $%d", text(f.Status))
	}
	if !f.Since.IsZero() {
		add("scheduled >= $%d", f.Since)
	}
	q := `SELECT doc FROM inspection_rounds`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 200
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.d.pool.Query(ctx, q, args...)
	out, err := scanDocs[inspection.Round](rows, err, "inspection round")
	if err != nil {
		return nil, fmt.Errorf("inspection store: %w", err)
	}
	if out == nil {
		out = []*inspection.Round{}
	}
	return out, nil
}

// Cursor implements inspection.Store.
func (s *Inspections) Cursor(ctx context.Context, route string) (time.Time, bool, error) {
	var at time.Time
	err := s.d.pool.QueryRow(ctx, `SELECT at FROM inspection_cursors WHERE route = $1`, text(route)).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("inspection store: %w", err)
	}
	return at, true, nil
}

// SetCursor implements inspection.Store.
func (s *Inspections) SetCursor(ctx context.Context, route string, at time.Time) error {
	_, err := s.d.pool.Exec(ctx, `INSERT INTO inspection_cursors (route, at) VALUES ($1, $2) ON CONFLICT (route) DO UPDATE SET at = excluded.at`, text(route), at)
	if err != nil {
		return fmt.Errorf("inspection store: %w", err)
	}
	return nil
}

// SavePhoto implements inspection.Store.
func (s *Inspections) SavePhoto(ctx context.Context, round int64, checkpoint, item, mime string, data []byte) error {
	_, err := s.d.pool.Exec(ctx, `INSERT INTO inspection_photos (round, checkpoint, item, mime, data) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (round, checkpoint, item) DO UPDATE SET mime = excluded.mime, data = excluded.data`, round, text(checkpoint), text(item), text(mime), data)
	if err != nil {
		return fmt.Errorf("inspection store: %w", err)
	}
	return nil
}

// Photo implements inspection.Store.
func (s *Inspections) Photo(ctx context.Context, round int64, checkpoint, item string) (string, []byte, error) {
	var mime string
	var data []byte
	err := s.d.pool.QueryRow(ctx, `SELECT mime, data FROM inspection_photos WHERE round = $1 AND checkpoint = $2 AND item = $3`,
		round, text(checkpoint), text(item)).Scan(&mime, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, fmt.Errorf("photo: %w", inspection.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("inspection store: %w", err)
	}
	return mime, data, nil
}
