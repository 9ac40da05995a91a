package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/rules"
)

// centerMigrations are the monitoring center's tables ("center"): every
// event once per (site, seq), every site's records keyed by (site, kind,
// key) with the newest seq, and each site's last contact.
var centerMigrations = []string{
	`CREATE TABLE center_sites (site TEXT PRIMARY KEY, last_seq BIGINT NOT NULL, last_seen TIMESTAMPTZ NOT NULL);
	CREATE TABLE center_events (site TEXT NOT NULL, seq BIGINT NOT NULL, v INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
		at TIMESTAMPTZ, received TIMESTAMPTZ NOT NULL, envelope JSON NOT NULL, PRIMARY KEY (site, seq));
	CREATE TABLE center_records (site TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, seq BIGINT NOT NULL, at TIMESTAMPTZ,
		state TEXT NOT NULL, priority TEXT NOT NULL, doc JSON NOT NULL, PRIMARY KEY (site, kind, key));
	CREATE INDEX center_records_state ON center_records(kind, state);`,
}

// Center is the monitoring center's store of every site's records.
type Center struct{ *DB }

var _ replication.Center = (*Center)(nil)

// OpenCenter connects to the center's database and applies its migrations.
func OpenCenter(ctx context.Context, url string) (*Center, error) {
	d, err := Open(ctx, url, "center")
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx, "center", centerMigrations); err != nil {
		d.Close()
		return nil, err
	}
	return &Center{DB: d}, nil
}

// summary is what the center indexes of a record: an alarm's state and
// priority, a work order's or an incident's status.
func summary(kind string, doc []byte) (state, priority string) {
	var d struct {
		State    string `json:"state"`
		Status   string `json:"status"`
		Priority string `json:"priority"`
	}
	_ = json.Unmarshal(doc, &d)
	if kind == replication.KindAlarm {
		return text(d.State), text(d.Priority)
	}
	return text(d.Status), text(d.Priority)
}

// Apply implements replication.Center, in one transaction: the event is
// recorded once per (site, seq); a duplicate changes nothing; a record is
// replaced only by a newer seq, so an old event arriving late never wins.
func (c *Center) Apply(ctx context.Context, e replication.Event, received time.Time) (bool, error) {
	env, err := json.Marshal(e)
	if err != nil {
		return false, err
	}
	applied := false
	err = c.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO center_events (site, seq, v, kind, key, at, received, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (site, seq) DO NOTHING`, e.Site, e.Seq, e.V, e.Kind, text(e.Key), ts(e.At), received, string(env))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		applied = true
		state, prio := summary(e.Kind, e.Doc)
		if _, err := tx.Exec(ctx, `INSERT INTO center_records (site, kind, key, seq, at, state, priority, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (site, kind, key) DO UPDATE SET seq = excluded.seq, at = excluded.at, state = excluded.state, priority = excluded.priority, doc = excluded.doc
			WHERE center_records.seq < excluded.seq`, e.Site, e.Kind, text(e.Key), e.Seq, ts(e.At), state, prio, string(e.Doc)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO center_sites (site, last_seq, last_seen) VALUES ($1, $2, $3)
			ON CONFLICT (site) DO UPDATE SET last_seq = GREATEST(center_sites.last_seq, excluded.last_seq), last_seen = GREATEST(center_sites.last_seen, excluded.last_seen)`,
			e.Site, e.Seq, received)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("center store: applying %s seq %d: %w", e.Site, e.Seq, err)
	}
	return applied, nil
}

// Sites lists every site known to the center, by id; a site is online
// when it was heard from within offlineAfter of now.
func (c *Center) Sites(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]replication.Site, error) {
	rows, err := c.pool.Query(ctx, `SELECT s.site, s.last_seq, s.last_seen,
		COALESCE((SELECT json_object_agg(priority, n) FROM (SELECT priority, count(*) AS n FROM center_records r
			WHERE r.site = s.site AND r.kind = 'alarm' AND r.state IN ('unacknowledged', 'acknowledged') GROUP BY priority) p), '{}'),
		(SELECT count(*) FROM center_records r WHERE r.site = s.site AND r.kind = 'incident' AND r.state = 'open')
		FROM center_sites s ORDER BY s.site COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("center store: sites: %w", err)
	}
	defer rows.Close()
	out := []replication.Site{}
	for rows.Next() {
		var s replication.Site
		var byPrio []byte
		if err := rows.Scan(&s.Site, &s.LastSeq, &s.LastSeen, &byPrio, &s.OpenIncidents); err != nil {
			return nil, fmt.Errorf("center store: sites: %w", err)
		}
		s.ActiveAlarms = map[string]int{}
		if err := json.Unmarshal(byPrio, &s.ActiveAlarms); err != nil {
			return nil, fmt.Errorf("center store: sites: %w", err)
		}
		s.Online = now.Sub(s.LastSeen) <= offlineAfter
		out = append(out, s)
	}
	return out, rows.Err()
}

// Record is one site record as the center holds it.
type Record struct {
	Site, Kind, Key string
	Seq             int64
	State, Priority string
	Doc             json.RawMessage
}

// Record returns one record (rules.ErrNotFound when the center has none).
func (c *Center) Record(ctx context.Context, site, kind, key string) (Record, error) {
	r := Record{Site: site, Kind: kind, Key: key}
	var doc []byte
	err := c.pool.QueryRow(ctx, `SELECT seq, state, priority, doc FROM center_records WHERE site = $1 AND kind = $2 AND key = $3`, site, kind, key).
		Scan(&r.Seq, &r.State, &r.Priority, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("%s %s at %s: %w", kind, key, site, rules.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("center store: %w", err)
	}
	r.Doc = doc
	return r, nil
}
