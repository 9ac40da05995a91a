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
	// Gap detection (contiguous: every seq up to it is here; head: the
	// newest the site says it sent), the site's status, and the commands
	// sent down with their results.
	`ALTER TABLE center_sites ADD COLUMN contiguous BIGINT NOT NULL DEFAULT 0, ADD COLUMN head BIGINT NOT NULL DEFAULT 0,
		ADD COLUMN gap_since TIMESTAMPTZ, ADD COLUMN replay_asked TIMESTAMPTZ, ADD COLUMN state TEXT NOT NULL DEFAULT 'online',
		ADD COLUMN state_since TIMESTAMPTZ, ADD COLUMN resynced TIMESTAMPTZ;
	CREATE TABLE center_commands (id TEXT PRIMARY KEY, site TEXT NOT NULL, by_user TEXT NOT NULL, action TEXT NOT NULL, key TEXT NOT NULL,
		issued TIMESTAMPTZ NOT NULL, expires TIMESTAMPTZ NOT NULL, command JSON NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
		result_at TIMESTAMPTZ, last_sent TIMESTAMPTZ, sends INTEGER NOT NULL DEFAULT 0);
	CREATE INDEX center_commands_pending ON center_commands(site, status);`,
	// Site epochs (docs/multisite.md): an event is once per (site, epoch,
	// seq); a site follows its newest epoch (its seq tracking starts afresh
	// on a new one); a record is replaced only by a change of a newer
	// epoch, or of its epoch with a newer seq. '' is the epoch of what came
	// without one (older site gateways): the oldest.
	`ALTER TABLE center_events ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
	ALTER TABLE center_events DROP CONSTRAINT center_events_pkey, ADD PRIMARY KEY (site, epoch, seq);
	ALTER TABLE center_records ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
	ALTER TABLE center_sites ADD COLUMN epoch TEXT NOT NULL DEFAULT '', ADD COLUMN epoch_since TIMESTAMPTZ;`,
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
		if err := followEpochs(ctx, tx, []string{e.Site}, []string{text(e.Epoch)}, []int64{e.EpochFrom}, received); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO center_events (site, epoch, seq, v, kind, key, at, received, envelope) VALUES ($1, $9, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (site, epoch, seq) DO NOTHING`, e.Site, e.Seq, e.V, e.Kind, text(e.Key), ts(e.At), received, string(env), text(e.Epoch))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		applied = true
		state, prio := summary(e.Kind, e.Doc)
		if _, err := tx.Exec(ctx, `INSERT INTO center_records (site, kind, key, seq, at, state, priority, doc, epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (site, kind, key) DO UPDATE SET seq = excluded.seq, at = excluded.at, state = excluded.state, priority = excluded.priority, doc = excluded.doc, epoch = excluded.epoch
			WHERE `+newerChange, e.Site, e.Kind, text(e.Key), e.Seq, ts(e.At), state, prio, string(e.Doc), text(e.Epoch)); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `UPDATE center_sites SET last_seq = CASE WHEN epoch = $4 THEN GREATEST(last_seq, $2) ELSE last_seq END, last_seen = GREATEST(last_seen, $3),
				state_since = CASE WHEN state = 'online' THEN state_since ELSE $3 END, state = 'online' WHERE site = $1`,
			e.Site, e.Seq, received, text(e.Epoch)); err != nil {
			return err
		}
		if e.Kind == replication.KindCommand {
			if err := applyResult(ctx, tx, e, received); err != nil {
				return err
			}
		}
		return advance(ctx, tx, e.Site, received)
	})
	if err != nil {
		return false, fmt.Errorf("center store: applying %s seq %d: %w", e.Site, e.Seq, err)
	}
	return applied, nil
}

// newerChange is the condition under which a stored record (center_records)
// takes an incoming one (excluded): a newer epoch, or the same epoch and a
// newer seq. Epochs sort by when the site made them ("C": byte order).
const newerChange = `(center_records.epoch COLLATE "C" < excluded.epoch COLLATE "C"
	OR (center_records.epoch = excluded.epoch AND center_records.seq < excluded.seq))`

// followEpochs makes each site follow the newest epoch seen (the
// parallel slices: a site, an epoch its events or status carry, the
// epoch's first seq when above 1), creating the site's row when it is
// new. On an epoch newer than the site's, the site's seq tracking starts
// afresh (last seq, contiguous, head, gap, replay, resync) — except when
// the site had no epoch yet and the new one continues the sequence
// (epoch_from above 1: the same database, upgraded), which keeps it. An
// older epoch (a late message from a replaced database) changes nothing.
func followEpochs(ctx context.Context, tx pgx.Tx, sites, epochs []string, from []int64, now time.Time) error {
	_, err := tx.Exec(ctx, `WITH input AS (
			SELECT DISTINCT ON (site) site, epoch, from_seq FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(site, epoch, from_seq)
			ORDER BY site, epoch COLLATE "C" DESC, from_seq DESC
		), upd AS (
			UPDATE center_sites s SET epoch = i.epoch, epoch_since = $4,
				last_seq = CASE WHEN s.epoch = '' AND i.from_seq > 1 THEN s.last_seq ELSE 0 END,
				contiguous = CASE WHEN s.epoch = '' AND i.from_seq > 1 THEN s.contiguous ELSE 0 END,
				head = CASE WHEN s.epoch = '' AND i.from_seq > 1 THEN s.head ELSE 0 END,
				gap_since = CASE WHEN s.epoch = '' AND i.from_seq > 1 THEN s.gap_since END,
				replay_asked = CASE WHEN s.epoch = '' AND i.from_seq > 1 THEN s.replay_asked END,
				resynced = CASE WHEN s.epoch = '' AND i.from_seq > 1 THEN s.resynced END
			FROM input i WHERE s.site = i.site AND s.epoch COLLATE "C" < i.epoch COLLATE "C"
		)
		INSERT INTO center_sites (site, last_seq, last_seen, state_since, epoch, epoch_since)
		SELECT site, 0, $4, $4, epoch, CASE WHEN epoch <> '' THEN $4::timestamptz END FROM input
		ON CONFLICT (site) DO NOTHING`, sites, epochs, from, now)
	return err
}

// applyResult records a command's result; a replay answered with a
// resync moves the contiguous mark past what the site no longer has (its
// snapshot, sent after, carries the current records).
func applyResult(ctx context.Context, tx pgx.Tx, e replication.Event, received time.Time) error {
	var r replication.Result
	if err := json.Unmarshal(e.Doc, &r); err != nil {
		return nil // recorded as an event; nothing to match
	}
	if _, err := tx.Exec(ctx, `UPDATE center_commands SET status = $3, reason = $4, result_at = $5 WHERE id = $1 AND site = $2 AND status IN ('pending', 'expired')`,
		e.Key, e.Site, text(r.Status), text(r.Reason), ts(r.At)); err != nil {
		return err
	}
	if r.Action == replication.ActionReplayFrom && r.Resync && r.Oldest > r.From {
		_, err := tx.Exec(ctx, `UPDATE center_sites SET contiguous = GREATEST(contiguous, $2), resynced = $3 WHERE site = $1`, e.Site, r.Oldest-1, received)
		return err
	}
	return nil
}

// advance moves a site's contiguous mark over the seqs now present and
// notes when a gap (a seq missing below the newest known) was first seen.
func advance(ctx context.Context, tx pgx.Tx, site string, now time.Time) error {
	return advanceAll(ctx, tx, []string{site}, now)
}

// advanceAll is advance for several sites in two statements. Two center
// instances committing one site's neighbouring seqs at once may each miss
// the other's row and leave the mark short; the site's next event or
// status moves it on, and a gap that lasts GapWait is only asked for again
// (a replay is applied once).
func advanceAll(ctx context.Context, tx pgx.Tx, sites []string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE center_sites s SET contiguous = (SELECT min(e.seq) FROM center_events e WHERE e.site = s.site AND e.epoch = s.epoch AND e.seq > s.contiguous
			AND NOT EXISTS (SELECT 1 FROM center_events f WHERE f.site = e.site AND f.epoch = e.epoch AND f.seq = e.seq + 1))
		WHERE s.site = ANY($1) AND EXISTS (SELECT 1 FROM center_events e WHERE e.site = s.site AND e.epoch = s.epoch AND e.seq = s.contiguous + 1)`, sites); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE center_sites SET gap_since = CASE WHEN GREATEST(last_seq, head) > contiguous THEN COALESCE(gap_since, $2) END,
		replay_asked = CASE WHEN GREATEST(last_seq, head) > contiguous THEN replay_asked END WHERE site = ANY($1)`, sites, now)
	return err
}

// SiteStatus implements replication.Center: a site's status (online with
// its head seq, or its last will: offline).
func (c *Center) SiteStatus(ctx context.Context, st replication.Status, received time.Time) error {
	state := "online"
	if st.State == "offline" {
		state = "offline"
	}
	err := c.tx(ctx, func(tx pgx.Tx) error {
		if state == "online" { // the last will carries no epoch
			if err := followEpochs(ctx, tx, []string{st.Site}, []string{text(st.Epoch)}, []int64{st.EpochFrom}, received); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO center_sites (site, last_seq, last_seen, head, state, state_since) VALUES ($1, 0, $2, $3, $4, $2)
			ON CONFLICT (site) DO UPDATE SET head = CASE WHEN center_sites.epoch = $5 THEN GREATEST(center_sites.head, excluded.head) ELSE center_sites.head END,
				last_seen = CASE WHEN excluded.state = 'online' THEN GREATEST(center_sites.last_seen, excluded.last_seen) ELSE center_sites.last_seen END,
				state_since = CASE WHEN center_sites.state = excluded.state THEN center_sites.state_since ELSE excluded.state_since END,
				state = excluded.state`, st.Site, received, st.Head, state, text(st.Epoch)); err != nil {
			return err
		}
		return advance(ctx, tx, st.Site, received)
	})
	if err != nil {
		return fmt.Errorf("center store: status of %s: %w", st.Site, err)
	}
	return nil
}

// Gaps implements replication.CommandStore: sites missing events for at
// least wait, not asked to replay within wait.
func (c *Center) Gaps(ctx context.Context, now time.Time, wait time.Duration) ([]replication.Gap, error) {
	// The bursts of an HA instance leave the contiguous marks to this
	// (called each second by the commander, on the leader).
	if err := c.tx(ctx, func(tx pgx.Tx) error {
		var sites []string
		rows, err := tx.Query(ctx, `SELECT site FROM center_sites WHERE GREATEST(last_seq, head) > contiguous OR gap_since IS NOT NULL`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			sites = append(sites, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(sites) == 0 {
			return err
		}
		return advanceAll(ctx, tx, sites, now)
	}); err != nil {
		return nil, fmt.Errorf("center store: gaps: %w", err)
	}
	rows, err := c.pool.Query(ctx, `SELECT site, contiguous + 1, GREATEST(last_seq, head), gap_since FROM center_sites
		WHERE gap_since IS NOT NULL AND gap_since <= $1 AND (replay_asked IS NULL OR replay_asked <= $1) ORDER BY site`, now.Add(-wait))
	if err != nil {
		return nil, fmt.Errorf("center store: gaps: %w", err)
	}
	defer rows.Close()
	var out []replication.Gap
	for rows.Next() {
		var g replication.Gap
		if err := rows.Scan(&g.Site, &g.From, &g.Head, &g.Since); err != nil {
			return nil, fmt.Errorf("center store: gaps: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// ReplayAsked implements replication.CommandStore.
func (c *Center) ReplayAsked(ctx context.Context, site string, at time.Time) error {
	if _, err := c.pool.Exec(ctx, `UPDATE center_sites SET replay_asked = $2 WHERE site = $1`, site, at); err != nil {
		return fmt.Errorf("center store: %w", err)
	}
	return nil
}

// AddCommand implements replication.CommandStore: a command, pending.
func (c *Center) AddCommand(ctx context.Context, cmd replication.Command) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if _, err := c.pool.Exec(ctx, `INSERT INTO center_commands (id, site, by_user, action, key, issued, expires, command, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')`,
		cmd.ID, cmd.Site, text(cmd.By), cmd.Action, text(cmd.Key), cmd.At, cmd.Expires, string(b)); err != nil {
		return fmt.Errorf("center store: command: %w", err)
	}
	return nil
}

// CommandSent implements replication.CommandStore.
func (c *Center) CommandSent(ctx context.Context, id string, at time.Time) error {
	if _, err := c.pool.Exec(ctx, `UPDATE center_commands SET last_sent = $2, sends = sends + 1 WHERE id = $1`, id, at); err != nil {
		return fmt.Errorf("center store: %w", err)
	}
	return nil
}

// Unanswered implements replication.CommandStore: pending commands not
// sent since before; those expired by now are marked expired first.
func (c *Center) Unanswered(ctx context.Context, now, sentBefore time.Time) ([]replication.Command, error) {
	if _, err := c.pool.Exec(ctx, `UPDATE center_commands SET status = 'expired' WHERE status = 'pending' AND expires < $1`, now); err != nil {
		return nil, fmt.Errorf("center store: %w", err)
	}
	rows, err := c.pool.Query(ctx, `SELECT command FROM center_commands WHERE status = 'pending' AND (last_sent IS NULL OR last_sent < $1) ORDER BY issued LIMIT 500`, sentBefore)
	if err != nil {
		return nil, fmt.Errorf("center store: %w", err)
	}
	defer rows.Close()
	var out []replication.Command
	for rows.Next() {
		var b []byte
		var cmd replication.Command
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("center store: %w", err)
		}
		if err := json.Unmarshal(b, &cmd); err != nil {
			return nil, fmt.Errorf("center store: %w", err)
		}
		out = append(out, cmd)
	}
	return out, rows.Err()
}

// CommandStatus is a command as the center knows it.
type CommandStatus = replication.CommandStatus

// Command returns one command (rules.ErrNotFound when unknown).
func (c *Center) Command(ctx context.Context, id string) (CommandStatus, error) {
	var cs CommandStatus
	var b []byte
	err := c.pool.QueryRow(ctx, `SELECT command, status, reason, result_at, sends FROM center_commands WHERE id = $1`, id).Scan(&b, &cs.Status, &cs.Reason, &cs.ResultAt, &cs.Sends)
	if errors.Is(err, pgx.ErrNoRows) {
		return cs, fmt.Errorf("command %s: %w", id, rules.ErrNotFound)
	}
	if err != nil {
		return cs, fmt.Errorf("center store: %w", err)
	}
	if err := json.Unmarshal(b, &cs.Command); err != nil {
		return cs, fmt.Errorf("center store: %w", err)
	}
	return cs, nil
}

// Sites lists every site known to the center, by id; a site is online
// when it was heard from within offlineAfter of now.
func (c *Center) Sites(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]replication.Site, error) {
	rows, err := c.pool.Query(ctx, `SELECT s.site, s.last_seq, s.last_seen, s.contiguous, s.head, s.state, s.state_since, s.resynced, s.epoch, s.epoch_since,
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
		var state string
		var since *time.Time
		if err := rows.Scan(&s.Site, &s.LastSeq, &s.LastSeen, &s.Contiguous, &s.Head, &state, &since, &s.Resynced, &s.Epoch, &s.EpochSince, &byPrio, &s.OpenIncidents); err != nil {
			return nil, fmt.Errorf("center store: sites: %w", err)
		}
		s.ActiveAlarms = map[string]int{}
		if err := json.Unmarshal(byPrio, &s.ActiveAlarms); err != nil {
			return nil, fmt.Errorf("center store: sites: %w", err)
		}
		s.Online = state == "online" && now.Sub(s.LastSeen) <= offlineAfter
		switch {
		case state != "online" && since != nil:
			s.OfflineSince = since
		case !s.Online:
			seen := s.LastSeen
			s.OfflineSince = &seen
		}
		s.Head = max(s.Head, s.LastSeq)
		out = append(out, s)
	}
	return out, rows.Err()
}

// Record is one site record as the center holds it.
type Record = replication.Record

// Records lists records of kind, of one site or all (site ""), in the
// given states (none: any), newest change first, at most limit.
func (c *Center) Records(ctx context.Context, kind, site string, states []string, limit int) ([]Record, error) {
	rows, err := c.pool.Query(ctx, `SELECT site, key, seq, at, state, priority, doc FROM center_records
		WHERE kind = $1 AND ($2 = '' OR site = $2) AND (COALESCE(cardinality($3::text[]), 0) = 0 OR state = ANY($3)) ORDER BY at DESC NULLS LAST, site, key LIMIT $4`,
		kind, site, states, limit)
	if err != nil {
		return nil, fmt.Errorf("center store: records: %w", err)
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		r := Record{Kind: kind}
		var at *time.Time
		var doc []byte
		if err := rows.Scan(&r.Site, &r.Key, &r.Seq, &at, &r.State, &r.Priority, &doc); err != nil {
			return nil, fmt.Errorf("center store: records: %w", err)
		}
		if at != nil {
			r.At = *at
		}
		r.Doc = doc
		out = append(out, r)
	}
	return out, rows.Err()
}

// Commands lists the newest commands for a site (or all: ""), at most limit.
func (c *Center) Commands(ctx context.Context, site string, limit int) ([]CommandStatus, error) {
	rows, err := c.pool.Query(ctx, `SELECT command, status, reason, result_at, sends FROM center_commands
		WHERE ($1 = '' OR site = $1) AND action != 'replay_from' ORDER BY issued DESC LIMIT $2`, site, limit)
	if err != nil {
		return nil, fmt.Errorf("center store: commands: %w", err)
	}
	defer rows.Close()
	out := []CommandStatus{}
	for rows.Next() {
		var cs CommandStatus
		var b []byte
		if err := rows.Scan(&b, &cs.Status, &cs.Reason, &cs.ResultAt, &cs.Sends); err != nil {
			return nil, fmt.Errorf("center store: commands: %w", err)
		}
		if err := json.Unmarshal(b, &cs.Command); err != nil {
			return nil, fmt.Errorf("center store: commands: %w", err)
		}
		out = append(out, cs)
	}
	return out, rows.Err()
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
