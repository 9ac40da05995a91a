package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/replication"
)

// centerHAMigrations are the tables of a center run as several instances
// ("center-ha"): the instances of each group (so that one can empty a dead
// one's broker session) and the notifications the center sends, each
// recorded once under its key before it is sent.
var centerHAMigrations = []string{
	`CREATE TABLE center_instances (client_id TEXT PRIMARY KEY, grp TEXT NOT NULL, started TIMESTAMPTZ NOT NULL,
		seen TIMESTAMPTZ NOT NULL, drained TIMESTAMPTZ);
	CREATE TABLE center_notifications (key TEXT PRIMARY KEY, site TEXT NOT NULL, kind TEXT NOT NULL, created TIMESTAMPTZ NOT NULL,
		payload JSON NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
		claimed_by TEXT, claimed_at TIMESTAMPTZ, next_try TIMESTAMPTZ NOT NULL, sent_at TIMESTAMPTZ, last_error TEXT);
	CREATE INDEX center_notifications_due ON center_notifications (next_try) WHERE state IN ('pending', 'sending');
	CREATE FUNCTION center_ts(s TEXT) RETURNS TIMESTAMPTZ LANGUAGE plpgsql STABLE AS $$
		BEGIN RETURN s::timestamptz; EXCEPTION WHEN others THEN RETURN NULL; END $$;`,
	// Alerts routed by region: an escalation is one notification per
	// route (route: the route's id; '' before routes: the default one),
	// all recorded together under the escalation's key (site, alarm,
	// since), which says the alarm occurrence was escalated — also when
	// no route covered its site (state 'unrouted', never sent).
	`ALTER TABLE center_notifications ADD COLUMN route TEXT NOT NULL DEFAULT '', ADD COLUMN escalation TEXT;
	UPDATE center_notifications SET escalation = key WHERE kind = 'escalation';
	CREATE INDEX center_notifications_escalation ON center_notifications (escalation);`,
}

// EnableHA applies the tables of a center run as several instances.
func (c *Center) EnableHA(ctx context.Context) error {
	return c.Migrate(ctx, "center-ha", centerHAMigrations)
}

// RegisterInstance records that the instance clientID of group started
// (or is still there, with started unchanged).
func (c *Center) RegisterInstance(ctx context.Context, group, clientID string, started, now time.Time) error {
	_, err := c.pool.Exec(ctx, `INSERT INTO center_instances (client_id, grp, started, seen) VALUES ($1, $2, $3, $4)
		ON CONFLICT (client_id) DO UPDATE SET grp = excluded.grp, started = excluded.started, seen = excluded.seen`, clientID, group, started, now)
	if err != nil {
		return fmt.Errorf("center store: registering instance %s: %w", clientID, err)
	}
	return nil
}

// Instances lists the group's instances.
func (c *Center) Instances(ctx context.Context, group string) ([]replication.Instance, error) {
	rows, err := c.pool.Query(ctx, `SELECT client_id, grp, started, seen, drained FROM center_instances WHERE grp = $1 ORDER BY client_id`, group)
	if err != nil {
		return nil, fmt.Errorf("center store: instances: %w", err)
	}
	defer rows.Close()
	var out []replication.Instance
	for rows.Next() {
		var in replication.Instance
		var drained *time.Time
		if err := rows.Scan(&in.ClientID, &in.Group, &in.Started, &in.Seen, &drained); err != nil {
			return nil, fmt.Errorf("center store: instances: %w", err)
		}
		in.Drained = fromTS(drained)
		out = append(out, in)
	}
	return out, rows.Err()
}

// MarkDrained records that the instance's broker session was emptied.
func (c *Center) MarkDrained(ctx context.Context, clientID string, at time.Time) error {
	if _, err := c.pool.Exec(ctx, `UPDATE center_instances SET drained = $2 WHERE client_id = $1`, clientID, at); err != nil {
		return fmt.Errorf("center store: instance %s: %w", clientID, err)
	}
	return nil
}

// Escalate records the escalation of one alarm occurrence (key: its
// escalation key, Overdue.Escalation) in one transaction: a notification
// per route, each once under its own key; with none (no route covers the
// site) a row in state 'unrouted' that is never sent, so that the
// occurrence is not looked at again. It returns how many notifications
// are new (0: this escalation was recorded before, by any instance).
func (c *Center) Escalate(ctx context.Context, key string, ns []replication.Notification, unrouted replication.Notification) (int, error) {
	added := 0
	err := c.tx(ctx, func(tx pgx.Tx) error {
		added = 0
		rows := ns
		state := "pending"
		if len(ns) == 0 {
			rows, state = []replication.Notification{unrouted}, "unrouted"
		}
		for _, n := range rows {
			tag, err := tx.Exec(ctx, `INSERT INTO center_notifications (key, site, kind, created, payload, next_try, route, escalation, state)
				VALUES ($1, $2, $3, $4, $5, $4, $6, $7, $8) ON CONFLICT (key) DO NOTHING`,
				text(n.Key), text(n.Site), n.Kind, n.Created, string(n.Payload), text(n.Route), text(key), state)
			if err != nil {
				return err
			}
			if state == "pending" {
				added += int(tag.RowsAffected())
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("center store: escalation %s: %w", key, err)
	}
	return added, nil
}

// Claim takes up to limit notifications due for sending, marking them
// sending by by: those never sent and due, and those whose sender claimed
// them more than stale ago without saying how it went (it died mid-send,
// or lost its connection). It runs on the leader's lock connection (With):
// a claim succeeds only while the leader's lock is held, so an instance
// that lost leadership without knowing it yet claims nothing.
func (c *Center) Claim(ctx context.Context, s *LockSession, ep *Epoch, by string, limit int, stale time.Duration, now time.Time) ([]replication.Notification, error) {
	var out []replication.Notification
	err := s.With(ctx, ep, func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `WITH due AS (
				SELECT key FROM center_notifications
				WHERE (state = 'pending' AND next_try <= $3) OR (state = 'sending' AND claimed_at < $3 - $4 * interval '1 microsecond')
				ORDER BY created, key LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE center_notifications n SET state = 'sending', attempts = n.attempts + 1, claimed_by = $1, claimed_at = $3
			FROM due WHERE n.key = due.key
			RETURNING n.key, n.site, n.kind, n.route, n.created, n.payload, n.attempts`, by, limit, now, stale.Microseconds())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n replication.Notification
			var payload []byte
			if err := rows.Scan(&n.Key, &n.Site, &n.Kind, &n.Route, &n.Created, &payload, &n.Attempt); err != nil {
				return err
			}
			n.Payload = json.RawMessage(payload)
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		if errors.Is(err, ErrEpochOver) {
			return nil, err
		}
		return nil, fmt.Errorf("center store: claiming notifications: %w", err)
	}
	return out, nil
}

// Sent records that the notification was delivered (by whoever sent it:
// a fact, recorded even by an instance no longer leading).
func (c *Center) Sent(ctx context.Context, key string, at time.Time) error {
	if _, err := c.pool.Exec(ctx, `UPDATE center_notifications SET state = 'sent', sent_at = $2, last_error = NULL WHERE key = $1`, key, at); err != nil {
		return fmt.Errorf("center store: notification %s: %w", key, err)
	}
	return nil
}

// Failed records a failed send: tried again at retry, or given up after
// maxAttempts (state failed, counted by the caller).
func (c *Center) Failed(ctx context.Context, key, why string, retry time.Time, maxAttempts int) error {
	if _, err := c.pool.Exec(ctx, `UPDATE center_notifications SET state = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'pending' END,
		next_try = $3, last_error = $2 WHERE key = $1 AND state = 'sending'`, key, text(why), retry, maxAttempts); err != nil {
		return fmt.Errorf("center store: notification %s: %w", key, err)
	}
	return nil
}

// NotificationCounts counts the notifications by state (pending, sending,
// sent, failed, unrouted), for /metrics and tests.
func (c *Center) NotificationCounts(ctx context.Context) (map[string]int, error) {
	rows, err := c.pool.Query(ctx, `SELECT state, count(*) FROM center_notifications GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("center store: notifications: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// Overdue is a site's alarm left unacknowledged too long, not yet escalated.
type Overdue struct {
	Record
	Escalation string // the escalation's idempotency key: site, alarm and since
	Since      time.Time
}

// OverdueAlarms lists alarms unacknowledged since before before, of the
// given priorities, whose escalation has not been recorded: one per
// alarm occurrence (its since; a since that is not a time never
// escalates), at most limit, oldest first.
func (c *Center) OverdueAlarms(ctx context.Context, priorities []string, before time.Time, limit int) ([]Overdue, error) {
	rows, err := c.pool.Query(ctx, `SELECT r.site, r.key, r.seq, r.state, r.priority, r.doc, s.since, s.k FROM center_records r,
		LATERAL (SELECT center_ts(r.doc->>'since') AS since, 'escalation:' || r.site || ':' || r.key || ':' || (r.doc->>'since') AS k) s
		WHERE r.kind = 'alarm' AND r.state = 'unacknowledged' AND r.priority = ANY($1) AND s.since <= $2
		AND NOT EXISTS (SELECT 1 FROM center_notifications n WHERE n.escalation = s.k)
		ORDER BY s.since LIMIT $3`, priorities, before, limit)
	if err != nil {
		return nil, fmt.Errorf("center store: overdue alarms: %w", err)
	}
	defer rows.Close()
	var out []Overdue
	for rows.Next() {
		o := Overdue{Record: Record{Kind: replication.KindAlarm}}
		var doc []byte
		if err := rows.Scan(&o.Site, &o.Record.Key, &o.Seq, &o.State, &o.Priority, &doc, &o.Since, &o.Escalation); err != nil {
			return nil, fmt.Errorf("center store: overdue alarms: %w", err)
		}
		o.Doc = doc
		out = append(out, o)
	}
	return out, rows.Err()
}
