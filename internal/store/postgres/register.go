package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/rules/register"
)

// registerMigrations are the register's own set ("register"), as in SQLite.
var registerMigrations = []string{
	`CREATE TABLE register_entries (asset TEXT PRIMARY KEY, version INTEGER NOT NULL, updated TIMESTAMPTZ, doc JSON NOT NULL);`,
	`CREATE TABLE register_contacts (id TEXT PRIMARY KEY, version INTEGER NOT NULL, updated TIMESTAMPTZ, doc JSON NOT NULL);`,
}

// Register is the asset register (设备台账) and the contacts directory in
// the rules database.
type Register struct{ d *DB }

var _ register.Store = (*Register)(nil)

// NewRegister adds the register's tables to an open database (the rules
// database).
func NewRegister(ctx context.Context, d *DB) (*Register, error) {
	if err := d.Migrate(ctx, "register", registerMigrations); err != nil {
		return nil, err
	}
	return &Register{d: d}, nil
}

// RegisterEntries implements register.Store.
func (s *Register) RegisterEntries(ctx context.Context) ([]register.Entry, error) {
	return readVersioned[register.Entry](ctx, s.d, `SELECT doc FROM register_entries ORDER BY asset`, "register entry")
}

// RegisterContacts implements register.Store.
func (s *Register) RegisterContacts(ctx context.Context) ([]register.Contact, error) {
	return readVersioned[register.Contact](ctx, s.d, `SELECT doc FROM register_contacts ORDER BY id`, "contact")
}

func readVersioned[T any](ctx context.Context, d *DB, q, what string) ([]T, error) {
	rows, err := d.pool.Query(ctx, q)
	ps, err := scanDocs[T](rows, err, what)
	if err != nil {
		return nil, fmt.Errorf("register store: %w", err)
	}
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out, nil
}

// PutRegisterEntries implements register.Store.
func (s *Register) PutRegisterEntries(ctx context.Context, es []register.Entry, onlyNew bool) (int, error) {
	return putVersioned(ctx, s.d, "register_entries", "asset", es, onlyNew, func(e *register.Entry) (string, *int, any) {
		return e.Asset, &e.Version, ts(e.Updated)
	})
}

// PutRegisterContacts implements register.Store.
func (s *Register) PutRegisterContacts(ctx context.Context, cs []register.Contact, onlyNew bool) (int, error) {
	return putVersioned(ctx, s.d, "register_contacts", "id", cs, onlyNew, func(c *register.Contact) (string, *int, any) {
		return c.ID, &c.Version, ts(c.Updated)
	})
}

// putVersioned saves documents keyed by one text column, each with a
// version, all or none: the rows are locked while their versions are
// compared, so two admins saving the same version cannot both win.
func putVersioned[T any](ctx context.Context, d *DB, table, key string, docs []T, onlyNew bool, meta func(*T) (string, *int, any)) (int, error) {
	n := 0
	err := d.tx(ctx, func(tx pgx.Tx) error {
		for _, doc := range docs {
			id, version, updated := meta(&doc)
			var v int
			err := tx.QueryRow(ctx, `SELECT version FROM `+table+` WHERE `+key+` = $1 FOR UPDATE`, text(id)).Scan(&v)
			exists := err == nil
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if onlyNew && exists {
				continue
			}
			if !onlyNew && v != *version {
				return fmt.Errorf("%s: %w", id, register.ErrConflict)
			}
			*version = v + 1
			b, err := json.Marshal(doc)
			if err != nil {
				return err
			}
			// A first save racing another (no row to lock): ON CONFLICT
			// makes it an update only if the version is still the one read.
			tag, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+key+`, version, updated, doc) VALUES ($1, $2, $3, $4)
				ON CONFLICT (`+key+`) DO UPDATE SET version = excluded.version, updated = excluded.updated, doc = excluded.doc
				WHERE `+table+`.version = $5`, text(id), *version, updated, string(b), v)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				if onlyNew {
					continue
				}
				return fmt.Errorf("%s: %w", id, register.ErrConflict)
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
