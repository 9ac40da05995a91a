package playbook

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules"
)

// StepStatus is where a step of an incident stands.
type StepStatus string

// Step statuses.
const (
	StepWaiting StepStatus = "waiting" // its `after` step is not done yet
	StepActive  StepStatus = "active"
	StepDone    StepStatus = "done"
	StepSkipped StepStatus = "skipped"
)

// StepState is one step of a running incident.
type StepState struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	TitleZH   string     `json:"title_zh,omitempty"`
	Role      string     `json:"role"`
	Status    StepStatus `json:"status"`
	Started   time.Time  `json:"started,omitempty"`
	Due       time.Time  `json:"due,omitempty"`
	Done      time.Time  `json:"done,omitempty"`
	By        string     `json:"by,omitempty"`
	Note      string     `json:"note,omitempty"`
	Overdue   bool       `json:"overdue"`
	Optional  bool       `json:"optional"`
	Evidence  []string   `json:"evidence,omitempty"`
	Spawned   []string   `json:"spawned,omitempty"` // assets a start_playbook action started incidents for
	ActionErr string     `json:"action_error,omitempty"`
	Removed   bool       `json:"removed,omitempty"` // no longer in the playbook: kept in the record, not driven
	// DeadlineSource is where the deadline comes from ("003: on site within
	// 3 min", "site practice"), shown in the report.
	DeadlineSource string `json:"deadline_source,omitempty"`
	// HeldAtStart: the step's condition was already true when it started, so
	// no change was observed; a person must confirm it (the record then
	// says "confirmed by", never a sensor time).
	HeldAtStart bool `json:"held_at_start,omitempty"`
	// Awaiting lists equipment writes waiting for a person's confirmation.
	Awaiting        string `json:"awaiting_confirmation,omitempty"`
	AwaitingOverdue bool   `json:"awaiting_overdue,omitempty"` // the writes are the on_overdue action's
}

// Entry is one line of an incident's timeline.
type Entry struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Kind string    `json:"kind"` // started, step_started, step_done, step_skipped, overdue, action, evidence, child, closed
	Step string    `json:"step,omitempty"`
	Text string    `json:"text"`
}

// Activation is one activation of an alarm: the alarm and when it became
// active (rules.Alarm.ActiveSince; an alert's Since).
type Activation struct {
	Alarm string    `json:"alarm"`
	Since time.Time `json:"since"`
}

// maxActivations bounds an incident's Activations (a chattering alarm
// re-triggers an open incident on every activation).
const maxActivations = 50

// TriggeredBy reports whether the activation of alarm that began at since
// started this incident or triggered it again.
func (in *Incident) TriggeredBy(alarm string, since time.Time) bool {
	return slices.ContainsFunc(in.Activations, func(a Activation) bool {
		return a.Alarm == alarm && a.Since.Sub(since).Abs() < time.Millisecond // stores may keep less than nanoseconds
	})
}

func (in *Incident) addActivation(a *rules.Alarm) {
	if a == nil || a.ActiveSince.IsZero() || in.TriggeredBy(a.ID, a.ActiveSince) {
		return
	}
	in.Activations = append(in.Activations, Activation{Alarm: a.ID, Since: a.ActiveSince})
	if n := len(in.Activations); n > maxActivations {
		in.Activations = slices.Delete(in.Activations, 0, n-maxActivations)
	}
}

// RecordValue is one filled item of the incident record: when the thing
// happened and how that is known.
type RecordValue struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Note   string    `json:"note,omitempty"`
	Value  string    `json:"value,omitempty"` // what was observed or entered
	Source string    `json:"source"`          // telemetry (a change observed), person, or confirmed (a person confirmed a condition already true)
}

// Record sources.
const (
	FromTelemetry = "telemetry"
	FromPerson    = "person"
	FromConfirmed = "confirmed"
)

// Incident is one run of a playbook.
type Incident struct {
	ID       int64  `json:"id"`
	Playbook string `json:"playbook"`
	Name     string `json:"name"`
	Drill    bool   `json:"drill"`
	Status   string `json:"status"` // open, closed
	Asset    string `json:"asset,omitempty"`
	Building string `json:"building,omitempty"`
	Location string `json:"location,omitempty"`
	Trigger  string `json:"trigger"`
	// Activations are the alarm activations that started this incident or
	// triggered it again (at most maxActivations, the latest), and
	// WorkOrders the work orders its steps opened: what a message's link
	// about the alarm, or about the incident, may act on (the phone pages).
	Activations []Activation           `json:"activations,omitempty"`
	WorkOrders  []int64                `json:"workorders,omitempty"`
	Parent      int64                  `json:"parent,omitempty"`
	Children    []int64                `json:"children,omitempty"`
	Started     time.Time              `json:"started"`
	Closed      time.Time              `json:"closed,omitempty"`
	Steps       []StepState            `json:"steps"`
	Record      map[string]RecordValue `json:"record"`
	Timeline    []Entry                `json:"timeline"`
	Version     int                    `json:"version"`
}

// clone copies an incident deeply, for readers outside the runner's lock.
func (in *Incident) clone() *Incident {
	c := *in
	c.Children = slices.Clone(in.Children)
	c.Activations = slices.Clone(in.Activations)
	c.WorkOrders = slices.Clone(in.WorkOrders)
	c.Timeline = slices.Clone(in.Timeline)
	c.Steps = make([]StepState, len(in.Steps))
	for i, st := range in.Steps {
		st.Evidence = slices.Clone(st.Evidence)
		st.Spawned = slices.Clone(st.Spawned)
		c.Steps[i] = st
	}
	c.Record = maps.Clone(in.Record)
	return &c
}

// Hidden replaces what people wrote in what a viewer sees.
const Hidden = "（已隐去 hidden）"

// ForViewer is the incident as the read-only wall token sees it: what
// people wrote — notes, evidence, passengers' names and phone numbers — is
// left out; the steps, their times and what the equipment reported stay.
func (in *Incident) ForViewer() *Incident {
	c := in.clone()
	for i := range c.Steps {
		if !automatic(c.Steps[i].By) && c.Steps[i].Note != "" {
			c.Steps[i].Note = Hidden
		}
	}
	for k, v := range c.Record {
		if v.Source != FromTelemetry {
			v.Note, v.Value = Hidden, Hidden
			c.Record[k] = v
		}
	}
	for i := range c.Timeline {
		if !automatic(c.Timeline[i].By) {
			c.Timeline[i].Text = Hidden
		}
	}
	return c
}

// automatic: written by the gateway, not a person.
func automatic(by string) bool { return by == "" || by == ByEngine || by == "telemetry" }

// Step is the incident's step with that id (nil if none).
func (in *Incident) Step(id string) *StepState {
	for i := range in.Steps {
		if in.Steps[i].ID == id {
			return &in.Steps[i]
		}
	}
	return nil
}

func (in *Incident) log(at time.Time, by, kind, step, format string, a ...any) {
	in.Timeline = append(in.Timeline, Entry{At: at, By: by, Kind: kind, Step: step, Text: fmt.Sprintf(format, a...)})
}

// assetsFor resolves which assets a condition (or write, or for_each) covers.
func assetsFor(kind, scope string, in *Incident, assets []collectors.Asset) []collectors.Asset {
	if kind == "" {
		for _, a := range assets {
			if a.ID == in.Asset {
				return []collectors.Asset{a}
			}
		}
		return nil
	}
	var out []collectors.Asset
	for _, a := range assets {
		if string(a.Kind) != kind {
			continue
		}
		if scope != "site" && in.Building != "" && a.Building != in.Building {
			continue
		}
		out = append(out, a)
	}
	return out
}

func compare(v collectors.Value, op string, want any) bool {
	switch w := want.(type) {
	case bool:
		if v.Type != collectors.ValueBool {
			return false
		}
		if op == "ne" {
			return v.B != w
		}
		return v.B == w
	case string:
		if v.Type != collectors.ValueString {
			return false
		}
		if op == "ne" {
			return v.S != w
		}
		return v.S == w
	}
	var wf float64
	switch w := want.(type) {
	case int:
		wf = float64(w)
	case float64:
		wf = w
	}
	f, ok := v.AsFloat()
	if !ok {
		return false
	}
	switch op {
	case "ne":
		return f != wf
	case "gt":
		return f > wf
	case "ge":
		return f >= wf
	case "lt":
		return f < wf
	case "le":
		return f <= wf
	}
	return f == wf
}

// holds evaluates a condition; evidence lists the readings it looked at.
func holds(c Condition, in *Incident, assets []collectors.Asset, r Telemetry) (bool, []string) {
	targets := assetsFor(c.Kind, c.Scope, in, assets)
	if len(targets) == 0 {
		return false, []string{fmt.Sprintf("no %s asset in scope to check %s", orIncident(c.Kind), c.Field)}
	}
	var ev []string
	for _, a := range targets {
		fs, ok := r.Get(a.ID, c.Field)
		if !ok || fs.Quality != collectors.QualityGood {
			return false, append(ev, fmt.Sprintf("%s.%s has no good reading", a.ID, c.Field))
		}
		ev = append(ev, fmt.Sprintf("%s.%s = %s at %s", a.ID, c.Field, strings.Trim(fs.Value.String(), `"`), fs.Time.Format("15:04:05")))
		want := c.Value
		if c.ValueField != "" {
			other, ok := r.Get(a.ID, c.ValueField)
			if !ok || other.Quality != collectors.QualityGood {
				return false, append(ev, fmt.Sprintf("%s.%s has no good reading", a.ID, c.ValueField))
			}
			ev = append(ev, fmt.Sprintf("%s.%s = %s", a.ID, c.ValueField, strings.Trim(other.Value.String(), `"`)))
			want = valueOf(other.Value)
		}
		if !compare(fs.Value, c.Op, want) {
			return false, ev
		}
	}
	return true, ev
}

// valueOf turns a reading into what compare takes.
func valueOf(v collectors.Value) any {
	switch v.Type {
	case collectors.ValueBool:
		return v.B
	case collectors.ValueString:
		return v.S
	}
	f, _ := v.AsFloat()
	return f
}

func orIncident(kind string) string {
	if kind == "" {
		return "incident"
	}
	return kind
}

func allHold(cs []Condition, in *Incident, assets []collectors.Asset, r Telemetry) (bool, []string) {
	var ev []string
	for _, c := range cs {
		ok, e := holds(c, in, assets, r)
		ev = append(ev, e...)
		if !ok {
			return false, ev
		}
	}
	return true, ev
}

func anyHolds(cs []Condition, in *Incident, assets []collectors.Asset, r Telemetry) (bool, []string) {
	var ev []string
	for _, c := range cs {
		ok, e := holds(c, in, assets, r)
		ev = append(ev, e...)
		if ok {
			return true, ev
		}
	}
	return false, ev
}

// HoldsOn evaluates the condition's comparison on one asset's readings
// (the caller has chosen the asset: kind and scope are not looked at); the
// evidence says what it saw. Planned works check recovery with it.
func (c Condition) HoldsOn(asset string, r Telemetry) (bool, string) {
	one := Condition{Field: c.Field, Op: c.Op, Value: c.Value, ValueField: c.ValueField}
	ok, ev := holds(one, &Incident{Asset: asset}, []collectors.Asset{{ID: asset}}, r)
	return ok, strings.Join(ev, "; ")
}

// ValidateConditions checks conditions as a playbook's when: does (path
// names them in errors).
func ValidateConditions(path string, cs []Condition) error { return validConditions(path, cs, true) }
