package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/propgate/gateway/internal/replication"
)

// replicationMigrations are the site outbox's own set ("replication").
var replicationMigrations = []string{
	`CREATE TABLE replication_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, at INTEGER NOT NULL,
		envelope TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0);
	CREATE INDEX replication_outbox_unsent ON replication_outbox(sent, seq);`,
}

// ReplicationOutbox is the site's queue of changes for the center, in the
// rules database file.
type ReplicationOutbox struct{ d *DB }

var _ replication.Outbox = (*ReplicationOutbox)(nil)

// NewReplicationOutbox adds the outbox table to an open database.
func NewReplicationOutbox(d *DB) (*ReplicationOutbox, error) {
	if err := d.Migrate("replication", replicationMigrations); err != nil {
		return nil, err
	}
	return &ReplicationOutbox{d: d}, nil
}

// Append implements replication.Outbox: the sequence is the row's, and
// the row is whole before any reader can see it (one transaction).
func (o *ReplicationOutbox) Append(ctx context.Context, e *replication.Event) error {
	err := o.d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO replication_outbox (kind, key, at, envelope) VALUES (?, ?, ?, '')`, e.Kind, e.Key, ms(e.At))
		if err != nil {
			return err
		}
		if e.Seq, err = res.LastInsertId(); err != nil {
			return err
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE replication_outbox SET envelope = ? WHERE seq = ?`, string(b), e.Seq)
		return err
	})
	if err != nil {
		e.Seq = 0
		return fmt.Errorf("replication outbox: %w", err)
	}
	return nil
}

// Unsent implements replication.Outbox.
func (o *ReplicationOutbox) Unsent(ctx context.Context, limit int) ([]replication.Event, error) {
	rows, err := o.d.r.QueryContext(ctx, `SELECT envelope FROM replication_outbox WHERE sent = 0 AND envelope != '' ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("replication outbox: %w", err)
	}
	es, err := scanDocs[replication.Event](rows, "replication event")
	if err != nil {
		return nil, err
	}
	out := make([]replication.Event, len(es))
	for i, e := range es {
		out[i] = *e
	}
	return out, nil
}

// MarkSent implements replication.Outbox.
func (o *ReplicationOutbox) MarkSent(ctx context.Context, upTo int64) error {
	if _, err := o.d.w.ExecContext(ctx, `UPDATE replication_outbox SET sent = 1 WHERE seq <= ? AND sent = 0`, upTo); err != nil {
		return fmt.Errorf("replication outbox: %w", err)
	}
	return nil
}
