package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/rules/duty"
)

// dutyMigrations are the duty tables' own set ("duty").
var dutyMigrations = []string{
	`CREATE TABLE duty_roster (version BIGINT PRIMARY KEY, updated TIMESTAMPTZ, actor TEXT NOT NULL, doc JSON NOT NULL);
	CREATE TABLE duty_handovers (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, team TEXT NOT NULL, signed TIMESTAMPTZ, accepted TIMESTAMPTZ,
		remarks TEXT NOT NULL, doc JSON NOT NULL);
	CREATE INDEX duty_handovers_signed ON duty_handovers(signed);
	CREATE INDEX duty_handovers_team ON duty_handovers(team, id);
	CREATE TABLE duty_log (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at TIMESTAMPTZ, team TEXT NOT NULL, kind TEXT NOT NULL, search TEXT NOT NULL, doc JSON NOT NULL);
	CREATE INDEX duty_log_at ON duty_log(at);`,
}

// Duty stores the duty roster's versions, handovers and the duty log in
// the rules database (their own migration set).
type Duty struct{ d *DB }

var _ duty.Store = (*Duty)(nil)

// NewDuty adds the duty tables to an open database (the rules database).
func NewDuty(ctx context.Context, d *DB) (*Duty, error) {
	if err := d.Migrate(ctx, "duty", dutyMigrations); err != nil {
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
	tag, err := s.d.pool.Exec(ctx, `INSERT INTO duty_roster (version, updated, actor, doc) VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO NOTHING`,
		r.Version, ts(r.Updated), text(r.By), string(doc))
	if err != nil {
		return fmt.Errorf("duty store: saving roster version %d: %w", r.Version, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: roster version %d exists", duty.ErrConflict, r.Version)
	}
	return nil
}

// RosterVersions implements duty.Store.
func (s *Duty) RosterVersions(ctx context.Context, limit int) ([]*duty.Roster, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT doc FROM duty_roster ORDER BY version DESC LIMIT $1`, limitOr(limit))
	out, err := scanDocs[duty.Roster](rows, err, "roster")
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	return out, nil
}

func limitOr(n int) int {
	if n <= 0 || n > 5000 {
		return 5000
	}
	return n
}

// AddHandover implements duty.Store.
func (s *Duty) AddHandover(ctx context.Context, h *duty.Handover) error {
	err := s.d.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO duty_handovers (team, signed, remarks, doc) VALUES ($1, $2, $3, '{}') RETURNING id`,
			h.Team, ts(h.Outgoing.At), text(h.Remarks)).Scan(&h.ID); err != nil {
			return err
		}
		doc, err := json.Marshal(h)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE duty_handovers SET doc = $1 WHERE id = $2`, string(doc), h.ID)
		return err
	})
	if err != nil {
		h.ID = 0
		return fmt.Errorf("duty store: adding handover: %w", err)
	}
	return nil
}

// AcceptHandover implements duty.Store (the row locked while it is read
// and signed, so two people cannot both accept it).
func (s *Duty) AcceptHandover(ctx context.Context, id int64, in duty.Signature) error {
	return s.d.tx(ctx, func(tx pgx.Tx) error {
		var doc []byte
		var accepted *time.Time
		err := tx.QueryRow(ctx, `SELECT doc, accepted FROM duty_handovers WHERE id = $1 FOR UPDATE`, id).Scan(&doc, &accepted)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: no handover %d", duty.ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("duty store: %w", err)
		}
		if accepted != nil {
			return fmt.Errorf("%w: handover %d was accepted already", duty.ErrConflict, id)
		}
		var h duty.Handover
		if err := json.Unmarshal(doc, &h); err != nil {
			return fmt.Errorf("duty store: handover %d: %w", id, err)
		}
		h.Incoming, h.Status = &in, duty.Accepted
		b, err := json.Marshal(&h)
		if err != nil {
			return err
		}
		at := in.At
		if at.IsZero() {
			at = time.Unix(0, 0) // accepted, at an unknown time: never NULL (NULL is "not accepted")
		}
		_, err = tx.Exec(ctx, `UPDATE duty_handovers SET accepted = $1, doc = $2 WHERE id = $3`, at, string(b), id)
		return err
	})
}

// Handover implements duty.Store.
func (s *Duty) Handover(ctx context.Context, id int64) (*duty.Handover, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT doc FROM duty_handovers WHERE id = $1`, id)
	hs, err := scanDocs[duty.Handover](rows, err, "handover")
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("%w: no handover %d", duty.ErrNotFound, id)
	}
	return hs[0], nil
}

// dutyWhere builds the shared part of the searches; args continue from
// the given ones.
func dutyWhere(q duty.Query, at, search string) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if !q.From.IsZero() {
		conds = append(conds, at+" >= "+arg(q.From))
	}
	if !q.To.IsZero() {
		conds = append(conds, at+" < "+arg(q.To))
	}
	if q.Team != "" {
		conds = append(conds, "team = "+arg(q.Team))
	}
	if q.Text != "" {
		conds = append(conds, search+` LIKE `+arg("%"+likeEscape(text(q.Text))+"%")+` ESCAPE '\'`)
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
	w, args := dutyWhere(q, "signed", "remarks")
	if q.Pending {
		if w == "" {
			w = " WHERE accepted IS NULL"
		} else {
			w += " AND accepted IS NULL"
		}
	}
	args = append(args, limitOr(q.Limit))
	rows, err := s.d.pool.Query(ctx, fmt.Sprintf(`SELECT doc FROM duty_handovers%s ORDER BY id DESC LIMIT $%d`, w, len(args)), args...)
	out, err := scanDocs[duty.Handover](rows, err, "handover")
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	return out, nil
}

// AddEntry implements duty.Store.
func (s *Duty) AddEntry(ctx context.Context, e *duty.Entry) error {
	err := s.d.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO duty_log (at, team, kind, search, doc) VALUES ($1, $2, $3, $4, '{}') RETURNING id`,
			ts(e.At), text(e.Team), text(e.Kind), text(e.Text+"\n"+e.Caller)).Scan(&e.ID); err != nil {
			return err
		}
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE duty_log SET doc = $1 WHERE id = $2`, string(doc), e.ID)
		return err
	})
	if err != nil {
		e.ID = 0
		return fmt.Errorf("duty store: adding a log entry: %w", err)
	}
	return nil
}

// Entries implements duty.Store: newest first.
func (s *Duty) Entries(ctx context.Context, q duty.Query) ([]*duty.Entry, error) {
	w, args := dutyWhere(q, "at", "search")
	args = append(args, limitOr(q.Limit))
	rows, err := s.d.pool.Query(ctx, fmt.Sprintf(`SELECT doc FROM duty_log%s ORDER BY at DESC, id DESC LIMIT $%d`, w, len(args)), args...)
	out, err := scanDocs[duty.Entry](rows, err, "log entry")
	if err != nil {
		return nil, fmt.Errorf("duty store: %w", err)
	}
	return out, nil
}
