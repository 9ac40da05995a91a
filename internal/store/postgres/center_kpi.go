package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/propgate/gateway/internal/replication"
)

// WorkOrdersCreated lists every site's work orders (as the sites
// replicated them: the newest doc per order) created in [from, to), by
// site and key: the orders a month's figures are computed over, as a
// site computes its own (internal/centerkpi). A doc whose created time is
// not an RFC 3339 time is left out (a site always writes one).
func (c *Center) WorkOrdersCreated(ctx context.Context, from, to time.Time) ([]replication.Record, error) {
	rows, err := c.pool.Query(ctx, `SELECT site, key, seq, at, state, priority, doc FROM (
			SELECT *, CASE WHEN doc->>'created' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$' THEN (doc->>'created')::timestamptz END AS created
			FROM center_records WHERE kind = $1) r
		WHERE created >= $2 AND created < $3 ORDER BY site COLLATE "C", key`, replication.KindWorkOrder, from, to)
	if err != nil {
		return nil, fmt.Errorf("center store: work orders created %s–%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	defer rows.Close()
	out := []replication.Record{}
	for rows.Next() {
		r := replication.Record{Kind: replication.KindWorkOrder}
		var at *time.Time
		var doc []byte
		if err := rows.Scan(&r.Site, &r.Key, &r.Seq, &at, &r.State, &r.Priority, &doc); err != nil {
			return nil, fmt.Errorf("center store: work orders created: %w", err)
		}
		if at != nil {
			r.At = *at
		}
		r.Doc = doc
		out = append(out, r)
	}
	return out, rows.Err()
}

// GoodOrderDays lists every site's equipment-in-good-order figures
// (replication.KindGoodOrder, key YYYY-MM-DD) for the days in
// [fromDay, toDay), by site and day.
func (c *Center) GoodOrderDays(ctx context.Context, fromDay, toDay string) ([]replication.Record, error) {
	rows, err := c.pool.Query(ctx, `SELECT site, key, doc FROM center_records WHERE kind = $1 AND key >= $2 AND key < $3 ORDER BY site COLLATE "C", key`,
		replication.KindGoodOrder, fromDay, toDay)
	if err != nil {
		return nil, fmt.Errorf("center store: good order %s–%s: %w", fromDay, toDay, err)
	}
	defer rows.Close()
	out := []replication.Record{}
	for rows.Next() {
		r := replication.Record{Kind: replication.KindGoodOrder}
		var doc []byte
		if err := rows.Scan(&r.Site, &r.Key, &doc); err != nil {
			return nil, fmt.Errorf("center store: good order: %w", err)
		}
		r.Doc = doc
		out = append(out, r)
	}
	return out, rows.Err()
}
