package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/propgate/gateway/internal/replication"
)

// replicationMigrations are the site outbox's own set ("replication").
var replicationMigrations = []string{
	`CREATE TABLE replication_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, at INTEGER NOT NULL,
		envelope TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0);
	CREATE INDEX replication_outbox_unsent ON replication_outbox(sent, seq);`,
	// When each event was sent (retention counts from it), and the
	// commands from the center applied here, once each (idempotency key:
	// the command's id; result NULL while it is being applied).
	`ALTER TABLE replication_outbox ADD COLUMN sent_at INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE replication_commands (id TEXT PRIMARY KEY, received INTEGER NOT NULL, result TEXT);`,
	// The outbox's epoch, made once when this migration runs (with the
	// outbox, or on the upgrade of an older one): when it was made (UTC,
	// to the millisecond, so that a newer epoch sorts after) and 8 random
	// hex digits; first_seq is its first seq (above 1 on an upgrade: the
	// sequence goes on). A replaced database gets a new one.
	`CREATE TABLE replication_epoch (epoch TEXT NOT NULL, first_seq INTEGER NOT NULL, created INTEGER NOT NULL);
	INSERT INTO replication_epoch (epoch, first_seq, created) SELECT
		replace(strftime('%Y%m%d%H%M%f', 'now'), '.', '') || lower(hex(randomblob(4))),
		COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'replication_outbox'), 0) + 1,
		CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER);`,
}

// ReplicationOutbox is the site's queue of changes for the center, in the
// rules database file.
type ReplicationOutbox struct {
	d     *DB
	now   func() time.Time
	epoch string
	from  int64 // the epoch's first seq
}

var (
	_ replication.Outbox     = (*ReplicationOutbox)(nil)
	_ replication.CommandLog = (*ReplicationOutbox)(nil)
	_ replication.Epocher    = (*ReplicationOutbox)(nil)
)

// NewReplicationOutbox adds the outbox table to an open database.
func NewReplicationOutbox(d *DB) (*ReplicationOutbox, error) {
	if err := d.Migrate("replication", replicationMigrations); err != nil {
		return nil, err
	}
	o := &ReplicationOutbox{d: d, now: time.Now}
	if err := d.r.QueryRow(`SELECT epoch, first_seq FROM replication_epoch`).Scan(&o.epoch, &o.from); err != nil {
		return nil, fmt.Errorf("replication outbox: its epoch: %w", err)
	}
	return o, nil
}

// Epoch implements replication.Epocher: the outbox's epoch and its first
// seq (1 for an outbox made with its epoch).
func (o *ReplicationOutbox) Epoch() (string, int64) { return o.epoch, o.from }

// stamp puts the outbox's epoch on e (every event of this outbox is of
// it, also those stored before epochs existed).
func (o *ReplicationOutbox) stamp(e *replication.Event) {
	e.Epoch, e.EpochFrom = o.epoch, 0
	if o.from > 1 {
		e.EpochFrom = o.from
	}
}

// Append implements replication.Outbox: the sequence is the row's, and
// the row is whole before any reader can see it (one transaction).
func (o *ReplicationOutbox) Append(ctx context.Context, e *replication.Event) error {
	evs := []replication.Event{*e}
	err := o.AppendAll(ctx, evs)
	*e = evs[0]
	return err
}

// AppendAll appends evs in one transaction (a snapshot of the current
// records: thousands of rows in one commit, not one commit each), setting
// each one's Seq.
func (o *ReplicationOutbox) AppendAll(ctx context.Context, evs []replication.Event) error {
	err := o.d.tx(ctx, func(tx *sql.Tx) error {
		for i := range evs {
			e := &evs[i]
			res, err := tx.ExecContext(ctx, `INSERT INTO replication_outbox (kind, key, at, envelope) VALUES (?, ?, ?, '')`, e.Kind, e.Key, ms(e.At))
			if err != nil {
				return err
			}
			if e.Seq, err = res.LastInsertId(); err != nil {
				return err
			}
			o.stamp(e)
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err = tx.ExecContext(ctx, `UPDATE replication_outbox SET envelope = ? WHERE seq = ?`, string(b), e.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for i := range evs {
			evs[i].Seq = 0
		}
		return fmt.Errorf("replication outbox: %d events: %w", len(evs), err)
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
		o.stamp(e)
		out[i] = *e
	}
	return out, nil
}

// MarkSent implements replication.Outbox.
func (o *ReplicationOutbox) MarkSent(ctx context.Context, seq int64) error {
	if _, err := o.d.w.ExecContext(ctx, `UPDATE replication_outbox SET sent = 1, sent_at = ? WHERE seq = ?`, ms(o.now()), seq); err != nil {
		return fmt.Errorf("replication outbox: %w", err)
	}
	return nil
}

// Resend implements replication.Outbox.
func (o *ReplicationOutbox) Resend(ctx context.Context, from int64) (int64, error) {
	var oldest int64
	err := o.d.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE replication_outbox SET sent = 0 WHERE seq >= ? AND sent = 1`, from); err != nil {
			return err
		}
		// The oldest row kept; with none, the next seq AUTOINCREMENT gives.
		return tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT min(seq) FROM replication_outbox),
			(SELECT seq + 1 FROM sqlite_sequence WHERE name = 'replication_outbox'), 1)`).Scan(&oldest)
	})
	if err != nil {
		return 0, fmt.Errorf("replication outbox: resend from %d: %w", from, err)
	}
	return oldest, nil
}

// Head implements replication.Outbox.
func (o *ReplicationOutbox) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := o.d.r.QueryRowContext(ctx, `SELECT COALESCE(max(seq), 0) FROM replication_outbox WHERE sent = 1`).Scan(&head); err != nil {
		return 0, fmt.Errorf("replication outbox: %w", err)
	}
	return head, nil
}

// Prune implements replication.Outbox; the commands applied before the
// same time are forgotten too (a command expires long before: one
// redelivered after that is refused as expired, never applied again).
func (o *ReplicationOutbox) Prune(ctx context.Context, sentBefore time.Time) (int64, error) {
	var n int64
	err := o.d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM replication_outbox WHERE sent = 1 AND sent_at < ?`, ms(sentBefore))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `DELETE FROM replication_commands WHERE received < ?`, ms(sentBefore))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("replication outbox: prune: %w", err)
	}
	return n, nil
}

// Begin implements replication.CommandLog: the command's id is recorded
// before it is applied, so a redelivery never applies it again, even
// after a crash in between (its result is then unknown: prev nil).
func (o *ReplicationOutbox) Begin(ctx context.Context, id string, at time.Time) (bool, *replication.Result, error) {
	res, err := o.d.w.ExecContext(ctx, `INSERT INTO replication_commands (id, received) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, ms(at))
	if err != nil {
		return false, nil, fmt.Errorf("replication commands: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil, nil
	}
	var raw sql.NullString
	if err := o.d.w.QueryRowContext(ctx, `SELECT result FROM replication_commands WHERE id = ?`, id).Scan(&raw); err != nil {
		return false, nil, fmt.Errorf("replication commands: %w", err)
	}
	if !raw.Valid {
		return false, nil, nil
	}
	var r replication.Result
	if err := json.Unmarshal([]byte(raw.String), &r); err != nil {
		return false, nil, fmt.Errorf("replication commands: %s: %w", id, err)
	}
	return false, &r, nil
}

// Finish implements replication.CommandLog.
func (o *ReplicationOutbox) Finish(ctx context.Context, id string, r replication.Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := o.d.w.ExecContext(ctx, `UPDATE replication_commands SET result = ? WHERE id = ?`, string(b), id); err != nil {
		return fmt.Errorf("replication commands: %w", err)
	}
	return nil
}
