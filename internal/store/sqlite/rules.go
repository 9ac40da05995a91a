package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
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
	_ alarmkpi.Events    = (*Rules)(nil)
)

var rulesMigrations = []string{
	`CREATE TABLE alarms (
		id TEXT PRIMARY KEY, rule TEXT NOT NULL, asset TEXT NOT NULL, doc TEXT NOT NULL, state TEXT NOT NULL, updated INTEGER NOT NULL);
	CREATE TABLE alarm_transitions (
		seq INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
		at INTEGER NOT NULL, by TEXT NOT NULL, note TEXT NOT NULL, value TEXT NOT NULL);
	CREATE INDEX alarm_transitions_alarm ON alarm_transitions(alarm_id, seq);
	CREATE INDEX alarm_transitions_at ON alarm_transitions(at);
	CREATE TABLE workorders (
		id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, asset TEXT NOT NULL, category TEXT NOT NULL, status TEXT NOT NULL,
		created INTEGER NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL);
	CREATE INDEX workorders_rule_asset ON workorders(rule, asset, id);
	CREATE INDEX workorders_status ON workorders(status);
	CREATE TABLE workorder_history (
		seq INTEGER PRIMARY KEY AUTOINCREMENT, workorder INTEGER NOT NULL, at INTEGER NOT NULL, by TEXT NOT NULL,
		from_status TEXT NOT NULL, to_status TEXT NOT NULL, note TEXT NOT NULL);
	CREATE INDEX workorder_history_wo ON workorder_history(workorder, seq);
	CREATE TABLE outbox (
		id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');`,
	`CREATE TABLE incidents (
		id INTEGER PRIMARY KEY AUTOINCREMENT, playbook TEXT NOT NULL, asset TEXT NOT NULL, status TEXT NOT NULL,
		drill INTEGER NOT NULL, started INTEGER NOT NULL, doc TEXT NOT NULL);
	CREATE INDEX incidents_status ON incidents(status);`,
	`CREATE INDEX alarm_transitions_alarm_at ON alarm_transitions(alarm_id, at, seq);`,
}

// alarmKPIMigrations: the alarm-system health reads a month of firings
// from this index alone (no table lookups).
var alarmKPIMigrations = []string{
	`CREATE INDEX alarm_transitions_kpi ON alarm_transitions(at, to_state, from_state, alarm_id);`,
}

// OpenRules opens (creating and migrating) the rules database at path.
// With outbox set, every work-order change also queues a webhook delivery.
func OpenRules(path string, outbox bool) (*Rules, error) {
	d, err := Open(path, "rules", rulesMigrations)
	if err != nil {
		return nil, err
	}
	if err := d.Migrate("alarm_kpis", alarmKPIMigrations); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.Migrate("kpi_rollups", rollupMigrations); err != nil {
		d.Close()
		return nil, err
	}
	s := &Rules{DB: d, outbox: outbox}
	var end sql.NullInt64
	if err := d.w.QueryRow(`SELECT MAX(day_end) FROM kpi_days`).Scan(&end); err != nil {
		d.Close()
		return nil, fmt.Errorf("rules store: %w", err)
	}
	s.horizon.raise(end.Int64)
	return s, nil
}

// LoadAlarms implements the rules stores.
func (s *Rules) LoadAlarms(ctx context.Context) ([]*rules.Alarm, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT doc FROM alarms ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: load alarms: %w", err)
	}
	return scanDocs[rules.Alarm](rows, "alarm")
}

// SaveAlarm implements the rules stores.
func (s *Rules) SaveAlarm(ctx context.Context, a *rules.Alarm, tr []rules.Transition) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save alarm: %w", err)
	}
	defer tx.Rollback()
	late := false
	if _, err := tx.ExecContext(ctx, `INSERT INTO alarms (id, rule, asset, doc, state, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, state = excluded.state, updated = excluded.updated`,
		a.ID, a.Rule, a.Asset, string(doc), string(a.State), time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("store: save alarm: %w", err)
	}
	for _, t := range tr {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alarm_transitions (alarm_id, from_state, to_state, at, by, note, value) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.AlarmID, string(t.From), string(t.To), ms(t.At), t.By, t.Note, t.Value); err != nil {
			return fmt.Errorf("store: save transition: %w", err)
		}
		if s.lateTransition(t.At) { // rare: dated in a day whose figures may be kept
			if err := dropRollups(ctx, tx, t.At); err != nil {
				return fmt.Errorf("store: save transition: %w", err)
			}
			late = true
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if late {
		s.horizon.dropped.Add(1)
	}
	return nil
}

func scanTransitions(rows *sql.Rows) ([]rules.Transition, error) {
	defer rows.Close()
	var out []rules.Transition
	for rows.Next() {
		var t rules.Transition
		var from, to string
		var at int64
		if err := rows.Scan(&t.AlarmID, &from, &to, &at, &t.By, &t.Note, &t.Value); err != nil {
			return nil, err
		}
		t.From, t.To, t.At = rules.AlarmState(from), rules.AlarmState(to), fromMS(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// AlarmHistory implements the rules stores.
func (s *Rules) AlarmHistory(ctx context.Context, id string) ([]rules.Transition, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT alarm_id, from_state, to_state, at, by, note, value FROM alarm_transitions WHERE alarm_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("store: alarm history: %w", err)
	}
	return scanTransitions(rows)
}

// TransitionsBetween implements the rules stores.
func (s *Rules) TransitionsBetween(ctx context.Context, from, to time.Time) ([]rules.Transition, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT alarm_id, from_state, to_state, at, by, note, value FROM alarm_transitions WHERE at >= ? AND at < ? ORDER BY at, seq`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("store: transitions: %w", err)
	}
	return scanTransitions(rows)
}

// TransitionsOf implements rules.FaultHistory: the transitions of the given
// alarms with from <= at < to, by alarm then time (one indexed range each,
// from the index alone: alarm, time and new state; no notes).
func (s *Rules) TransitionsOf(ctx context.Context, alarmIDs []string, from, to time.Time) ([]rules.Transition, error) {
	var out []rules.Transition
	for len(alarmIDs) > 0 {
		n := min(len(alarmIDs), 500)
		args := make([]any, 0, n+2)
		for _, id := range alarmIDs[:n] {
			args = append(args, id)
		}
		args = append(args, ms(from), ms(to))
		rows, err := s.r.QueryContext(ctx, `SELECT alarm_id, to_state, at FROM alarm_transitions INDEXED BY alarm_transitions_states
			WHERE alarm_id IN (?`+strings.Repeat(",?", n-1)+`) AND at >= ? AND at < ? ORDER BY alarm_id, at, seq`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: transitions: %w", err)
		}
		err = func() error {
			defer rows.Close()
			var id, last string
			var st sql.RawBytes
			var at int64
			for rows.Next() {
				var raw sql.RawBytes
				if err := rows.Scan(&raw, &st, &at); err != nil {
					return err
				}
				if string(raw) != last { // one string per alarm, not per row
					id = string(raw)
					last = id
				}
				out = append(out, rules.Transition{AlarmID: id, To: stateOf(st), At: time.UnixMilli(at)})
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("store: transitions: %w", err)
		}
		alarmIDs = alarmIDs[n:]
	}
	return out, nil
}

// stateOf is the state a column holds, without allocating for the known
// ones.
func stateOf(b []byte) rules.AlarmState {
	for _, s := range knownStates {
		if string(b) == string(s) {
			return s
		}
	}
	return rules.AlarmState(b)
}

var knownStates = []rules.AlarmState{rules.StateNormal, rules.StateUnacked, rules.StateAcked, rules.StateRTNUnacked,
	rules.StateShelved, rules.StateOutOfService, rules.StateSuppressed}

// AlarmEvents implements alarmkpi.Events: the firings, shelvings and
// outs-of-service in [from, to), in time order, read row by row (a month of
// a million transitions is never held in memory; the id bytes are reused).
func (s *Rules) AlarmEvents(ctx context.Context, from, to time.Time, fn func(alarm []byte, at time.Time, kind alarmkpi.EventKind)) error {
	rows, err := s.r.QueryContext(ctx, `SELECT alarm_id, at, CASE to_state WHEN 'unacknowledged' THEN 0 WHEN 'shelved' THEN 1 ELSE 2 END
		FROM alarm_transitions INDEXED BY alarm_transitions_kpi WHERE at >= ? AND at < ?
		AND ((to_state = 'unacknowledged' AND from_state IN ('normal', 'returned_unacknowledged')) OR to_state IN ('shelved', 'out_of_service'))
		ORDER BY at`, ms(from), ms(to)) // the covering index alone; events in the same millisecond in any order
	if err != nil {
		return fmt.Errorf("store: alarm events: %w", err)
	}
	defer rows.Close()
	var id sql.RawBytes
	var at int64
	var kind uint8
	for rows.Next() {
		if err := rows.Scan(&id, &at, &kind); err != nil {
			return fmt.Errorf("store: alarm events: %w", err)
		}
		fn(id, time.UnixMilli(at), alarmkpi.EventKind(kind))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: alarm events: %w", err)
	}
	return nil
}

// StatesAt implements rules.AlarmStore: each alarm's state after its last
// transition before t (one indexed lookup per alarm).
func (s *Rules) StatesAt(ctx context.Context, t time.Time) (map[string]rules.AlarmState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, (SELECT tr.to_state FROM alarm_transitions tr WHERE tr.alarm_id = a.id AND tr.at < ?
		ORDER BY tr.at DESC, tr.seq DESC LIMIT 1) FROM alarms a`, ms(t))
	if err != nil {
		return nil, fmt.Errorf("store: alarm states: %w", err)
	}
	defer rows.Close()
	out := map[string]rules.AlarmState{}
	for rows.Next() {
		var id string
		var st sql.NullString
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		if st.Valid {
			out[id] = rules.AlarmState(st.String)
		}
	}
	return out, rows.Err()
}

func (s *Rules) writeHistory(ctx context.Context, tx *sql.Tx, w *workorder.WorkOrder, h workorder.HistoryEntry) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO workorder_history (workorder, at, by, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)`,
		w.ID, ms(h.At), h.By, string(h.From), string(h.To), h.Note); err != nil {
		return fmt.Errorf("store: work-order history: %w", err)
	}
	if s.outbox {
		payload, err := json.Marshal(workorder.WebhookPayload{Event: workorder.WebhookEvent(h), WorkOrder: *w, Change: h})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (key, payload) VALUES (?, ?)`, fmt.Sprintf("wo-%d-v%d", w.ID, w.Version), string(payload)); err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
	}
	return nil
}

// CreateWorkOrder implements the rules stores.
func (s *Rules) CreateWorkOrder(ctx context.Context, w *workorder.WorkOrder, h workorder.HistoryEntry) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO workorders (rule, asset, category, status, created, version, doc) VALUES (?, ?, ?, ?, ?, ?, '{}')`,
		w.Rule, w.Asset, w.Category, string(w.Status), ms(w.Created), w.Version)
	if err != nil {
		return fmt.Errorf("store: create work order: %w", err)
	}
	if w.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	h.WorkOrder = w.ID
	doc, _ := json.Marshal(w)
	if _, err := tx.ExecContext(ctx, `UPDATE workorders SET doc = ? WHERE id = ?`, string(doc), w.ID); err != nil {
		return err
	}
	if err := s.writeHistory(ctx, tx, w, h); err != nil {
		return err
	}
	return tx.Commit()
}

// UpdateWorkOrder implements the rules stores.
func (s *Rules) UpdateWorkOrder(ctx context.Context, w *workorder.WorkOrder, h workorder.HistoryEntry) error {
	doc, err := json.Marshal(w)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE workorders SET status = ?, category = ?, version = ?, doc = ? WHERE id = ? AND version = ?`,
		string(w.Status), w.Category, w.Version, string(doc), w.ID, w.Version-1)
	if err != nil {
		return fmt.Errorf("store: update work order: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return workorder.ErrConflict
	}
	h.WorkOrder = w.ID
	if err := s.writeHistory(ctx, tx, w, h); err != nil {
		return err
	}
	return tx.Commit()
}

func scanWorkOrders(rows *sql.Rows) ([]*workorder.WorkOrder, error) {
	return scanDocs[workorder.WorkOrder](rows, "work-order")
}

// WorkOrder implements the rules stores.
func (s *Rules) WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT doc FROM workorders WHERE id = ?`, id)
	if err != nil {
		return nil, nil, err
	}
	ws, err := scanWorkOrders(rows)
	if err != nil {
		return nil, nil, err
	}
	if len(ws) == 0 {
		return nil, nil, rules.ErrNotFound
	}
	hr, err := s.r.QueryContext(ctx, `SELECT workorder, at, by, from_status, to_status, note FROM workorder_history WHERE workorder = ? ORDER BY seq`, id)
	if err != nil {
		return nil, nil, err
	}
	defer hr.Close()
	var hist []workorder.HistoryEntry
	for hr.Next() {
		var h workorder.HistoryEntry
		var at int64
		var from, to string
		if err := hr.Scan(&h.WorkOrder, &at, &h.By, &from, &to, &h.Note); err != nil {
			return nil, nil, err
		}
		h.At, h.From, h.To = fromMS(at), workorder.Status(from), workorder.Status(to)
		hist = append(hist, h)
	}
	return ws[0], hist, hr.Err()
}

// WorkOrders implements the rules stores.
func (s *Rules) WorkOrders(ctx context.Context, f workorder.Filter) ([]*workorder.WorkOrder, error) {
	var where []string
	var args []any
	if f.Open {
		where = append(where, `status NOT IN ('closed', 'cancelled')`)
	}
	if f.Status != "" {
		where = append(where, `status = ?`)
		args = append(args, string(f.Status))
	}
	if f.Asset != "" {
		where = append(where, `asset = ?`)
		args = append(args, f.Asset)
	}
	if f.Category != "" {
		where = append(where, `category = ?`)
		args = append(args, f.Category)
	}
	if !f.CreatedAfter.IsZero() {
		where = append(where, `created >= ?`)
		args = append(args, ms(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		where = append(where, `created < ?`)
		args = append(args, ms(f.CreatedBefore))
	}
	q := `SELECT doc FROM workorders`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: work orders: %w", err)
	}
	return scanWorkOrders(rows)
}

// LatestWorkOrderFor implements the rules stores.
func (s *Rules) LatestWorkOrderFor(ctx context.Context, rule, asset string) (*workorder.WorkOrder, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT doc FROM workorders WHERE rule = ? AND asset = ? ORDER BY id DESC LIMIT 1`, rule, asset)
	if err != nil {
		return nil, err
	}
	ws, err := scanWorkOrders(rows)
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	return ws[0], nil
}

// CreateIncident implements the rules stores.
func (s *Rules) CreateIncident(ctx context.Context, in *playbook.Incident) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO incidents (playbook, asset, status, drill, started, doc) VALUES (?, ?, ?, ?, ?, '{}')`,
		in.Playbook, in.Asset, in.Status, in.Drill, ms(in.Started))
	if err != nil {
		return fmt.Errorf("store: create incident: %w", err)
	}
	in.ID, err = res.LastInsertId()
	if err != nil {
		return err
	}
	return s.SaveIncident(ctx, in)
}

// SaveIncident implements the rules stores.
func (s *Rules) SaveIncident(ctx context.Context, in *playbook.Incident) error {
	doc, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE incidents SET status = ?, doc = ? WHERE id = ?`, in.Status, string(doc), in.ID); err != nil {
		return fmt.Errorf("store: save incident: %w", err)
	}
	return nil
}

func scanIncidents(rows *sql.Rows) ([]*playbook.Incident, error) {
	return scanDocs[playbook.Incident](rows, "incident")
}

// Incident implements the rules stores.
func (s *Rules) Incident(ctx context.Context, id int64) (*playbook.Incident, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT doc FROM incidents WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	ins, err := scanIncidents(rows)
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, rules.ErrNotFound
	}
	return ins[0], nil
}

// Incidents implements the rules stores.
func (s *Rules) Incidents(ctx context.Context, openOnly bool, limit int) ([]*playbook.Incident, error) {
	q := `SELECT doc FROM incidents`
	if openOnly {
		q += ` WHERE status = 'open'`
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.r.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: incidents: %w", err)
	}
	return scanIncidents(rows)
}

// PendingOutbox implements the rules stores.
func (s *Rules) PendingOutbox(ctx context.Context, limit int) ([]workorder.OutboxItem, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, key, payload, attempts FROM outbox WHERE delivered = 0 ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []workorder.OutboxItem
	for rows.Next() {
		var it workorder.OutboxItem
		var payload string
		if err := rows.Scan(&it.ID, &it.Key, &payload, &it.Attempts); err != nil {
			return nil, err
		}
		it.Payload = []byte(payload)
		out = append(out, it)
	}
	return out, rows.Err()
}

// OutboxAttempt implements the rules stores: delivered 0 stays pending, 1
// is delivered, 2 is refused for good (kept, with its error, for a person).
func (s *Rules) OutboxAttempt(ctx context.Context, id int64, result workorder.OutboxResult, errMsg string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, delivered = ?, last_error = ? WHERE id = ?`, int(result), errMsg, id)
	return err
}
