package duty

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Duration is a time.Duration written as Go text ("24h", "168h") in JSON,
// as in the YAML the roster is seeded from.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is text such as \"24h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"24h\" or \"168h\"", s)
	}
	*d = Duration(v)
	return nil
}

// Rotation hands a team's duty from member to member, shift by shift.
type Rotation struct {
	Members  []string  `json:"members"`   // people ids (the alerts: people)
	Start    time.Time `json:"start"`     // a handover; the first member is on duty from here
	Shift    Duration  `json:"shift"`     // e.g. 24h or 168h
	TimeZone string    `json:"time_zone"` // for printing the shift times
}

// Override puts someone on duty for a team for a while (leave, swaps).
type Override struct {
	Person string    `json:"person"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Note   string    `json:"note,omitempty"`
}

// Team is one duty team: engineering, security, the shift lead…
type Team struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Rotation  Rotation   `json:"rotation"`
	Overrides []Override `json:"overrides"`
}

// Roster is the duty roster (值班表): every team's rotation and overrides,
// one stored version at a time.
type Roster struct {
	Version int       `json:"version"`
	Updated time.Time `json:"updated"`
	By      string    `json:"updated_by"`
	Note    string    `json:"note,omitempty"` // what changed, as the editor said
	Teams   []Team    `json:"teams"`
}

// Shift is one person's turn on duty for a team.
type Shift struct {
	Team     string    `json:"team"`
	TeamName string    `json:"team_name"`
	Person   string    `json:"person"`
	Name     string    `json:"name"`
	From     time.Time `json:"from"`
	Until    time.Time `json:"until"`
	Override bool      `json:"override,omitempty"` // an override, not the rotation
}

// team finds a team by id.
func (r *Roster) team(id string) (*Team, bool) {
	for i := range r.Teams {
		if r.Teams[i].ID == id {
			return &r.Teams[i], true
		}
	}
	return nil, false
}

// At is the team's shift covering now: who is on duty, from when, until when.
func (t *Team) At(now time.Time) Shift {
	s := Shift{Team: t.ID, TeamName: t.Name}
	for _, o := range t.Overrides {
		if !now.Before(o.From) && now.Before(o.To) {
			s.Person, s.From, s.Until, s.Override = o.Person, o.From, o.To, true
			return s
		}
	}
	r := t.Rotation
	shift := time.Duration(r.Shift)
	if len(r.Members) == 0 || shift <= 0 {
		return s
	}
	n := int64(now.Sub(r.Start) / shift)
	if now.Before(r.Start) && now.Sub(r.Start)%shift != 0 {
		n--
	}
	m := int64(len(r.Members))
	s.Person = r.Members[int(((n%m)+m)%m)]
	s.From = r.Start.Add(time.Duration(n) * shift)
	s.Until = s.From.Add(shift)
	// An override starting within the rotation's shift ends it early.
	for _, o := range t.Overrides {
		if o.From.After(now) && o.From.Before(s.Until) {
			s.Until = o.From
		}
	}
	return s
}

// Validate checks the roster against the people who can be on duty
// (known; empty: anyone) and the teams that must stay (the alerts policies
// and roles name them).
func (r *Roster) Validate(known func(id string) bool, required []string) error {
	seen := map[string]bool{}
	for i, t := range r.Teams {
		path := fmt.Sprintf("teams[%d]", i)
		if t.ID == "" || len(t.ID) > 64 || seen[t.ID] {
			return fmt.Errorf("%w: %s.id %q is empty, too long or used twice", ErrInvalid, path, t.ID)
		}
		seen[t.ID] = true
		if len(t.Name) > 200 {
			return fmt.Errorf("%w: %s.name is longer than 200 characters", ErrInvalid, path)
		}
		if len(t.Rotation.Members) == 0 || t.Rotation.Shift <= 0 {
			return fmt.Errorf("%w: %s (%s).rotation needs members and a positive shift, e.g. 24h", ErrInvalid, path, t.ID)
		}
		if time.Duration(t.Rotation.Shift) < time.Hour {
			return fmt.Errorf("%w: %s (%s).rotation.shift %s is shorter than an hour", ErrInvalid, path, t.ID, time.Duration(t.Rotation.Shift))
		}
		if t.Rotation.Start.IsZero() {
			return fmt.Errorf("%w: %s (%s).rotation.start is required: a handover time, e.g. 2026-01-05T08:00:00+08:00", ErrInvalid, path, t.ID)
		}
		if _, err := time.LoadLocation(t.Rotation.TimeZone); err != nil {
			return fmt.Errorf("%w: %s (%s).rotation.time_zone %q is not a time zone", ErrInvalid, path, t.ID, t.Rotation.TimeZone)
		}
		for _, m := range t.Rotation.Members {
			if m == "" || known != nil && !known(m) {
				return fmt.Errorf("%w: %s (%s).rotation.members: %q is not a person under alerts: people:", ErrInvalid, path, t.ID, m)
			}
		}
		if len(t.Overrides) > 500 {
			return fmt.Errorf("%w: %s (%s) has more than 500 overrides; remove past ones", ErrInvalid, path, t.ID)
		}
		for j, o := range t.Overrides {
			if o.Person == "" || known != nil && !known(o.Person) {
				return fmt.Errorf("%w: %s (%s).overrides[%d].person %q is not a person under alerts: people:", ErrInvalid, path, t.ID, j, o.Person)
			}
			if !o.To.After(o.From) {
				return fmt.Errorf("%w: %s (%s).overrides[%d]: to must be after from", ErrInvalid, path, t.ID, j)
			}
		}
	}
	if len(r.Teams) > 100 {
		return fmt.Errorf("%w: more than 100 teams", ErrInvalid)
	}
	for _, id := range required {
		if !slices.ContainsFunc(r.Teams, func(t Team) bool { return t.ID == id }) {
			return fmt.Errorf("%w: team %q cannot be removed: the alerts policies or roles in the config name it", ErrInvalid, id)
		}
	}
	return nil
}
