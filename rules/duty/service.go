package duty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

// WorkOrders links duty-log entries to work orders: checks one exists,
// opens one for a call (the work-order service and store).
type WorkOrders interface {
	WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error)
	Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error)
}

// Deps are the service's collaborators.
type Deps struct {
	Store   Store
	Sources Sources
	Orders  WorkOrders // optional: without it entries cannot link work orders
	// People are who can be on duty, id → name (the alerts: people; no
	// contact details). Empty: any id is accepted.
	People map[string]string
	// Seed is the roster the config declares (the alerts: teams): stored
	// as the first version; teams added to the config later are added.
	Seed []Team
	// Required are team ids the config's policies and roles name: an
	// admin cannot remove them.
	Required []string
	Location *time.Location // dates in searches and printouts; default time.Local
	// Observer, when set, is told of each handover signed or accepted
	// (after it is stored): the event bus, for replication to the center.
	Observer Observer
	Log      *slog.Logger
	Now      func() time.Time
}

// Observer is told of a handover's changes (signed, accepted), after
// they are stored; it must not block.
type Observer interface {
	HandoverChanged(h Handover)
}

// Service is the roster, the handovers and the duty log.
type Service struct {
	d      Deps
	mu     sync.RWMutex
	roster *Roster    // the current version; nil before Load
	signMu sync.Mutex // one handover signed at a time (one pending per team)
}

// NewService builds the service; Load reads the stored roster.
func NewService(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Location == nil {
		d.Location = time.Local
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{d: d}
}

// Location is where dates are read and printed.
func (s *Service) Location() *time.Location { return s.d.Location }

// Who signs or writes: the logged-in principal.
type Who struct {
	Username string
	Name     string
}

// Load reads the stored roster, storing the config's teams as the first
// version when there is none, and adding teams the config gained since.
func (s *Service) Load(ctx context.Context) error {
	r, err := s.d.Store.Roster(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		r = &Roster{Version: 0, Teams: []Team{}}
	case err != nil:
		return fmt.Errorf("duty roster: %w", err)
	}
	var added []string
	for _, t := range s.d.Seed {
		if _, ok := r.team(t.ID); !ok {
			r.Teams = append(r.Teams, cloneTeam(t))
			added = append(added, t.ID)
		}
	}
	if len(added) > 0 {
		note := "seeded from the config (alerts: teams)"
		if r.Version > 0 {
			note = "teams added from the config: " + strings.Join(added, ", ")
		}
		r = &Roster{Version: r.Version + 1, Updated: s.d.Now(), By: "config", Note: note, Teams: r.Teams}
		if err := s.d.Store.SaveRoster(ctx, r); err != nil {
			return fmt.Errorf("duty roster: %w", err)
		}
		s.d.Log.Info("duty roster stored", "version", r.Version, "note", note)
	}
	for _, t := range r.Teams {
		for _, m := range t.Rotation.Members {
			if !s.known(m) {
				s.d.Log.Warn("the duty roster names someone no longer under alerts: people; they are not notified", "team", t.ID, "person", m)
			}
		}
	}
	s.mu.Lock()
	s.roster = r
	s.mu.Unlock()
	return nil
}

func (s *Service) known(id string) bool {
	if len(s.d.People) == 0 {
		return id != ""
	}
	_, ok := s.d.People[id]
	return ok
}

func (s *Service) name(id string) string {
	if n, ok := s.d.People[id]; ok && n != "" {
		return n
	}
	return id
}

// display is how a signer is named: as their login names them, else as
// the people list does, else by username.
func (s *Service) display(by Who) string {
	if by.Name != "" && by.Name != by.Username {
		return by.Name
	}
	return s.name(by.Username)
}

func cloneTeam(t Team) Team {
	t.Rotation.Members = slices.Clone(t.Rotation.Members)
	t.Overrides = slices.Clone(t.Overrides)
	return t
}

// Roster is a copy of the current roster.
func (s *Service) Roster() Roster {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.roster == nil {
		return Roster{Teams: []Team{}}
	}
	c := *s.roster
	c.Teams = make([]Team, len(s.roster.Teams))
	for i, t := range s.roster.Teams {
		c.Teams[i] = cloneTeam(t)
	}
	return c
}

// RosterVersions lists stored versions, newest first.
func (s *Service) RosterVersions(ctx context.Context, limit int) ([]*Roster, error) {
	return s.d.Store.RosterVersions(ctx, limit)
}

// SetRoster stores teams as the next version of the roster. version is the
// one the editor started from: ErrConflict when someone saved since.
func (s *Service) SetRoster(ctx context.Context, teams []Team, version int, by Who, note string) (*Roster, error) {
	r := &Roster{Teams: teams}
	for i := range r.Teams {
		r.Teams[i].Name = strings.TrimSpace(r.Teams[i].Name)
		if r.Teams[i].Overrides == nil {
			r.Teams[i].Overrides = []Override{}
		}
	}
	if err := r.Validate(s.known, s.d.Required); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(note) > 500 {
		return nil, fmt.Errorf("%w: note is longer than 500 characters", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := 0
	if s.roster != nil {
		cur = s.roster.Version
	}
	if version != cur {
		return nil, fmt.Errorf("%w: the roster is at version %d, you edited version %d; reload and edit again", ErrConflict, cur, version)
	}
	r.Version, r.Updated, r.By, r.Note = cur+1, s.d.Now(), by.Username, strings.TrimSpace(note)
	if err := s.d.Store.SaveRoster(ctx, r); err != nil {
		return nil, err
	}
	s.roster = r
	s.d.Log.Info("duty roster changed", "version", r.Version, "by", by.Username)
	c := *r
	return &c, nil
}

// OnCall says who is on duty for a team at now, and until when; ok is
// false for a team the roster does not have. It is what the alerts router
// consults (alerts.Roster).
func (s *Service) OnCall(team string, now time.Time) (person string, until time.Time, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.roster == nil {
		return "", time.Time{}, false
	}
	t, ok := s.roster.team(team)
	if !ok {
		return "", time.Time{}, false
	}
	sh := t.At(now)
	return sh.Person, sh.Until, sh.Person != ""
}

// OnDuty is every team's current shift with the person's name (今日值班).
func (s *Service) OnDuty(now time.Time) []Shift {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Shift{}
	if s.roster == nil {
		return out
	}
	for i := range s.roster.Teams {
		sh := s.roster.Teams[i].At(now)
		sh.Name = s.name(sh.Person)
		out = append(out, sh)
	}
	return out
}

// maxShifts bounds a schedule (a month of 8-hour shifts for a dozen teams).
const maxShifts = 2000

// Schedule lists every team's shifts overlapping [from, to), clipped to it,
// with names: the 值班表 as it is printed for the duty room.
func (s *Service) Schedule(from, to time.Time) []Shift {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Shift{}
	if s.roster == nil || !to.After(from) {
		return out
	}
	for i := range s.roster.Teams {
		t := &s.roster.Teams[i]
		for at := from; at.Before(to) && len(out) < maxShifts; {
			sh := t.At(at)
			if sh.Person == "" || !sh.Until.After(at) {
				break
			}
			if sh.From.Before(at) {
				sh.From = at
			}
			if sh.Until.After(to) {
				sh.Until = to
			}
			sh.Name = s.name(sh.Person)
			out = append(out, sh)
			at = sh.Until
		}
	}
	return out
}

// shift is the team's shift being handed over at now by username, and
// who comes next: the current shift, or — when username is not the current
// shift's person, the current shift is in its first half and the shift
// before it has no handover — the shift that ended (a handover signed a
// few minutes late is the ended shift's, not the next person's).
func (s *Service) shift(ctx context.Context, team, username string, now time.Time) (Shift, string, error) {
	s.mu.RLock()
	if s.roster == nil {
		s.mu.RUnlock()
		return Shift{}, "", fmt.Errorf("%w: no duty roster", ErrNotFound)
	}
	t, ok := s.roster.team(team)
	if !ok {
		s.mu.RUnlock()
		return Shift{}, "", fmt.Errorf("%w: team %q is not in the duty roster", ErrNotFound, team)
	}
	cur := t.At(now)
	next := ""
	if !cur.Until.IsZero() {
		next = t.At(cur.Until).Person
	}
	var prev Shift
	if !cur.From.IsZero() {
		prev = t.At(cur.From.Add(-time.Nanosecond))
	}
	s.mu.RUnlock()
	// In the first half of the shift, someone other than its person signs
	// the ended shift's missing handover.
	if username == "" || username == cur.Person || prev.Person == "" || prev.From.IsZero() || cur.Until.IsZero() ||
		!now.Before(cur.From.Add(cur.Until.Sub(cur.From)/2)) {
		return cur, next, nil
	}
	done, err := s.handedOver(ctx, team, prev.From)
	if err != nil || done {
		return cur, next, err
	}
	prev.Until = cur.From
	return prev, cur.Person, nil
}

// handedOver says whether the team's shift that began at start has a
// signed handover.
func (s *Service) handedOver(ctx context.Context, team string, start time.Time) (bool, error) {
	hs, err := s.d.Store.Handovers(ctx, Query{Team: team, From: start, Limit: 50})
	if err != nil {
		return false, err
	}
	for _, h := range hs {
		if h.ShiftStart.Equal(start) {
			return true, nil
		}
	}
	return false, nil
}

// Draft is the handover by would sign now: the summary generated, nothing
// stored.
func (s *Service) Draft(ctx context.Context, team string, by Who) (*Handover, error) {
	now := s.d.Now()
	sh, next, err := s.shift(ctx, team, by.Username, now)
	if err != nil {
		return nil, err
	}
	h := &Handover{Team: sh.Team, TeamName: sh.TeamName, ShiftStart: sh.From, ShiftEnd: sh.Until, Rostered: sh.Person, Next: next,
		RosterName: s.name(sh.Person), NextName: s.name(next), Status: "draft"}
	h.Summary = s.d.Sources.summarise(ctx, now)
	if err := s.shiftLog(ctx, h, now); err != nil {
		return nil, err
	}
	return h, nil
}

// shiftLog adds the duty log since the team's previous handover (or the
// shift's start) to the summary.
func (s *Service) shiftLog(ctx context.Context, h *Handover, now time.Time) error {
	from := h.ShiftStart
	prev, err := s.d.Store.Handovers(ctx, Query{Team: h.Team, Limit: 1})
	if err != nil {
		return err
	}
	if len(prev) > 0 && prev[0].Outgoing.At.Before(now) {
		from = prev[0].Outgoing.At
	}
	es, err := s.d.Store.Entries(ctx, Query{From: from, To: now.Add(time.Nanosecond), Limit: maxItems})
	if err != nil {
		return err
	}
	slices.SortFunc(es, func(a, b *Entry) int { return a.At.Compare(b.At) })
	h.Summary.Log = append(h.Summary.Log, es...)
	return nil
}

const maxText = 4000

// Sign stores a handover of team signed by the outgoing person now, with
// the summary as it is now. One handover per team awaits acceptance at a
// time (ErrConflict).
func (s *Service) Sign(ctx context.Context, team, remarks string, by Who) (*Handover, error) {
	if by.Username == "" {
		return nil, fmt.Errorf("%w: a handover is signed by a logged-in person", ErrInvalid)
	}
	remarks = strings.TrimSpace(remarks)
	if utf8.RuneCountInString(remarks) > maxText {
		return nil, fmt.Errorf("%w: remarks are longer than %d characters", ErrInvalid, maxText)
	}
	s.signMu.Lock()
	defer s.signMu.Unlock()
	pending, err := s.d.Store.Handovers(ctx, Query{Team: team, Pending: true, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("%w: handover %d of %s, signed by %s at %s, awaits acceptance; the incoming person accepts it first",
			ErrConflict, pending[0].ID, team, pending[0].Outgoing.Name, pending[0].Outgoing.At.In(s.d.Location).Format("2006-01-02 15:04"))
	}
	h, err := s.Draft(ctx, team, by)
	if err != nil {
		return nil, err
	}
	h.Remarks, h.Status = remarks, Signed
	h.Outgoing = Signature{By: by.Username, Name: s.display(by), At: h.Summary.Generated}
	if err := s.d.Store.AddHandover(ctx, h); err != nil {
		return nil, err
	}
	s.d.Log.Info("handover signed", "handover", h.ID, "team", team, "by", by.Username, "open_items", h.Summary.Open())
	if s.d.Observer != nil {
		s.d.Observer.HandoverChanged(*h)
	}
	return h, nil
}

// Accept records the incoming person's signature on a handover. They must
// not be the outgoing person; a handover is accepted once.
func (s *Service) Accept(ctx context.Context, id int64, note string, by Who) (*Handover, error) {
	if by.Username == "" {
		return nil, fmt.Errorf("%w: a handover is accepted by a logged-in person", ErrInvalid)
	}
	note = strings.TrimSpace(note)
	if utf8.RuneCountInString(note) > maxText {
		return nil, fmt.Errorf("%w: the note is longer than %d characters", ErrInvalid, maxText)
	}
	h, err := s.d.Store.Handover(ctx, id)
	if err != nil {
		return nil, err
	}
	if h.Incoming != nil {
		return nil, fmt.Errorf("%w: handover %d was accepted by %s at %s", ErrConflict, id, h.Incoming.Name, h.Incoming.At.In(s.d.Location).Format("2006-01-02 15:04"))
	}
	if by.Username == h.Outgoing.By {
		return nil, fmt.Errorf("%w: the incoming person must be someone else than the outgoing one (%s)", ErrInvalid, h.Outgoing.By)
	}
	in := Signature{By: by.Username, Name: s.display(by), At: s.d.Now(), Note: note}
	if err := s.d.Store.AcceptHandover(ctx, id, in); err != nil {
		return nil, err
	}
	h.Incoming, h.Status = &in, Accepted
	s.d.Log.Info("handover accepted", "handover", id, "team", h.Team, "by", by.Username)
	if s.d.Observer != nil {
		s.d.Observer.HandoverChanged(*h)
	}
	return h, nil
}

// Handover reads one handover.
func (s *Service) Handover(ctx context.Context, id int64) (*Handover, error) {
	return s.d.Store.Handover(ctx, id)
}

// Handovers searches handovers, newest first.
func (s *Service) Handovers(ctx context.Context, q Query) ([]*Handover, error) {
	return s.d.Store.Handovers(ctx, q)
}

// Entries searches the duty log, oldest first.
func (s *Service) Entries(ctx context.Context, q Query) ([]*Entry, error) {
	es, err := s.d.Store.Entries(ctx, q)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(es, func(a, b *Entry) int { return a.At.Compare(b.At) })
	return es, nil
}

// EntryInput is a duty-log entry as a person writes it.
type EntryInput struct {
	// At is when it happened. It is required unless AtNow says "now": a
	// call written down an hour later is recorded at its hour.
	At           *time.Time    `json:"at,omitempty"`
	AtNow        bool          `json:"at_now,omitempty"`
	Kind         string        `json:"kind"`
	Team         string        `json:"team,omitempty"`
	Caller       string        `json:"caller,omitempty"`
	Text         string        `json:"text"`
	WorkOrder    int64         `json:"workorder,omitempty"`     // an existing work order it concerns
	NewWorkOrder *NewWorkOrder `json:"new_workorder,omitempty"` // open one for this call (报修)
}

// NewWorkOrder is a work order opened from a duty-log entry; the caller is
// its reporter and the entry's text its description unless given.
type NewWorkOrder struct {
	Type        string         `json:"type,omitempty"` // repair (报修, default), complaint (投诉), help (求助), suggestion (建议)
	Category    string         `json:"category"`
	Room        string         `json:"room,omitempty"`         // 房号
	CallerPhone string         `json:"caller_phone,omitempty"` // the caller's number, for the call-back
	Priority    rules.Priority `json:"priority"`
	Asset       string         `json:"asset,omitempty"`
	Location    string         `json:"location,omitempty"`
	Description string         `json:"description,omitempty"`
}

// Write adds an entry to the duty log in by's name.
func (s *Service) Write(ctx context.Context, in EntryInput, by Who) (*Entry, error) {
	now := s.d.Now()
	e := &Entry{Recorded: now, Kind: in.Kind, Team: strings.TrimSpace(in.Team), Author: by.Username, AuthorName: s.display(by),
		Caller: strings.TrimSpace(in.Caller), Text: strings.TrimSpace(in.Text), WorkOrder: in.WorkOrder}
	switch {
	case by.Username == "":
		return nil, fmt.Errorf("%w: entries are written by a logged-in person", ErrInvalid)
	case in.At != nil && in.AtNow:
		return nil, fmt.Errorf("%w: give either at (when it happened) or at_now, not both", ErrInvalid)
	case in.AtNow:
		e.At = now
	case in.At == nil || in.At.IsZero():
		return nil, fmt.Errorf("%w: at is required: when did it happen? (RFC 3339, e.g. 2026-11-23T21:40:00+08:00), or at_now: true if it is happening now", ErrInvalid)
	case in.At.After(now.Add(5 * time.Minute)):
		return nil, fmt.Errorf("%w: at %s is in the future", ErrInvalid, in.At.Format(time.RFC3339))
	case in.At.Before(now.AddDate(0, 0, -31)):
		return nil, fmt.Errorf("%w: at %s is more than 31 days ago", ErrInvalid, in.At.Format(time.RFC3339))
	default:
		e.At = *in.At
	}
	if _, ok := Kinds[e.Kind]; !ok {
		return nil, fmt.Errorf("%w: kind %q is not one of call (来电), report (报告/报修), patrol (巡逻), note (其他)", ErrInvalid, in.Kind)
	}
	if e.Text == "" {
		return nil, fmt.Errorf("%w: text is required: what was said or seen", ErrInvalid)
	}
	if utf8.RuneCountInString(e.Text) > maxText || utf8.RuneCountInString(e.Caller) > 200 || len(e.Team) > 64 {
		return nil, fmt.Errorf("%w: text is at most %d characters, caller 200, team 64", ErrInvalid, maxText)
	}
	if e.Team != "" {
		s.mu.RLock()
		ok := s.roster != nil
		if ok {
			_, ok = s.roster.team(e.Team)
		}
		s.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("%w: team %q is not in the duty roster", ErrInvalid, e.Team)
		}
	}
	if in.WorkOrder != 0 || in.NewWorkOrder != nil {
		if s.d.Orders == nil {
			return nil, fmt.Errorf("%w: work orders are not available here", ErrInvalid)
		}
	}
	switch {
	case in.WorkOrder != 0 && in.NewWorkOrder != nil:
		return nil, fmt.Errorf("%w: give either workorder (an existing one) or new_workorder, not both", ErrInvalid)
	case in.WorkOrder != 0:
		if _, _, err := s.d.Orders.WorkOrder(ctx, in.WorkOrder); errors.Is(err, rules.ErrNotFound) {
			return nil, fmt.Errorf("%w: work order %d does not exist", ErrInvalid, in.WorkOrder)
		} else if err != nil {
			return nil, err
		}
	case in.NewWorkOrder != nil:
		nw := in.NewWorkOrder
		if strings.TrimSpace(nw.Category) == "" {
			return nil, fmt.Errorf("%w: new_workorder.category is required", ErrInvalid)
		}
		if nw.Priority == "" {
			nw.Priority = "medium"
		}
		if _, ok := prio[nw.Priority]; !ok {
			return nil, fmt.Errorf("%w: new_workorder.priority %q is not critical, high, medium or low", ErrInvalid, nw.Priority)
		}
		desc := strings.TrimSpace(nw.Description)
		if desc == "" {
			desc = e.Text
		}
		reporter := e.Caller
		if reporter == "" {
			reporter = by.Username
		}
		channel := "phone" // 来电
		if e.Kind != KindCall {
			channel = "front_desk" // reported in person, or seen on patrol
		}
		w, err := s.d.Orders.Create(ctx, workorder.WorkOrder{Channel: channel, Type: workorder.Type(nw.Type), Category: strings.TrimSpace(nw.Category), Priority: nw.Priority,
			Asset: nw.Asset, Location: nw.Location, Room: nw.Room, Description: desc, Reporter: reporter, CallerName: e.Caller, CallerPhone: nw.CallerPhone}, by.Username)
		if err != nil {
			return nil, fmt.Errorf("%w: new_workorder: %v", ErrInvalid, err)
		}
		e.WorkOrder = w.ID
	}
	if err := s.d.Store.AddEntry(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// Day is [00:00, next 00:00) of a date (YYYY-MM-DD) where the duty room is.
func (s *Service) Day(date string) (time.Time, time.Time, error) {
	d, err := time.ParseInLocation("2006-01-02", date, s.d.Location)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: date %q is not YYYY-MM-DD", ErrInvalid, date)
	}
	return d, d.AddDate(0, 0, 1), nil
}
