package rules

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// Store keeps alarms, their transitions, work orders, their history and
// the webhook outbox. SQLite is the default; a PostgreSQL implementation
// can follow for multi-site deployments.
type Store interface {
	LoadAlarms(ctx context.Context) ([]*Alarm, error)
	// SaveAlarm upserts the alarm and appends its transitions atomically.
	SaveAlarm(ctx context.Context, a *Alarm, tr []Transition) error
	AlarmHistory(ctx context.Context, alarmID string) ([]Transition, error)
	TransitionsBetween(ctx context.Context, from, to time.Time) ([]Transition, error)

	// CreateWorkOrder inserts w (setting its ID) with its first history entry.
	CreateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error
	// UpdateWorkOrder saves w if its stored version is w.Version-1.
	UpdateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error
	WorkOrder(ctx context.Context, id int64) (*WorkOrder, []HistoryEntry, error)
	WorkOrders(ctx context.Context, f WorkOrderFilter) ([]*WorkOrder, error)
	// LatestWorkOrderFor is the newest order a rule opened for an asset.
	LatestWorkOrderFor(ctx context.Context, rule, asset string) (*WorkOrder, error)

	// CreateIncident inserts in (setting its ID); SaveIncident replaces it.
	CreateIncident(ctx context.Context, in *Incident) error
	SaveIncident(ctx context.Context, in *Incident) error
	Incident(ctx context.Context, id int64) (*Incident, error)
	// Incidents lists incidents newest first; limit 0 means all.
	Incidents(ctx context.Context, openOnly bool, limit int) ([]*Incident, error)

	PendingOutbox(ctx context.Context, limit int) ([]OutboxItem, error)
	OutboxAttempt(ctx context.Context, id int64, delivered bool, errMsg string) error

	Close() error
}

// WorkOrderFilter selects work orders; zero fields match everything.
type WorkOrderFilter struct {
	Open          bool // only statuses still being worked on (and resolved awaiting call-back)
	Status        Status
	Asset         string
	Category      string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Limit         int
}

// OutboxItem is one webhook delivery waiting to be made.
type OutboxItem struct {
	ID       int64
	Key      string // idempotency key: wo-<id>-v<version>
	Payload  []byte
	Attempts int
}

// ErrNotFound is returned for unknown ids.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a work order changed underneath an update.
var ErrConflict = errors.New("the work order was changed by someone else; reload and retry")

// SQLite is the embedded store (modernc.org/sqlite, WAL mode).
type SQLite struct {
	db     *sql.DB
	outbox bool
}

var migrations = []string{
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
}

// OpenSQLite opens (creating and migrating) the database at path. With
// outbox set, every work-order change also queues a webhook delivery.
func OpenSQLite(path string, outbox bool) (*SQLite, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises writes anyway
	s := &SQLite{db: db, outbox: outbox}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *SQLite) migrate() error {
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var v int
	if err := s.db.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("store: the database is at schema version %d, newer than this gateway (%d): upgrade the gateway", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := s.db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(`INSERT INTO schema_version (version) VALUES (?)`, i+1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// LoadAlarms implements Store.
func (s *SQLite) LoadAlarms(ctx context.Context) ([]*Alarm, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM alarms ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: load alarms: %w", err)
	}
	return ScanDocs[Alarm](rows, "alarm")
}

// SaveAlarm implements Store.
func (s *SQLite) SaveAlarm(ctx context.Context, a *Alarm, tr []Transition) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save alarm: %w", err)
	}
	defer tx.Rollback()
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
	}
	return tx.Commit()
}

func scanTransitions(rows *sql.Rows) ([]Transition, error) {
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var t Transition
		var from, to string
		var at int64
		if err := rows.Scan(&t.AlarmID, &from, &to, &at, &t.By, &t.Note, &t.Value); err != nil {
			return nil, err
		}
		t.From, t.To, t.At = AlarmState(from), AlarmState(to), fromMS(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// AlarmHistory implements Store.
func (s *SQLite) AlarmHistory(ctx context.Context, id string) ([]Transition, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT alarm_id, from_state, to_state, at, by, note, value FROM alarm_transitions WHERE alarm_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("store: alarm history: %w", err)
	}
	return scanTransitions(rows)
}

// TransitionsBetween implements Store.
func (s *SQLite) TransitionsBetween(ctx context.Context, from, to time.Time) ([]Transition, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT alarm_id, from_state, to_state, at, by, note, value FROM alarm_transitions WHERE at >= ? AND at < ? ORDER BY at, seq`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("store: transitions: %w", err)
	}
	return scanTransitions(rows)
}

func (s *SQLite) writeHistory(ctx context.Context, tx *sql.Tx, w *WorkOrder, h HistoryEntry) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO workorder_history (workorder, at, by, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)`,
		w.ID, ms(h.At), h.By, string(h.From), string(h.To), h.Note); err != nil {
		return fmt.Errorf("store: work-order history: %w", err)
	}
	if s.outbox {
		payload, err := json.Marshal(WebhookPayload{Event: webhookEvent(h), WorkOrder: *w, Change: h})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (key, payload) VALUES (?, ?)`, fmt.Sprintf("wo-%d-v%d", w.ID, w.Version), string(payload)); err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
	}
	return nil
}

// CreateWorkOrder implements Store.
func (s *SQLite) CreateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error {
	tx, err := s.db.BeginTx(ctx, nil)
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

// UpdateWorkOrder implements Store.
func (s *SQLite) UpdateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error {
	doc, err := json.Marshal(w)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
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
		return ErrConflict
	}
	h.WorkOrder = w.ID
	if err := s.writeHistory(ctx, tx, w, h); err != nil {
		return err
	}
	return tx.Commit()
}

// ScanDocs decodes rows of one JSON document column (what names the kind, for errors).
func ScanDocs[T any](rows *sql.Rows, what string) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(doc), v); err != nil {
			return nil, fmt.Errorf("store: %s row: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanWorkOrders(rows *sql.Rows) ([]*WorkOrder, error) {
	return ScanDocs[WorkOrder](rows, "work-order")
}

// WorkOrder implements Store.
func (s *SQLite) WorkOrder(ctx context.Context, id int64) (*WorkOrder, []HistoryEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM workorders WHERE id = ?`, id)
	if err != nil {
		return nil, nil, err
	}
	ws, err := scanWorkOrders(rows)
	if err != nil {
		return nil, nil, err
	}
	if len(ws) == 0 {
		return nil, nil, ErrNotFound
	}
	hr, err := s.db.QueryContext(ctx, `SELECT workorder, at, by, from_status, to_status, note FROM workorder_history WHERE workorder = ? ORDER BY seq`, id)
	if err != nil {
		return nil, nil, err
	}
	defer hr.Close()
	var hist []HistoryEntry
	for hr.Next() {
		var h HistoryEntry
		var at int64
		var from, to string
		if err := hr.Scan(&h.WorkOrder, &at, &h.By, &from, &to, &h.Note); err != nil {
			return nil, nil, err
		}
		h.At, h.From, h.To = fromMS(at), Status(from), Status(to)
		hist = append(hist, h)
	}
	return ws[0], hist, hr.Err()
}

// WorkOrders implements Store.
func (s *SQLite) WorkOrders(ctx context.Context, f WorkOrderFilter) ([]*WorkOrder, error) {
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
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: work orders: %w", err)
	}
	return scanWorkOrders(rows)
}

// LatestWorkOrderFor implements Store.
func (s *SQLite) LatestWorkOrderFor(ctx context.Context, rule, asset string) (*WorkOrder, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM workorders WHERE rule = ? AND asset = ? ORDER BY id DESC LIMIT 1`, rule, asset)
	if err != nil {
		return nil, err
	}
	ws, err := scanWorkOrders(rows)
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	return ws[0], nil
}

// CreateIncident implements Store.
func (s *SQLite) CreateIncident(ctx context.Context, in *Incident) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO incidents (playbook, asset, status, drill, started, doc) VALUES (?, ?, ?, ?, ?, '{}')`,
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

// SaveIncident implements Store.
func (s *SQLite) SaveIncident(ctx context.Context, in *Incident) error {
	doc, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE incidents SET status = ?, doc = ? WHERE id = ?`, in.Status, string(doc), in.ID); err != nil {
		return fmt.Errorf("store: save incident: %w", err)
	}
	return nil
}

func scanIncidents(rows *sql.Rows) ([]*Incident, error) { return ScanDocs[Incident](rows, "incident") }

// Incident implements Store.
func (s *SQLite) Incident(ctx context.Context, id int64) (*Incident, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM incidents WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	ins, err := scanIncidents(rows)
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, ErrNotFound
	}
	return ins[0], nil
}

// Incidents implements Store.
func (s *SQLite) Incidents(ctx context.Context, openOnly bool, limit int) ([]*Incident, error) {
	q := `SELECT doc FROM incidents`
	if openOnly {
		q += ` WHERE status = 'open'`
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: incidents: %w", err)
	}
	return scanIncidents(rows)
}

// PendingOutbox implements Store.
func (s *SQLite) PendingOutbox(ctx context.Context, limit int) ([]OutboxItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, key, payload, attempts FROM outbox WHERE delivered = 0 ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var payload string
		if err := rows.Scan(&it.ID, &it.Key, &payload, &it.Attempts); err != nil {
			return nil, err
		}
		it.Payload = []byte(payload)
		out = append(out, it)
	}
	return out, rows.Err()
}

// OutboxAttempt implements Store.
func (s *SQLite) OutboxAttempt(ctx context.Context, id int64, delivered bool, errMsg string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, delivered = ?, last_error = ? WHERE id = ?`, delivered, errMsg, id)
	return err
}

// Close implements Store.
func (s *SQLite) Close() error { return s.db.Close() }

var _ Store = (*SQLite)(nil)
