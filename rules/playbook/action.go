package playbook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/i18n"
)

// Action is one thing the gateway does when a step starts (or when its
// deadline passes). A new kind is one type implementing Action, in one
// file, plus its field on ActionSpec and a line in actionKinds.
type Action interface {
	// Validate checks the action's settings; path locates it in the file,
	// playbooks holds every playbook id.
	Validate(path string, playbooks map[string]bool) error
	// Perform does it for one incident step; an error is recorded on the
	// step (which then stays open and escalates when overdue). A drill
	// never touches equipment: Perform records what it would have done.
	Perform(x *Exec) error
}

// actionKinds compile an ActionSpec's fields, in the order they run; each
// returns nil when its field is not set.
var actionKinds = []func(a *ActionSpec) Action{
	func(a *ActionSpec) Action {
		if len(a.Notify) == 0 {
			return nil
		}
		return notifyAction(a.Notify)
	},
	func(a *ActionSpec) Action { return optional(a.WorkOrder) },
	func(a *ActionSpec) Action { return optional(a.StartPlaybook) },
	func(a *ActionSpec) Action {
		if len(a.Write) == 0 {
			return nil
		}
		return writeActions(a.Write)
	},
	func(a *ActionSpec) Action { return optional(a.MQTT) },
}

// optional turns a nil *T into a nil Action (not a non-nil interface
// holding a nil pointer).
func optional[T any, P interface {
	*T
	Action
}](p P) Action {
	if p == nil {
		return nil
	}
	return p
}

// actions lists the compiled actions of a spec.
func (a *ActionSpec) actions() []Action {
	if a == nil {
		return nil
	}
	var out []Action
	for _, kind := range actionKinds {
		if act := kind(a); act != nil {
			out = append(out, act)
		}
	}
	return out
}

// Exec is one step's run of its actions: the incident, the step and the
// runner's means (called with the runner's lock held).
type Exec struct {
	ctx context.Context
	r   *Runner
	in  *Incident
	def *Step
	st  *StepState
	now time.Time
}

func (x *Exec) log(format string, a ...any) {
	x.in.log(x.now, ByEngine, "action", x.st.ID, format, a...)
}

// perform runs an action spec; failures are recorded on the step and the
// timeline (and the step stays open, so it escalates when overdue).
// Equipment writes without auto wait for a person (Confirm): perform then
// reports false, and the step says what it is waiting for.
func (r *Runner) perform(in *Incident, def *Step, st *StepState, a *ActionSpec, now time.Time) bool {
	x := &Exec{ctx: context.Background(), r: r, in: in, def: def, st: st, now: now}
	var errs []string
	held := false
	for _, act := range a.actions() {
		if w, ok := act.(writeActions); ok && !a.Auto {
			st.Awaiting, st.AwaitingOverdue = w.describe(in, r.assets), a == def.OnOverdue && a != def.Action
			x.log("待人工确认后再操作设备 waiting for a person to confirm before changing equipment: %s", st.Awaiting)
			r.notify(Notification{At: now, Roles: []string{def.Role}, Incident: in.ID, Step: st.ID, Drill: in.Drill,
				Text: "【待确认 CONFIRM】" + describe(in, st) + "\n" + st.Awaiting})
			held = true
			continue
		}
		if err := act.Perform(x); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		st.ActionErr = strings.Join(errs, "; ")
		x.log("FAILED: %s", st.ActionErr)
		return false
	}
	st.ActionErr = ""
	return !held
}

func kindOf(in *Incident) string {
	if in.Drill {
		return "DRILL"
	}
	return "incident"
}

// describe is a step's line in a message, Chinese first (the plan's own
// title_zh), then English.
func describe(in *Incident, st *StepState) string {
	kind := "msg.incident"
	if in.Drill {
		kind = "msg.drill"
	}
	zh := fmt.Sprintf("%s %d %s：%s（%s）", i18n.T(i18n.ZH, kind), in.ID, in.Name, i18n.Pick(i18n.ZH, st.TitleZH, st.Title), in.Location)
	en := fmt.Sprintf("%s %d: %s (%s)", i18n.T(i18n.EN, kind), in.ID, st.Title, in.Location)
	return zh + "\n" + en
}
