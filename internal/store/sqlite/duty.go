package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/propgate/gateway/rules/duty"
)

// dutyMigrations are the duty tables' own set ("duty") in the rules file.
var dutyMigrations = []string{
	`CREATE TABLE duty_roster (version INTEGER PRIMARY KEY, updated INTEGER NOT NULL, by TEXT NOT NULL, doc TEXT NOT NULL);
	CREATE TABLE duty_handovers (
		id INTEGER PRIMARY KEY AUTOINCREMENT, team TEXT NOT NULL, signed INTEGER NOT NULL, accepted INTEGER NOT NULL DEFAULT 0,
		remarks TEXT NOT NULL, doc TEXT NOT NULL);
	CREATE INDEX duty_handovers_signed ON duty_handovers(signed);
	CREATE INDEX duty_handovers_team ON duty_handovers(team, id);
	CREATE TABLE duty_log (
		id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, team TEXT NOT NULL, kind TEXT NOT NULL, search TEXT NOT NULL, doc TEXT NOT NULL);
	CREATE INDEX duty_log_at ON duty_log(at);`,
}

// Duty stores the duty roster's versions, handovers and the duty log in
// the rules database file (their own migration set).
type Duty struct{ d *DB }

var _ duty.Store = (*Duty)(nil)

// NewDuty adds the duty tables to an open database (the rules file).
func NewDuty(d *DB) (*Duty, error) {
	if err := d.Migrate("duty", dutyMigrations); err != nil {
		return nil, err
	}
	return &Duty{d: d}, nil
}

// Roster implements duty.Store.
func (s *Duty) Roster(ctx context.Context) (*duty.Roster, error) {
	rs, err := s.RosterVersions(ctx, 1)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, duty.ErrNotFound
	}
	return rs[0], nil
}

// SaveRoster implements duty.Store.
func (s *Duty) SaveRoster(ctx context.Context, r *duty.Roster) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("duty store: %w", err)
	}
	res, err := s.d.w.ExecContext(ctx, `INSERT INTO duty_roster (version, updated, by, doc) VALUES (?, ?, ?, ?) ON CONFLICT(version) DO NOTHING`,
		r.Version, ms(r.Updated), r.By, string(doc))
	if err != nil {
		return fmt.Errorf("duty store: saving roster version %d: %w", r.Version, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: roster version %d exists", duty.ErrConflict, r.Version)
	}
	return nil
}

// RosterVersions implements duty.Store.
func (s *Duty) RosterVersions(ctx context.Context, limit int) ([]*duty.Roster, error) {
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM duty_roster ORDER BY version DESC LIMIT ?`, limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	return scanDocs[duty.Roster](rows, "roster")
}

func limitOr(n int) int {
	if n <= 0 || n > 5000 {
		return 5000
	}
	return n
}

// AddHandover implements duty.Store.
func (s *Duty) AddHandover(ctx context.Context, h *duty.Handover) error {
	return s.d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO duty_handovers (team, signed, remarks, doc) VALUES (?, ?, ?, '{}')`, h.Team, ms(h.Outgoing.At), h.Remarks)
		if err != nil {
			return fmt.Errorf("duty store: adding handover: %w", err)
		}
		if h.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		doc, err := json.Marshal(h)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE duty_handovers SET doc = ? WHERE id = ?`, string(doc), h.ID)
		return err
	})
}

// AcceptHandover implements duty.Store.
func (s *Duty) AcceptHandover(ctx context.Context, id int64, in duty.Signature) error {
	return s.d.tx(ctx, func(tx *sql.Tx) error {
		var doc string
		var accepted int64
		err := tx.QueryRowContext(ctx, `SELECT doc, accepted FROM duty_handovers WHERE id = ?`, id).Scan(&doc, &accepted)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no handover %d", duty.ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("duty store: %w", err)
		}
		if accepted != 0 {
			return fmt.Errorf("%w: handover %d was accepted already", duty.ErrConflict, id)
		}
		var h duty.Handover
		if err := json.Unmarshal([]byte(doc), &h); err != nil {
			return fmt.Errorf("duty store: handover %d: %w", id, err)
		}
		h.Incoming, h.Status = &in, duty.Accepted
		b, err := json.Marshal(&h)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE duty_handovers SET accepted = ?, doc = ? WHERE id = ?`, ms(in.At), string(b), id)
		return err
	})
}

// Handover implements duty.Store.
func (s *Duty) Handover(ctx context.Context, id int64) (*duty.Handover, error) {
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM duty_handovers WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	hs, err := scanDocs[duty.Handover](rows, "handover")
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("%w: no handover %d", duty.ErrNotFound, id)
	}
	return hs[0], nil
}

// where builds the shared part of the searches.
func where(q duty.Query, at, text string) (string, []any) {
	var conds []string
	var args []any
	if !q.From.IsZero() {
		conds, args = append(conds, at+" >= ?"), append(args, ms(q.From))
	}
	if !q.To.IsZero() {
		conds, args = append(conds, at+" < ?"), append(args, ms(q.To))
	}
	if q.Team != "" {
		conds, args = append(conds, "team = ?"), append(args, q.Team)
	}
	if q.Text != "" {
		conds, args = append(conds, text+` LIKE ? ESCAPE '\'`), append(args, "%"+likeEscape(q.Text)+"%")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Handovers implements duty.Store: newest first.
func (s *Duty) Handovers(ctx context.Context, q duty.Query) ([]*duty.Handover, error) {
	w, args := where(q, "signed", "remarks")
	if q.Pending {
		if w == "" {
			w = " WHERE accepted = 0"
		} else {
			w += " AND accepted = 0"
		}
	}
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM duty_handovers`+w+` ORDER BY id DESC LIMIT ?`, append(args, limitOr(q.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	return scanDocs[duty.Handover](rows, "handover")
}

// AddEntry implements duty.Store.
func (s *Duty) AddEntry(ctx context.Context, e *duty.Entry) error {
	return s.d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO duty_log (at, team, kind, search, doc) VALUES (?, ?, ?, ?, '{}')`,
			ms(e.At), e.Team, e.Kind, e.Text+"\n"+e.Caller)
		if err != nil {
			return fmt.Errorf("duty store: adding a log entry: %w", err)
		}
		if e.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE duty_log SET doc = ? WHERE id = ?`, string(doc), e.ID)
		return err
	})
}

// Entries implements duty.Store: newest first.
func (s *Duty) Entries(ctx context.Context, q duty.Query) ([]*duty.Entry, error) {
	w, args := where(q, "at", "search")
	rows, err := s.d.r.QueryContext(ctx, `SELECT doc FROM duty_log`+w+` ORDER BY at DESC, id DESC LIMIT ?`, append(args, limitOr(q.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	return scanDocs[duty.Entry](rows, "log entry")
}
