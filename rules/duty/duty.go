// Package duty is the duty room's daily record: the duty roster (值班表)
// that says who is on duty per team (seeded from the alerts: teams, edited
// by admins in the console, consulted by the alerts router), the shift
// handover (交接班记录) with a generated summary of what is open, signed by
// the outgoing person and accepted by the incoming one, and the duty log
// (值班记录) of calls, reports and patrol notes during a shift.
package duty

import (
	"context"
	"errors"
	"time"
)

// Errors, mapped to HTTP statuses with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
	ErrConflict = errors.New("conflict") // already accepted, a pending handover exists, a stale roster version
)

// Signature is one person signing a handover, at a time.
type Signature struct {
	By   string    `json:"by"`   // the logged-in username, never a request body's
	Name string    `json:"name"` // as the login names them
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"`
}

// Handover is one shift handover (交接班记录): what the outgoing person
// handed over, as it was when they signed, and the incoming person's
// acceptance.
type Handover struct {
	ID         int64      `json:"id"`
	Team       string     `json:"team"`
	TeamName   string     `json:"team_name"`
	ShiftStart time.Time  `json:"shift_start,omitempty"` // the roster's shift being handed over
	ShiftEnd   time.Time  `json:"shift_end,omitempty"`
	Rostered   string     `json:"rostered_outgoing,omitempty"` // who the roster had on duty
	Next       string     `json:"rostered_incoming,omitempty"` // who the roster has next
	RosterName string     `json:"rostered_outgoing_name,omitempty"`
	NextName   string     `json:"rostered_incoming_name,omitempty"`
	Remarks    string     `json:"remarks,omitempty"`  // 交班说明: what the outgoing person adds
	Outgoing   Signature  `json:"outgoing"`           // 交班人
	Incoming   *Signature `json:"incoming,omitempty"` // 接班人, once accepted
	Status     string     `json:"status"`             // signed (awaiting the incoming person), accepted
	Summary    Summary    `json:"summary"`            // the snapshot at signing
}

// Handover statuses.
const (
	Signed   = "signed"
	Accepted = "accepted"
)

// Entry kinds of the duty log.
const (
	KindCall   = "call"   // 来电
	KindReport = "report" // 报告 / 报修 received in person
	KindPatrol = "patrol" // 巡逻
	KindNote   = "note"   // 其他
)

// Kinds are the duty log's entry kinds with their Chinese names.
var Kinds = map[string]string{KindCall: "来电", KindReport: "报告/报修", KindPatrol: "巡逻", KindNote: "其他"}

// Entry is one line of the duty log (值班记录).
type Entry struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`       // when it happened, as the person entered it
	Recorded   time.Time `json:"recorded"` // when it was written
	Kind       string    `json:"kind"`
	Team       string    `json:"team,omitempty"`
	Author     string    `json:"author"`
	AuthorName string    `json:"author_name,omitempty"`
	Caller     string    `json:"caller,omitempty"` // who called or reported: name, phone, unit
	Text       string    `json:"text"`
	WorkOrder  int64     `json:"workorder,omitempty"` // the work order it led to or concerns
}

// Query selects handovers or log entries: [From, To) by time (the
// handover's signing, the entry's At), a team, words in the text.
type Query struct {
	From, To time.Time
	Team     string
	Text     string // handovers: remarks; entries: text and caller
	Pending  bool   // handovers only: not yet accepted
	Limit    int
}

// Store keeps the roster's versions, handovers and the duty log.
type Store interface {
	// Roster is the newest stored roster; ErrNotFound before the first.
	Roster(ctx context.Context) (*Roster, error)
	// SaveRoster stores r as version r.Version; ErrConflict when that
	// version exists (someone saved in between).
	SaveRoster(ctx context.Context, r *Roster) error
	// RosterVersions lists stored versions, newest first.
	RosterVersions(ctx context.Context, limit int) ([]*Roster, error)

	// AddHandover stores a new handover and sets its ID.
	AddHandover(ctx context.Context, h *Handover) error
	// AcceptHandover records the incoming signature; ErrConflict when the
	// handover was accepted already, ErrNotFound when there is none.
	AcceptHandover(ctx context.Context, id int64, in Signature) error
	Handover(ctx context.Context, id int64) (*Handover, error)
	Handovers(ctx context.Context, q Query) ([]*Handover, error)

	AddEntry(ctx context.Context, e *Entry) error
	Entries(ctx context.Context, q Query) ([]*Entry, error)
}
