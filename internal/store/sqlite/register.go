package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/propgate/gateway/rules/register"
)

// Register is the asset register (设备台账) and the contacts directory,
// kept in the rules database file under their own migration set.
type Register struct{ db *DB }

var _ register.Store = (*Register)(nil)

var registerMigrations = []string{
	`CREATE TABLE register_entries (asset TEXT PRIMARY KEY, version INTEGER NOT NULL, updated INTEGER NOT NULL, doc TEXT NOT NULL);`,
	`CREATE TABLE register_contacts (id TEXT PRIMARY KEY, version INTEGER NOT NULL, updated INTEGER NOT NULL, doc TEXT NOT NULL);`,
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
	return readVersioned[register.Entry](ctx, s.db, `SELECT doc FROM register_entries ORDER BY asset`, "register entry")
}

// RegisterContacts implements register.Store.
func (s *Register) RegisterContacts(ctx context.Context) ([]register.Contact, error) {
	return readVersioned[register.Contact](ctx, s.db, `SELECT doc FROM register_contacts ORDER BY id`, "contact")
}

func readVersioned[T any](ctx context.Context, db *DB, q, what string) ([]T, error) {
	rows, err := db.r.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("register store: %w", err)
	}
	ps, err := scanDocs[T](rows, what)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out, nil
}

// PutRegisterEntries implements register.Store.
func (s *Register) PutRegisterEntries(ctx context.Context, es []register.Entry, onlyNew bool) (int, error) {
	return putVersioned(ctx, s.db, "register_entries", "asset", es, onlyNew, func(e *register.Entry) (string, *int, int64) {
		return e.Asset, &e.Version, ms(e.Updated)
	})
}

// PutRegisterContacts implements register.Store.
func (s *Register) PutRegisterContacts(ctx context.Context, cs []register.Contact, onlyNew bool) (int, error) {
	return putVersioned(ctx, s.db, "register_contacts", "id", cs, onlyNew, func(c *register.Contact) (string, *int, int64) {
		return c.ID, &c.Version, ms(c.Updated)
	})
}

// putVersioned saves documents keyed by one text column, each with a
// version: all or none (register.Store's rules).
func putVersioned[T any](ctx context.Context, db *DB, table, key string, docs []T, onlyNew bool, meta func(*T) (string, *int, int64)) (int, error) {
	n := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range docs {
			id, version, updated := meta(&d)
			var v int
			err := tx.QueryRowContext(ctx, `SELECT version FROM `+table+` WHERE `+key+` = ?`, id).Scan(&v)
			exists := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if onlyNew && exists {
				continue
			}
			if !onlyNew && v != *version {
				return fmt.Errorf("%s: %w", id, register.ErrConflict)
			}
			*version = v + 1
			doc, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (`+key+`, version, updated, doc) VALUES (?, ?, ?, ?)
				ON CONFLICT(`+key+`) DO UPDATE SET version = excluded.version, updated = excluded.updated, doc = excluded.doc`,
				id, *version, updated, string(doc)); err != nil {
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
