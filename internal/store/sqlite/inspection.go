package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/propgate/gateway/rules/inspection"
)

// Inspections are the inspection rounds, their photos and each route's
// schedule cursor, kept in the rules database file under their own
// migration set.
type Inspections struct{ db *DB }

var _ inspection.Store = (*Inspections)(nil)

var inspectionMigrations = []string{
	`CREATE TABLE inspection_rounds (id INTEGER PRIMARY KEY AUTOINCREMENT, route TEXT NOT NULL, scheduled INTEGER NOT NULL,
		status TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL);
	CREATE INDEX inspection_rounds_status ON inspection_rounds(status, route, id);
	CREATE INDEX inspection_rounds_route ON inspection_rounds(route, id);
	CREATE TABLE inspection_cursors (route TEXT PRIMARY KEY, at INTEGER NOT NULL);
	CREATE TABLE inspection_photos (round INTEGER NOT NULL, checkpoint TEXT NOT NULL, item TEXT NOT NULL, mime TEXT NOT NULL, data BLOB NOT NULL,
		PRIMARY KEY (round, checkpoint, item));`,
}

// OpenInspections adds the inspection tables to d.
func OpenInspections(d *DB) (*Inspections, error) {
	if err := d.Migrate("inspections", inspectionMigrations); err != nil {
		return nil, err
	}
	return &Inspections{db: d}, nil
}

// CreateRound implements inspection.Store.
func (s *Inspections) CreateRound(ctx context.Context, r *inspection.Round) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO inspection_rounds (route, scheduled, status, version, doc) VALUES (?, ?, ?, ?, '{}')`,
			r.Route, ms(r.Scheduled), r.Status, r.Version)
		if err != nil {
			return fmt.Errorf("inspection store: %w", err)
		}
		if r.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		doc, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE inspection_rounds SET doc = ? WHERE id = ?`, string(doc), r.ID)
		return err
	})
}

// SaveRound implements inspection.Store.
func (s *Inspections) SaveRound(ctx context.Context, r *inspection.Round) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res, err := s.db.w.ExecContext(ctx, `UPDATE inspection_rounds SET status = ?, version = ?, doc = ? WHERE id = ? AND version = ?`,
		r.Status, r.Version, string(doc), r.ID, r.Version-1)
	if err != nil {
		return fmt.Errorf("inspection store: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return inspection.ErrConflict
	}
	return nil
}

// Round implements inspection.Store.
func (s *Inspections) Round(ctx context.Context, id int64) (*inspection.Round, error) {
	var doc string
	err := s.db.r.QueryRowContext(ctx, `SELECT doc FROM inspection_rounds WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("round %d: %w", id, inspection.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("inspection store: %w", err)
	}
	r := &inspection.Round{}
	if err := json.Unmarshal([]byte(doc), r); err != nil {
		return nil, fmt.Errorf("inspection store: round %d: %w", id, err)
	}
	return r, nil
}

// Rounds implements inspection.Store: newest first.
func (s *Inspections) Rounds(ctx context.Context, f inspection.RoundFilter) ([]*inspection.Round, error) {
	var where []string
	var args []any
	if f.Route != "" {
		where, args = append(where, "route = ?"), append(args, f.Route)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "scheduled >= ?"), append(args, ms(f.Since))
	}
	q := `SELECT doc FROM inspection_rounds`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 200
	}
	q += " ORDER BY id DESC LIMIT ?"
	rows, err := s.db.r.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("inspection store: %w", err)
	}
	out, err := scanDocs[inspection.Round](rows, "inspection round")
	if out == nil {
		out = []*inspection.Round{}
	}
	return out, err
}

// Cursor implements inspection.Store.
func (s *Inspections) Cursor(ctx context.Context, route string) (time.Time, bool, error) {
	var at int64
	err := s.db.w.QueryRowContext(ctx, `SELECT at FROM inspection_cursors WHERE route = ?`, route).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("inspection store: %w", err)
	}
	return fromMS(at), true, nil
}

// SetCursor implements inspection.Store.
func (s *Inspections) SetCursor(ctx context.Context, route string, at time.Time) error {
	_, err := s.db.w.ExecContext(ctx, `INSERT INTO inspection_cursors (route, at) VALUES (?, ?) ON CONFLICT(route) DO UPDATE SET at = excluded.at`, route, ms(at))
	if err != nil {
		return fmt.Errorf("inspection store: %w", err)
	}
	return nil
}

// SavePhoto implements inspection.Store.
func (s *Inspections) SavePhoto(ctx context.Context, round int64, checkpoint, item, mime string, data []byte) error {
	_, err := s.db.w.ExecContext(ctx, `INSERT INTO inspection_photos (round, checkpoint, item, mime, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(round, checkpoint, item) DO UPDATE SET mime = excluded.mime, data = excluded.data`, round, checkpoint, item, mime, data)
	if err != nil {
		return fmt.Errorf("inspection store: %w", err)
	}
	return nil
}

// Photo implements inspection.Store.
func (s *Inspections) Photo(ctx context.Context, round int64, checkpoint, item string) (string, []byte, error) {
	var mime string
	var data []byte
	err := s.db.r.QueryRowContext(ctx, `SELECT mime, data FROM inspection_photos WHERE round = ? AND checkpoint = ? AND item = ?`, round, checkpoint, item).Scan(&mime, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("photo: %w", inspection.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("inspection store: %w", err)
	}
	return mime, data, nil
}
