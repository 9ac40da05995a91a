package rules

import (
	"errors"
	"strings"
	"time"

	"github.com/propgate/gateway/collectors"
)

// AlarmState is an alarm's state after ISA-18.2.
type AlarmState string

// The states. The first four are the annunciated lifecycle; the last three
// are the "not annunciated" states of ISA-18.2.
const (
	StateNormal       AlarmState = "normal"
	StateUnacked      AlarmState = "unacknowledged"          // active, not acknowledged
	StateAcked        AlarmState = "acknowledged"            // active, acknowledged
	StateRTNUnacked   AlarmState = "returned_unacknowledged" // back to normal, never acknowledged
	StateShelved      AlarmState = "shelved"                 // hidden by an operator until a time
	StateOutOfService AlarmState = "out_of_service"          // e.g. while the fault's work order is open
	StateSuppressed   AlarmState = "suppressed"              // by design, while another alarm explains it
)

// Active reports whether the state counts as an active alarm for lists.
func (s AlarmState) Active() bool { return s == StateUnacked || s == StateAcked }

// ChatterWindow and ChatterCount: an alarm that activates ChatterCount times
// within ChatterWindow is flagged as chattering (its deadband or delays need
// tuning).
const (
	ChatterWindow = time.Minute
	ChatterCount  = 3
)

// ByEngine is the "who" of automatic transitions.
const ByEngine = "engine"

// Alarm is one rule on one asset. Its reported State is derived from the
// facts below, so it cannot drift from them.
type Alarm struct {
	ID             string     `json:"id"`
	Rule           string     `json:"rule"`
	Asset          string     `json:"asset"`
	Name           string     `json:"name"`
	NameZH         string     `json:"name_zh,omitempty"`
	Priority       Priority   `json:"priority"`
	Category       string     `json:"category,omitempty"`
	Instructions   string     `json:"instructions,omitempty"`
	InstructionsZH string     `json:"instructions_zh,omitempty"`
	State          AlarmState `json:"state"`
	Since          time.Time  `json:"since"` // when State was entered
	Value          string     `json:"value,omitempty"`

	Active       bool      `json:"active"` // the condition, after on/off delays
	Acked        bool      `json:"acked"`
	ActiveSince  time.Time `json:"active_since,omitempty"`
	PendingSince time.Time `json:"pending_since,omitempty"` // condition true, on-delay running
	ClearSince   time.Time `json:"clear_since,omitempty"`   // condition false, off-delay running
	ShelvedUntil time.Time `json:"shelved_until,omitempty"`
	OutOfService bool      `json:"out_of_service"`
	Suppressed   bool      `json:"suppressed"`
	Chattering   bool      `json:"chattering"`
	AckBy        string    `json:"ack_by,omitempty"`
	AckNote      string    `json:"ack_note,omitempty"`
	// Planned is set when this activation is the expected consequence of
	// planned work (a planned power cut): annunciated quietly, no paging,
	// no emergency playbook, no fault work order.
	Planned *PlannedTag `json:"planned,omitempty"`

	activations []time.Time      // within ChatterWindow, for chattering
	last        collectors.Value // latest reading; Value is formatted from it when needed
}

// render fills Value from the latest reading (formatting costs an
// allocation, so it happens only for transitions, saves and reads).
func (a *Alarm) render() {
	if a.last.Type != collectors.ValueNone {
		a.Value = strings.Trim(a.last.String(), `"`)
	}
}

// ForViewer is the alarm as the read-only wall token sees it: who
// acknowledged it (a name) stays; what they wrote with it (a note may carry
// a phone number, or where the acknowledgement came from) does not.
func (a Alarm) ForViewer() Alarm {
	a.AckNote = ""
	return a
}

// Transition is one recorded state change.
type Transition struct {
	AlarmID string     `json:"alarm_id"`
	From    AlarmState `json:"from"`
	To      AlarmState `json:"to"`
	At      time.Time  `json:"at"`
	By      string     `json:"by"`
	Note    string     `json:"note,omitempty"`
	Value   string     `json:"value,omitempty"`
}

// ForViewer is the transition as the wall token sees it: a person's note
// is left out; the engine's own ("shelving expired", "chattering") stays.
func (t Transition) ForViewer() Transition {
	if t.By != ByEngine && t.By != "" {
		t.Note = ""
	}
	return t
}

// Fired reports whether the transition is an alarm firing: it became
// unacknowledged from normal (or from returned-unacknowledged).
func (t Transition) Fired() bool {
	return t.To == StateUnacked && (t.From == StateNormal || t.From == StateRTNUnacked)
}

func (a *Alarm) masked() bool {
	return !a.ShelvedUntil.IsZero() || a.OutOfService || a.Suppressed
}

func (a *Alarm) derive() AlarmState {
	switch {
	case !a.ShelvedUntil.IsZero():
		return StateShelved
	case a.OutOfService:
		return StateOutOfService
	case a.Suppressed && a.Active:
		return StateSuppressed
	case a.Active && !a.Acked:
		return StateUnacked
	case a.Active:
		return StateAcked
	case !a.Acked:
		return StateRTNUnacked
	}
	return StateNormal
}

// settle records a transition when the derived state changed.
func (a *Alarm) settle(now time.Time, by, note string) []Transition {
	to := a.derive()
	if to == a.State {
		return nil
	}
	a.render()
	t := Transition{AlarmID: a.ID, From: a.State, To: to, At: now, By: by, Note: note, Value: a.Value}
	a.State, a.Since = to, now
	return []Transition{t}
}

// Observe feeds the rule's condition for a new reading; on- and off-delays
// are applied here and in Tick.
func (a *Alarm) Observe(cond bool, value collectors.Value, now time.Time, r *Rule) []Transition {
	a.last = value
	if cond {
		a.ClearSince = time.Time{}
		if !a.Active && a.PendingSince.IsZero() {
			a.PendingSince = now
		}
	} else {
		a.PendingSince = time.Time{}
		if a.Active && a.ClearSince.IsZero() {
			a.ClearSince = now
		}
	}
	return a.Tick(now, r)
}

// Tick applies delays and shelving expiry as time passes.
func (a *Alarm) Tick(now time.Time, r *Rule) []Transition {
	var out []Transition
	if !a.PendingSince.IsZero() && !a.Active && now.Sub(a.PendingSince) >= r.OnDelay {
		a.PendingSince = time.Time{}
		a.Active, a.ActiveSince = true, now
		a.Acked = a.masked() // a new occurrence must be acknowledged, unless hidden
		a.noteActivation(now)
		note := ""
		if a.Chattering {
			note = "chattering: activated 3 or more times within a minute; tune the deadband or delays"
		}
		out = append(out, a.settle(now, ByEngine, note)...)
	}
	if !a.ClearSince.IsZero() && a.Active && now.Sub(a.ClearSince) >= r.OffDelay {
		a.ClearSince = time.Time{}
		a.Active = false
		if a.masked() {
			a.Acked = true // never annunciated: nothing to acknowledge
		}
		out = append(out, a.settle(now, ByEngine, "")...)
	}
	if !a.ShelvedUntil.IsZero() && !now.Before(a.ShelvedUntil) {
		out = append(out, a.unmask(now, func() { a.ShelvedUntil = time.Time{} }, ByEngine, "shelving expired")...)
	}
	if a.Chattering && len(a.activations) > 0 && now.Sub(a.activations[len(a.activations)-1]) > ChatterWindow {
		a.Chattering, a.activations = false, nil
	}
	return out
}

func (a *Alarm) noteActivation(now time.Time) {
	kept := a.activations[:0]
	for _, t := range a.activations {
		if now.Sub(t) < ChatterWindow {
			kept = append(kept, t)
		}
	}
	a.activations = append(kept, now)
	a.Chattering = len(a.activations) >= ChatterCount
}

// unmask lifts a shelving, out-of-service or suppression: an alarm still
// active annunciates again.
func (a *Alarm) unmask(now time.Time, lift func(), by, note string) []Transition {
	was := a.masked()
	lift()
	if was && !a.masked() {
		a.Acked = !a.Active
	}
	return a.settle(now, by, note)
}

// Errors for operator actions that do not apply.
var (
	ErrNothingToAck   = errors.New("the alarm is not waiting for acknowledgement")
	ErrAlreadyShelved = errors.New("the alarm is already shelved")
	ErrNotShelved     = errors.New("the alarm is not shelved")
)

// Ack acknowledges an unacknowledged or returned-unacknowledged alarm.
func (a *Alarm) Ack(now time.Time, by, note string) ([]Transition, error) {
	if a.State != StateUnacked && a.State != StateRTNUnacked {
		return nil, ErrNothingToAck
	}
	a.Acked, a.AckBy, a.AckNote = true, by, note
	return a.settle(now, by, note), nil
}

// Shelve hides the alarm until a time; it returns by itself then.
func (a *Alarm) Shelve(now, until time.Time, by, note string) ([]Transition, error) {
	if !a.ShelvedUntil.IsZero() {
		return nil, ErrAlreadyShelved
	}
	a.ShelvedUntil = until
	if !a.Active {
		a.Acked = true
	}
	return a.settle(now, by, note), nil
}

// Unshelve returns a shelved alarm now.
func (a *Alarm) Unshelve(now time.Time, by, note string) ([]Transition, error) {
	if a.ShelvedUntil.IsZero() {
		return nil, ErrNotShelved
	}
	return a.unmask(now, func() { a.ShelvedUntil = time.Time{} }, by, note), nil
}

// SetOutOfService takes the alarm out of service or returns it.
func (a *Alarm) SetOutOfService(on bool, now time.Time, by, note string) []Transition {
	if on {
		a.OutOfService = true
		if !a.Active {
			a.Acked = true
		}
		return a.settle(now, by, note)
	}
	return a.unmask(now, func() { a.OutOfService = false }, by, note)
}

// SetSuppressed is set by the engine while a suppressing alarm is active.
func (a *Alarm) SetSuppressed(on bool, now time.Time, cause string) []Transition {
	if on == a.Suppressed {
		return nil
	}
	if on {
		a.Suppressed = true
		if a.Active && a.State == StateUnacked {
			a.Acked = true // hidden until the suppression lifts
		}
		return a.settle(now, ByEngine, "suppressed by design: "+cause)
	}
	return a.unmask(now, func() { a.Suppressed = false }, ByEngine, "suppression lifted: "+cause)
}
