package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

var (
	_ rules.DayRollups          = (*Rules)(nil)
	_ workorder.VersionedOrders = (*Rules)(nil)
)

// rollupMigrations (set "kpi_rollups"): the figures of days that are over,
// kept once computed, and the work orders by creation with their versions.
var rollupMigrations = []string{
	`CREATE TABLE kpi_days (
		kind TEXT NOT NULL, day_start TIMESTAMPTZ NOT NULL, day_end TIMESTAMPTZ NOT NULL, doc BYTEA NOT NULL,
		PRIMARY KEY (kind, day_start));
	CREATE INDEX kpi_days_start ON kpi_days(day_start);
	CREATE INDEX workorders_created_version ON workorders(created, id, version);`,
}

// rollupLock serialises keeping a day with dropping it (a late transition
// written meanwhile): an arbitrary constant, "kpidays" in ASCII.
const rollupLock int64 = 0x6b7069646179

// rollupHorizon is the end of the latest kept day this process saved.
type rollupHorizon struct {
	end     atomic.Int64
	dropped atomic.Uint64 // late transitions written
}

func (h *rollupHorizon) raise(t time.Time) {
	for end := t.UnixMicro(); ; {
		old := h.end.Load()
		if end <= old || h.end.CompareAndSwap(old, end) {
			return
		}
	}
}

// lateTransition: dated more than a minute ago (a kept day ended at least
// a minute ago) or before the latest kept day's end (clocks tests set).
func (s *Rules) lateTransition(at time.Time) bool {
	return at.UnixMicro() < s.horizon.end.Load() || at.Before(time.Now().Add(-time.Minute))
}

// dropRollups removes the kept days the late transitions fall in, under
// the rollup lock inside the writer's transaction.
func dropRollups(ctx context.Context, tx pgx.Tx, late []time.Time) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, rollupLock); err != nil {
		return err
	}
	for _, at := range late {
		if _, err := tx.Exec(ctx, `DELETE FROM kpi_days WHERE day_start <= $1 AND day_start > $1 - interval '72 hours' AND day_end > $1`, at); err != nil {
			return err
		}
	}
	return nil
}

// RollupMark implements rules.DayRollups: how many transitions [from, to)
// holds (SaveRollup keeps the day only if it still holds as many).
func (s *Rules) RollupMark(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM alarm_transitions WHERE at >= $1 AND at < $2`, from, to).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: rollup mark: %w", err)
	}
	return n, nil
}

// SaveRollup implements rules.DayRollups.
func (s *Rules) SaveRollup(ctx context.Context, kind string, from, to time.Time, mark int64, doc []byte) error {
	s.horizon.raise(to)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, rollupLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO kpi_days (kind, day_start, day_end, doc)
			SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM alarm_transitions WHERE at >= $2 AND at < $3) = $5
			ON CONFLICT (kind, day_start) DO UPDATE SET day_end = excluded.day_end, doc = excluded.doc`, kind, from, to, doc, mark)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save rollup: %w", err)
	}
	return nil
}

// RollupsDropped implements rules.DayRollups.
func (s *Rules) RollupsDropped() uint64 { return s.horizon.dropped.Load() }

// Rollups implements rules.DayRollups.
func (s *Rules) Rollups(ctx context.Context, kind string, from, to time.Time) (map[int64]rules.Rollup, error) {
	rows, err := s.pool.Query(ctx, `SELECT day_start, day_end, doc FROM kpi_days WHERE kind = $1 AND day_start >= $2 AND day_start < $3`, kind, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: rollups: %w", err)
	}
	defer rows.Close()
	out := map[int64]rules.Rollup{}
	for rows.Next() {
		var start, end time.Time
		var doc []byte
		if err := rows.Scan(&start, &end, &doc); err != nil {
			return nil, fmt.Errorf("store: rollups: %w", err)
		}
		out[start.UnixMilli()] = rules.Rollup{End: end, Doc: doc}
	}
	return out, rows.Err()
}

// WorkOrderVersions implements workorder.VersionedOrders.
func (s *Rules) WorkOrderVersions(ctx context.Context, from, to time.Time) (map[int64]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, version FROM workorders WHERE created >= $1 AND created < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: work-order versions: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("store: work-order versions: %w", err)
		}
		out[id] = int(v)
	}
	return out, rows.Err()
}

// WorkOrdersByID implements workorder.VersionedOrders.
func (s *Rules) WorkOrdersByID(ctx context.Context, ids []int64) ([]*workorder.WorkOrder, error) {
	rows, err := s.pool.Query(ctx, `SELECT doc FROM workorders WHERE id = ANY($1)`, ids)
	out, err := scanDocs[workorder.WorkOrder](rows, err, "work-order")
	if err != nil {
		return nil, fmt.Errorf("store: work orders: %w", err)
	}
	return out, nil
}
