package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

var (
	_ rules.DayRollups          = (*Rules)(nil)
	_ workorder.VersionedOrders = (*Rules)(nil)
)

// rollupMigrations (set "kpi_rollups"): the figures of days that are over,
// kept once computed (issue 12: a month of a million transitions in
// milliseconds), and the work orders' creation index with their versions
// (the KPIs re-read only the orders that changed).
var rollupMigrations = []string{
	`CREATE TABLE kpi_days (
		kind TEXT NOT NULL, day_start INTEGER NOT NULL, day_end INTEGER NOT NULL, doc BLOB NOT NULL,
		PRIMARY KEY (kind, day_start));
	CREATE INDEX kpi_days_start ON kpi_days(day_start);
	CREATE INDEX workorders_created_version ON workorders(created, id, version);`,
	// Equipment in good order reads the fault alarms' states from this
	// index alone (it replaces (alarm_id, at, seq), its prefix).
	`CREATE INDEX alarm_transitions_states ON alarm_transitions(alarm_id, at, seq, to_state);
	DROP INDEX alarm_transitions_alarm_at;`,
}

// rollupHorizon is the end of the latest kept day (Unix ms): a transition
// dated before it may fall in a kept day, which is then dropped.
type rollupHorizon struct {
	end     atomic.Int64
	dropped atomic.Uint64 // late transitions written
}

func (h *rollupHorizon) raise(end int64) {
	for {
		old := h.end.Load()
		if end <= old || h.end.CompareAndSwap(old, end) {
			return
		}
	}
}

// lateTransition: a transition dated more than a minute ago (a kept day is
// one that ended at least a minute ago) or before the latest kept day's end
// (clocks that tests set) may fall in a kept day.
func (s *Rules) lateTransition(at time.Time) bool {
	m := ms(at)
	return m < s.horizon.end.Load() || at.Before(time.Now().Add(-time.Minute))
}

// dropRollups removes the kept days a late transition falls in (inside the
// writer's transaction, so a day saved before it is dropped and one saved
// after it sees the transition: SaveRollup's check).
func dropRollups(ctx context.Context, tx *sql.Tx, at time.Time) error {
	m := ms(at)
	_, err := tx.ExecContext(ctx, `DELETE FROM kpi_days WHERE day_start <= ? AND day_start > ? AND day_end > ?`,
		m, m-(72*time.Hour).Milliseconds(), m)
	return err
}

// RollupMark implements rules.DayRollups: the newest transition's sequence
// number (SaveRollup refuses a day that received a transition after it).
func (s *Rules) RollupMark(ctx context.Context, _, _ time.Time) (int64, error) {
	var seq sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(seq) FROM alarm_transitions`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("store: rollup mark: %w", err)
	}
	return seq.Int64, nil
}

// SaveRollup implements rules.DayRollups: it keeps the day unless a
// transition dated in it was written after mark (the check reads only the
// rows written since: sequence numbers above mark).
func (s *Rules) SaveRollup(ctx context.Context, kind string, from, to time.Time, mark int64, doc []byte) error {
	s.horizon.raise(ms(to)) // before the write: a late transition from now on drops the day
	if _, err := s.w.ExecContext(ctx, `INSERT INTO kpi_days (kind, day_start, day_end, doc)
		SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM alarm_transitions WHERE seq > ? AND at >= ? AND at < ?)
		ON CONFLICT (kind, day_start) DO UPDATE SET day_end = excluded.day_end, doc = excluded.doc`,
		kind, ms(from), ms(to), doc, mark, ms(from), ms(to)); err != nil {
		return fmt.Errorf("store: save rollup: %w", err)
	}
	return nil
}

// RollupsDropped implements rules.DayRollups.
func (s *Rules) RollupsDropped() uint64 { return s.horizon.dropped.Load() }

// Rollups implements rules.DayRollups.
func (s *Rules) Rollups(ctx context.Context, kind string, from, to time.Time) (map[int64]rules.Rollup, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT day_start, day_end, doc FROM kpi_days WHERE kind = ? AND day_start >= ? AND day_start < ?`, kind, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("store: rollups: %w", err)
	}
	defer rows.Close()
	out := map[int64]rules.Rollup{}
	for rows.Next() {
		var start, end int64
		var doc []byte
		if err := rows.Scan(&start, &end, &doc); err != nil {
			return nil, fmt.Errorf("store: rollups: %w", err)
		}
		out[start] = rules.Rollup{End: time.UnixMilli(end), Doc: doc}
	}
	return out, rows.Err()
}

// WorkOrderVersions implements workorder.VersionedOrders: the id and
// version of each order created in [from, to), from the index alone.
func (s *Rules) WorkOrderVersions(ctx context.Context, from, to time.Time) (map[int64]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, version FROM workorders INDEXED BY workorders_created_version WHERE created >= ? AND created < ?`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("store: work-order versions: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var v int
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("store: work-order versions: %w", err)
		}
		out[id] = v
	}
	return out, rows.Err()
}

// WorkOrdersByID implements workorder.VersionedOrders.
func (s *Rules) WorkOrdersByID(ctx context.Context, ids []int64) ([]*workorder.WorkOrder, error) {
	var out []*workorder.WorkOrder
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := s.r.QueryContext(ctx, `SELECT doc FROM workorders WHERE id IN (?`+strings.Repeat(",?", n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: work orders: %w", err)
		}
		ws, err := scanWorkOrders(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ws...)
		ids = ids[n:]
	}
	return out, nil
}
