package playbook

import (
	"strings"

	"github.com/propgate/gateway/internal/cfgerr"
)

// Completer decides how a step completes without a person. A new way is
// one type implementing it plus a line in completions.
type Completer interface {
	// Validate checks the step fields this completion needs.
	Validate(path string, s *Step) error
	// Check is asked on every tick while the step is active: done, with the
	// readings it looked at and the note to record.
	Check(x *Exec) (done bool, evidence []string, note string)
	// OnAction reports whether performing the step's action completes it.
	OnAction() bool
}

var completions = map[Completion]Completer{
	ByPerson:    manualCompletion{},
	ByTelemetry: telemetryCompletion{},
	ByDecision:  decisionCompletion{},
	ByAction:    actionCompletion{},
}

var (
	_ Completer = manualCompletion{}
	_ Completer = telemetryCompletion{}
	_ Completer = decisionCompletion{}
	_ Completer = actionCompletion{}
)

// manualCompletion: a person completes the step through the API.
type manualCompletion struct{}

func (manualCompletion) Validate(string, *Step) error         { return nil }
func (manualCompletion) Check(*Exec) (bool, []string, string) { return false, nil, "" }
func (manualCompletion) OnAction() bool                       { return false }
func (actionCompletion) Check(*Exec) (bool, []string, string) { return false, nil, "" }
func (actionCompletion) OnAction() bool                       { return true }
func (telemetryCompletion) OnAction() bool                    { return false }
func (decisionCompletion) OnAction() bool                     { return false }

// telemetryCompletion: done when `when` (all) or `when_any` holds.
type telemetryCompletion struct{}

func (telemetryCompletion) Validate(path string, s *Step) error {
	if len(s.When) == 0 && len(s.WhenAny) == 0 {
		return cfgerr.Errorf(path+".when", "a telemetry step needs when or when_any")
	}
	return nil
}

func (telemetryCompletion) Check(x *Exec) (bool, []string, string) {
	var ok bool
	var ev []string
	if len(x.def.When) > 0 {
		ok, ev = allHold(x.def.When, x.in, x.r.assets, x.r.telemetry)
	} else {
		ok, ev = anyHolds(x.def.WhenAny, x.in, x.r.assets, x.r.telemetry)
	}
	if !ok {
		return false, nil, ""
	}
	return true, ev, "confirmed from telemetry: " + strings.Join(ev, "; ")
}

// decisionCompletion: done when the first of `decide`'s cases holds; its
// note is recorded.
type decisionCompletion struct{}

func (decisionCompletion) Validate(path string, s *Step) error {
	if len(s.Decide) == 0 {
		return cfgerr.Errorf(path+".decide", "a decision step needs cases")
	}
	return nil
}

func (decisionCompletion) Check(x *Exec) (bool, []string, string) {
	for _, c := range x.def.Decide {
		if ok, ev := allHold(c.When, x.in, x.r.assets, x.r.telemetry); ok {
			return true, ev, c.Note + " (from telemetry: " + strings.Join(ev, "; ") + ")"
		}
	}
	return false, nil, ""
}

// actionCompletion: done when the step's action has been performed.
type actionCompletion struct{}

func (actionCompletion) Validate(path string, s *Step) error {
	if s.Action == nil {
		return cfgerr.Errorf(path+".action", "an action step needs an action")
	}
	return nil
}
