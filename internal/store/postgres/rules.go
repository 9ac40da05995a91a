package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// Rules is the rules database: alarms and their transitions, work orders
// and their history, the webhook outbox, incidents.
type Rules struct {
	*DB
	outbox  bool
	horizon rollupHorizon
}

var (
	_ rules.AlarmStore   = (*Rules)(nil)
	_ workorder.Store    = (*Rules)(nil)
	_ workorder.Outbox   = (*Rules)(nil)
	_ playbook.Store     = (*Rules)(nil)
	_ rules.FaultHistory = (*Rules)(nil)
)

// rulesMigrations: documents (doc) are json, not jsonb, so that text a
// person wrote comes back exactly (jsonb refuses \u0000 and reorders keys).
var rulesMigrations = []string{
	`CREATE TABLE alarms (
		id TEXT PRIMARY KEY, rule TEXT NOT NULL, asset TEXT NOT NULL, doc JSON NOT NULL, state TEXT NOT NULL, updated TIMESTAMPTZ NOT NULL);
	CREATE TABLE alarm_transitions (
		seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, alarm_id TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
		at TIMESTAMPTZ, actor TEXT NOT NULL, note TEXT NOT NULL, value TEXT NOT NULL);
	CREATE INDEX alarm_transitions_alarm ON alarm_transitions(alarm_id, seq);
	CREATE INDEX alarm_transitions_at ON alarm_transitions(at);
	CREATE INDEX alarm_transitions_alarm_at ON alarm_transitions(alarm_id, at, seq);
	CREATE TABLE workorders (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, rule TEXT NOT NULL, asset TEXT NOT NULL, category TEXT NOT NULL, status TEXT NOT NULL,
		created TIMESTAMPTZ, version BIGINT NOT NULL, doc JSON NOT NULL);
	CREATE INDEX workorders_rule_asset ON workorders(rule, asset, id);
	CREATE INDEX workorders_status ON workorders(status);
	CREATE INDEX workorders_created ON workorders(created);
	CREATE TABLE workorder_history (
		seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, workorder BIGINT NOT NULL REFERENCES workorders(id), at TIMESTAMPTZ, actor TEXT NOT NULL,
		from_status TEXT NOT NULL, to_status TEXT NOT NULL, note TEXT NOT NULL);
	CREATE INDEX workorder_history_wo ON workorder_history(workorder, seq);
	CREATE TABLE webhook_outbox (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0, delivered SMALLINT NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');
	CREATE INDEX webhook_outbox_pending ON webhook_outbox(id) WHERE delivered = 0;
	CREATE TABLE incidents (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, playbook TEXT NOT NULL, asset TEXT NOT NULL, status TEXT NOT NULL,
		drill BOOLEAN NOT NULL, started TIMESTAMPTZ, doc JSON NOT NULL);
	CREATE INDEX incidents_status ON incidents(status);`,
}

// OpenRules connects to the database at url and applies the rules
// migrations. With outbox set, every work-order change also queues a
// webhook delivery.
func OpenRules(ctx context.Context, url string, outbox bool) (*Rules, error) {
	d, err := Open(ctx, url, "rules")
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx, "rules", rulesMigrations); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.Migrate(ctx, "kpi_rollups", rollupMigrations); err != nil {
		d.Close()
		return nil, err
	}
	s := &Rules{DB: d, outbox: outbox}
	var end *time.Time
	if err := d.pool.QueryRow(ctx, `SELECT MAX(day_end) FROM kpi_days`).Scan(&end); err != nil {
		d.Close()
		return nil, fmt.Errorf("rules store: %w", err)
	}
	if end != nil {
		s.horizon.raise(*end)
	}
	return s, nil
}

// LoadAlarms implements rules.AlarmStore.
func (s *Rules) LoadAlarms(ctx context.Context) ([]*rules.Alarm, error) {
	rows, err := s.pool.Query(ctx, `SELECT doc FROM alarms ORDER BY id COLLATE "C"`)
	out, err := scanDocs[rules.Alarm](rows, err, "alarm")
	if err != nil {
		return nil, fmt.Errorf("store: load alarms: %w", err)
	}
	return out, nil
}

// SaveAlarm implements rules.AlarmStore.
func (s *Rules) SaveAlarm(ctx context.Context, a *rules.Alarm, tr []rules.Transition) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	dropped := false
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO alarms (id, rule, asset, doc, state, updated) VALUES ($1, $2, $3, $4, $5, now())
			ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, state = excluded.state, updated = excluded.updated`,
			a.ID, a.Rule, a.Asset, string(doc), string(a.State)); err != nil {
			return err
		}
		if len(tr) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		var late []time.Time
		for _, t := range tr {
			b.Queue(`INSERT INTO alarm_transitions (alarm_id, from_state, to_state, at, actor, note, value) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				t.AlarmID, string(t.From), string(t.To), ts(t.At), text(t.By), text(t.Note), text(t.Value))
			if s.lateTransition(t.At) { // rare: dated in a day whose figures may be kept
				late = append(late, t.At)
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if len(late) > 0 {
			dropped = true
			return dropRollups(ctx, tx, late)
		}
		return nil
	})
	if err == nil && dropped {
		s.horizon.dropped.Add(1)
	}
	if err != nil {
		return fmt.Errorf("store: save alarm %s: %w", a.ID, err)
	}
	return nil
}

func scanTransitions(rows pgx.Rows, err error) ([]rules.Transition, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rules.Transition
	for rows.Next() {
		var t rules.Transition
		var from, to string
		var at *time.Time
		if err := rows.Scan(&t.AlarmID, &from, &to, &at, &t.By, &t.Note, &t.Value); err != nil {
			return nil, err
		}
		t.From, t.To, t.At = rules.AlarmState(from), rules.AlarmState(to), fromTS(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// AlarmHistory is an alarm's transitions, oldest first.
func (s *Rules) AlarmHistory(ctx context.Context, id string) ([]rules.Transition, error) {
	rows, err := s.pool.Query(ctx, `SELECT alarm_id, from_state, to_state, at, actor, note, value FROM alarm_transitions WHERE alarm_id = $1 ORDER BY seq`, id)
	out, err := scanTransitions(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: alarm history: %w", err)
	}
	return out, nil
}

// TransitionsBetween implements rules.AlarmStore.
func (s *Rules) TransitionsBetween(ctx context.Context, from, to time.Time) ([]rules.Transition, error) {
	rows, err := s.pool.Query(ctx, `SELECT alarm_id, from_state, to_state, at, actor, note, value FROM alarm_transitions
		WHERE at >= $1 AND at < $2 ORDER BY at, seq`, from, to)
	out, err := scanTransitions(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: transitions: %w", err)
	}
	return out, nil
}

// TransitionsOf implements rules.FaultHistory: the transitions of the given
// alarms with from <= at < to, by alarm (byte order, as SQLite) then time.
func (s *Rules) TransitionsOf(ctx context.Context, alarmIDs []string, from, to time.Time) ([]rules.Transition, error) {
	if len(alarmIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT alarm_id, from_state, to_state, at, actor, note, value FROM alarm_transitions
		WHERE alarm_id = ANY($1) AND at >= $2 AND at < $3 ORDER BY alarm_id COLLATE "C", at, seq`, alarmIDs, from, to)
	out, err := scanTransitions(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: transitions: %w", err)
	}
	return out, nil
}

// StatesAt implements rules.AlarmStore: each alarm's state after its last
// transition before t.
func (s *Rules) StatesAt(ctx context.Context, t time.Time) (map[string]rules.AlarmState, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.id, last.to_state FROM alarms a
		CROSS JOIN LATERAL (SELECT tr.to_state FROM alarm_transitions tr WHERE tr.alarm_id = a.id AND tr.at < $1
			ORDER BY tr.at DESC, tr.seq DESC LIMIT 1) last`, t)
	if err != nil {
		return nil, fmt.Errorf("store: alarm states: %w", err)
	}
	defer rows.Close()
	out := map[string]rules.AlarmState{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, fmt.Errorf("store: alarm states: %w", err)
		}
		out[id] = rules.AlarmState(st)
	}
	return out, rows.Err()
}

func (s *Rules) writeHistory(ctx context.Context, tx pgx.Tx, w *workorder.WorkOrder, h workorder.HistoryEntry) error {
	if _, err := tx.Exec(ctx, `INSERT INTO workorder_history (workorder, at, actor, from_status, to_status, note) VALUES ($1, $2, $3, $4, $5, $6)`,
		w.ID, ts(h.At), text(h.By), string(h.From), string(h.To), text(h.Note)); err != nil {
		return fmt.Errorf("work-order history: %w", err)
	}
	if s.outbox {
		payload, err := json.Marshal(workorder.WebhookPayload{Event: workorder.WebhookEvent(h), WorkOrder: *w, Change: h})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_outbox (key, payload) VALUES ($1, $2)`, fmt.Sprintf("wo-%d-v%d", w.ID, w.Version), string(payload)); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	return nil
}

// CreateWorkOrder implements workorder.Store.
func (s *Rules) CreateWorkOrder(ctx context.Context, w *workorder.WorkOrder, h workorder.HistoryEntry) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO workorders (rule, asset, category, status, created, version, doc) VALUES ($1, $2, $3, $4, $5, $6, '{}')
			RETURNING id`, w.Rule, w.Asset, w.Category, string(w.Status), ts(w.Created), w.Version).Scan(&id); err != nil {
			return err
		}
		w.ID = id
		h.WorkOrder = id
		doc, err := json.Marshal(w)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE workorders SET doc = $1 WHERE id = $2`, string(doc), id); err != nil {
			return err
		}
		return s.writeHistory(ctx, tx, w, h)
	})
	if err != nil {
		w.ID = 0
		return fmt.Errorf("store: create work order: %w", err)
	}
	return nil
}

// UpdateWorkOrder implements workorder.Store: saved only if the stored
// version is w.Version-1 (workorder.ErrConflict otherwise).
func (s *Rules) UpdateWorkOrder(ctx context.Context, w *workorder.WorkOrder, h workorder.HistoryEntry) error {
	doc, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE workorders SET status = $1, category = $2, version = $3, doc = $4 WHERE id = $5 AND version = $6`,
			string(w.Status), w.Category, w.Version, string(doc), w.ID, w.Version-1)
		if err != nil {
			return fmt.Errorf("store: update work order %d: %w", w.ID, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("work order %d at version %d: %w", w.ID, w.Version-1, workorder.ErrConflict)
		}
		h.WorkOrder = w.ID
		if err := s.writeHistory(ctx, tx, w, h); err != nil {
			return fmt.Errorf("store: update work order %d: %w", w.ID, err)
		}
		return nil
	})
}

// WorkOrder implements workorder.Store.
func (s *Rules) WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT doc FROM workorders WHERE id = $1`, id)
	ws, err := scanDocs[workorder.WorkOrder](rows, err, "work-order")
	if err != nil {
		return nil, nil, fmt.Errorf("store: work order %d: %w", id, err)
	}
	if len(ws) == 0 {
		return nil, nil, fmt.Errorf("work order %d: %w", id, rules.ErrNotFound)
	}
	hr, err := s.pool.Query(ctx, `SELECT workorder, at, actor, from_status, to_status, note FROM workorder_history WHERE workorder = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("store: work order %d history: %w", id, err)
	}
	defer hr.Close()
	var hist []workorder.HistoryEntry
	for hr.Next() {
		var h workorder.HistoryEntry
		var at *time.Time
		var from, to string
		if err := hr.Scan(&h.WorkOrder, &at, &h.By, &from, &to, &h.Note); err != nil {
			return nil, nil, fmt.Errorf("store: work order %d history: %w", id, err)
		}
		h.At, h.From, h.To = fromTS(at), workorder.Status(from), workorder.Status(to)
		hist = append(hist, h)
	}
	return ws[0], hist, hr.Err()
}

// WorkOrders implements workorder.Store.
func (s *Rules) WorkOrders(ctx context.Context, f workorder.Filter) ([]*workorder.WorkOrder, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Open {
		where = append(where, `status NOT IN ('closed', 'cancelled')`)
	}
	if f.Status != "" {
		where = append(where, `status = `+arg(string(f.Status)))
	}
	if f.Asset != "" {
		where = append(where, `asset = `+arg(f.Asset))
	}
	if f.Category != "" {
		where = append(where, `category = `+arg(f.Category))
	}
	if !f.CreatedAfter.IsZero() {
		where = append(where, `created >= `+arg(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		where = append(where, `created < `+arg(f.CreatedBefore))
	}
	q := `SELECT doc FROM workorders`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ` + arg(f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	out, err := scanDocs[workorder.WorkOrder](rows, err, "work-order")
	if err != nil {
		return nil, fmt.Errorf("store: work orders: %w", err)
	}
	return out, nil
}

// LatestWorkOrderFor implements workorder.Store (nil when there is none).
func (s *Rules) LatestWorkOrderFor(ctx context.Context, rule, asset string) (*workorder.WorkOrder, error) {
	rows, err := s.pool.Query(ctx, `SELECT doc FROM workorders WHERE rule = $1 AND asset = $2 ORDER BY id DESC LIMIT 1`, rule, asset)
	ws, err := scanDocs[workorder.WorkOrder](rows, err, "work-order")
	if err != nil {
		return nil, fmt.Errorf("store: latest work order: %w", err)
	}
	if len(ws) == 0 {
		return nil, nil
	}
	return ws[0], nil
}

// CreateIncident implements playbook.Store.
func (s *Rules) CreateIncident(ctx context.Context, in *playbook.Incident) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO incidents (playbook, asset, status, drill, started, doc) VALUES ($1, $2, $3, $4, $5, '{}') RETURNING id`,
			in.Playbook, in.Asset, in.Status, in.Drill, ts(in.Started)).Scan(&in.ID); err != nil {
			return err
		}
		doc, err := json.Marshal(in)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE incidents SET doc = $1 WHERE id = $2`, string(doc), in.ID)
		return err
	})
	if err != nil {
		in.ID = 0
		return fmt.Errorf("store: create incident: %w", err)
	}
	return nil
}

// SaveIncident implements playbook.Store.
func (s *Rules) SaveIncident(ctx context.Context, in *playbook.Incident) error {
	doc, err := json.Marshal(in)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE incidents SET status = $1, doc = $2 WHERE id = $3`, in.Status, string(doc), in.ID)
	if err != nil {
		return fmt.Errorf("store: save incident %d: %w", in.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: save incident %d: %w", in.ID, rules.ErrNotFound)
	}
	return nil
}

// Incident implements playbook.Store.
func (s *Rules) Incident(ctx context.Context, id int64) (*playbook.Incident, error) {
	rows, err := s.pool.Query(ctx, `SELECT doc FROM incidents WHERE id = $1`, id)
	ins, err := scanDocs[playbook.Incident](rows, err, "incident")
	if err != nil {
		return nil, fmt.Errorf("store: incident %d: %w", id, err)
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("incident %d: %w", id, rules.ErrNotFound)
	}
	return ins[0], nil
}

// Incidents implements playbook.Store.
func (s *Rules) Incidents(ctx context.Context, openOnly bool, limit int) ([]*playbook.Incident, error) {
	q := `SELECT doc FROM incidents`
	if openOnly {
		q += ` WHERE status = 'open'`
	}
	q += ` ORDER BY id DESC`
	var args []any
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	out, err := scanDocs[playbook.Incident](rows, err, "incident")
	if err != nil {
		return nil, fmt.Errorf("store: incidents: %w", err)
	}
	return out, nil
}

// PendingOutbox implements workorder.Outbox.
func (s *Rules) PendingOutbox(ctx context.Context, limit int) ([]workorder.OutboxItem, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, key, payload, attempts FROM webhook_outbox WHERE delivered = 0 ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	defer rows.Close()
	var out []workorder.OutboxItem
	for rows.Next() {
		var it workorder.OutboxItem
		var payload string
		if err := rows.Scan(&it.ID, &it.Key, &payload, &it.Attempts); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		it.Payload = []byte(payload)
		out = append(out, it)
	}
	return out, rows.Err()
}

// OutboxAttempt implements workorder.Outbox: delivered 0 stays pending, 1
// is delivered, 2 is refused for good (kept, with its error, for a person).
func (s *Rules) OutboxAttempt(ctx context.Context, id int64, result workorder.OutboxResult, errMsg string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_outbox SET attempts = attempts + 1, delivered = $1, last_error = $2 WHERE id = $3`, int(result), errMsg, id)
	if err != nil {
		return fmt.Errorf("store: outbox attempt: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: outbox item %d: %w", id, rules.ErrNotFound)
	}
	return nil
}
