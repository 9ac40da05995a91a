package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/propgate/gateway/rules/register"
)

// Register is the asset register (设备台账), kept in the rules database
// file under its own migration set.
type Register struct{ db *DB }

var _ register.Store = (*Register)(nil)

var registerMigrations = []string{
	`CREATE TABLE register_entries (asset TEXT PRIMARY KEY, version INTEGER NOT NULL, updated INTEGER NOT NULL, doc TEXT NOT NULL);`,
}

// OpenRegister adds the register's tables to d.
func OpenRegister(d *DB) (*Register, error) {
	if err := d.Migrate("register", registerMigrations); err != nil {
		return nil, err
	}
	return &Register{db: d}, nil
}

// RegisterEntries implements register.Store.
func (s *Register) RegisterEntries(ctx context.Context) ([]register.Entry, error) {
	rows, err := s.db.r.QueryContext(ctx, `SELECT doc FROM register_entries ORDER BY asset`)
	if err != nil {
		return nil, fmt.Errorf("register store: %w", err)
	}
	ps, err := scanDocs[register.Entry](rows, "register entry")
	if err != nil {
		return nil, err
	}
	out := make([]register.Entry, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out, nil
}

// PutRegisterEntries implements register.Store.
func (s *Register) PutRegisterEntries(ctx context.Context, es []register.Entry, onlyNew bool) (int, error) {
	n := 0
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range es {
			var v int
			err := tx.QueryRowContext(ctx, `SELECT version FROM register_entries WHERE asset = ?`, e.Asset).Scan(&v)
			exists := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if onlyNew && exists {
				continue
			}
			if !onlyNew && v != e.Version {
				return fmt.Errorf("%s: %w", e.Asset, register.ErrConflict)
			}
			e.Version = v + 1
			doc, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO register_entries (asset, version, updated, doc) VALUES (?, ?, ?, ?)
				ON CONFLICT(asset) DO UPDATE SET version = excluded.version, updated = excluded.updated, doc = excluded.doc`,
				e.Asset, e.Version, ms(e.Updated), string(doc)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, register.ErrConflict) {
			return 0, err
		}
		return 0, fmt.Errorf("register store: %w", err)
	}
	return n, nil
}
