package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/propgate/gateway/rules/alarmkpi"
)

var _ alarmkpi.Events = (*Rules)(nil)

// AlarmEvents implements alarmkpi.Events (the alarm-system health figures):
// the firings, shelvings and outs-of-service in [from, to), in time order,
// streamed row by row.
func (s *Rules) AlarmEvents(ctx context.Context, from, to time.Time, fn func(alarm []byte, at time.Time, kind alarmkpi.EventKind)) error {
	rows, err := s.pool.Query(ctx, `SELECT alarm_id, at, CASE to_state WHEN 'unacknowledged' THEN 0 WHEN 'shelved' THEN 1 ELSE 2 END
		FROM alarm_transitions WHERE at >= $1 AND at < $2
		AND ((to_state = 'unacknowledged' AND from_state IN ('normal', 'returned_unacknowledged')) OR to_state IN ('shelved', 'out_of_service'))
		ORDER BY at, seq`, from, to)
	if err != nil {
		return fmt.Errorf("store: alarm events: %w", err)
	}
	defer rows.Close()
	var id []byte
	var at time.Time
	var kind int32
	for rows.Next() {
		if err := rows.Scan(&id, &at, &kind); err != nil {
			return fmt.Errorf("store: alarm events: %w", err)
		}
		fn(id, at, alarmkpi.EventKind(kind))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: alarm events: %w", err)
	}
	return nil
}
