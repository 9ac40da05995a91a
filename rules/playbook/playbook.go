// Package playbook owns the emergency plans: their definitions, the runner
// that drives incidents step by step (telemetry, decisions, actions,
// deadlines), the incident records and their reports.
package playbook

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
)

// Condition is a telemetry check: the field of the incident's asset (no
// kind), or of every asset of a kind in the incident's building or site.
// An empty set of assets never holds: what cannot be seen is not verified.
type Condition struct {
	Kind  string `yaml:"kind"`
	Scope string `yaml:"scope"` // building (default with kind) or site
	Field string `yaml:"field"`
	Op    string `yaml:"op"` // eq (default), ne, gt, ge, lt, le
	Value any    `yaml:"value"`
	// ValueField compares with another reading of the same asset instead
	// of a fixed value: the car's floor with its own top_floor.
	ValueField string `yaml:"value_field"`
}

// Case is one outcome of a decision step.
type Case struct {
	When []Condition `yaml:"when"`
	Note string      `yaml:"note"`
}

// WorkOrderAction opens a work order.
type WorkOrderAction struct {
	Category    string         `yaml:"category"`
	Priority    rules.Priority `yaml:"priority"`
	Description string         `yaml:"description"`
}

// SpawnAction starts another playbook, for the incident's asset or for each
// asset that matches (outage → one entrapment per trapped car). While the
// step is open, assets that start matching later are picked up too.
type SpawnAction struct {
	Playbook string   `yaml:"playbook"`
	ForEach  *ForEach `yaml:"for_each"`
}

// ForEach selects assets of a kind in scope matching any of the conditions.
type ForEach struct {
	Kind    string      `yaml:"kind"`
	Scope   string      `yaml:"scope"`
	WhenAny []Condition `yaml:"when_any"` // conditions here have no kind: they apply to each asset
}

// WriteAction sets a writable equipment field (Modbus), verified by read-back.
type WriteAction struct {
	Kind  string `yaml:"kind"` // empty: the incident's asset
	Scope string `yaml:"scope"`
	Field string `yaml:"field"`
	Value any    `yaml:"value"`
}

// MQTTAction publishes a command (sirens, LED boards).
type MQTTAction struct {
	Topic   string `yaml:"topic"` // {asset} and {building} are replaced
	Payload string `yaml:"payload"`
}

// ActionSpec is what the gateway does for a step, as written in the
// playbook; each set field compiles into one Action (actionKinds).
type ActionSpec struct {
	Notify        []string         `yaml:"notify"` // roles
	WorkOrder     *WorkOrderAction `yaml:"workorder"`
	StartPlaybook *SpawnAction     `yaml:"start_playbook"`
	Write         []WriteAction    `yaml:"write"`
	MQTT          *MQTTAction      `yaml:"mqtt"`
	// Equipment writes affect residents (pumps, valves, power): they wait
	// for a person's confirmation unless the author sets auto with a reason.
	Auto   bool   `yaml:"auto"`
	Reason string `yaml:"reason"`
}

// Completion says how a step completes.
type Completion string

// Completions.
const (
	ByPerson    Completion = "manual"    // through the API, with a note
	ByTelemetry Completion = "telemetry" // when `when` (all) or `when_any` holds
	ByDecision  Completion = "decision"  // when the first of `decide`'s cases holds; its note is recorded
	ByAction    Completion = "action"    // when the step's action has been performed
)

// Step is one thing the plan says to do.
type Step struct {
	ID           string        `yaml:"id"`
	Title        string        `yaml:"title"`
	TitleZH      string        `yaml:"title_zh"` // the plan's own wording, for Chinese screens and the report
	Role         string        `yaml:"role"`
	After        string        `yaml:"after"`    // starts when this step is done; default: at the start
	Deadline     time.Duration `yaml:"deadline"` // from the step's start
	Source       string        `yaml:"source"`   // where the deadline comes from: "003: on site within 3 min", "site practice"
	Complete     Completion    `yaml:"complete"`
	When         []Condition   `yaml:"when"`
	WhenAny      []Condition   `yaml:"when_any"`
	Decide       []Case        `yaml:"decide"`
	Action       *ActionSpec   `yaml:"action"`     // performed when the step starts
	OnOverdue    *ActionSpec   `yaml:"on_overdue"` // performed when its deadline passes
	Escalate     []string      `yaml:"escalate"`   // roles told when it is overdue; default shift_lead
	Records      string        `yaml:"records"`    // the record field its completion fills
	NoteRequired bool          `yaml:"note_required"`
	DrillOnly    bool          `yaml:"drill_only"` // only in drills (the evaluation and participants); skipped in a real incident
	Optional     bool          `yaml:"optional"`   // closing the incident does not wait for it
	// Contacts are whom the step says to call: ids of the register's contacts
	// directory, or asset_contractor (the incident asset's 维保单位 and phone,
	// from the asset register); resolved when the incident is viewed
	// (GET /api/v1/incidents/{id}/contacts).
	Contacts []string `yaml:"contacts"`
}

// Trigger says when a playbook starts by itself.
type Trigger struct {
	Rules   []string `yaml:"rules"`    // an alarm of one of these rules becoming unacknowledged
	OncePer string   `yaml:"once_per"` // asset (default), building or site: one open incident each
	Records string   `yaml:"records"`  // the record item the triggering alarm's activation time fills (outage start)
	// WhenAny guards the start: at least one condition must hold on the
	// triggering asset (no kind). While none does, the alarm is looked at
	// again every second as long as it is active.
	WhenAny []Condition   `yaml:"when_any"`
	Every   time.Duration `yaml:"every"` // scheduled (the pre-storm checklist)
}

// RecordField is one item the incident record must hold.
type RecordField struct {
	Key     string `yaml:"key"`
	Label   string `yaml:"label"`
	LabelZH string `yaml:"label_zh"` // the Chinese the record is filed with (Chinese first)
}

// Playbook is an emergency plan.
type Playbook struct {
	ID          string         `yaml:"id"`
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Trigger     Trigger        `yaml:"trigger"`
	Capture     []string       `yaml:"capture"` // the asset's fields recorded as evidence at the start
	Record      []RecordField  `yaml:"record"`
	Drill       *DrillSchedule `yaml:"drill"` // drilled on a calendar (every 6mo per 002/003)
	Steps       []Step         `yaml:"steps"`
}

var (
	stepIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	idRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// SetDefaults fills unset values.
func (p *Playbook) SetDefaults() {
	if p.Trigger.OncePer == "" {
		p.Trigger.OncePer = "asset"
	}
	for i := range p.Steps {
		s := &p.Steps[i]
		if s.Complete == "" {
			switch {
			case len(s.When) > 0 || len(s.WhenAny) > 0:
				s.Complete = ByTelemetry
			case len(s.Decide) > 0:
				s.Complete = ByDecision
			default:
				s.Complete = ByPerson
			}
		}
		if len(s.Escalate) == 0 {
			s.Escalate = []string{"shift_lead"}
		}
	}
}

func validConditions(path string, cs []Condition, withKind bool) error {
	for i, c := range cs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if c.Field == "" {
			return cfgerr.Errorf(p+".field", "is required")
		}
		switch c.Op {
		case "", "eq", "ne", "gt", "ge", "lt", "le":
		default:
			return cfgerr.Errorf(p+".op", "%q is not an operator; fix: eq, ne, gt, ge, lt or le", c.Op)
		}
		switch {
		case c.ValueField != "" && c.Value != nil:
			return cfgerr.Errorf(p+".value_field", "set value or value_field, not both")
		case c.ValueField != "":
		default:
			switch c.Value.(type) {
			case bool, int, float64, string:
			default:
				return cfgerr.Errorf(p+".value", "must be a boolean, number or string")
			}
		}
		if c.Kind != "" && !withKind {
			return cfgerr.Errorf(p+".kind", "conditions here apply to each selected asset: no kind")
		}
		if c.Scope != "" && c.Scope != "building" && c.Scope != "site" {
			return cfgerr.Errorf(p+".scope", "%q is not a scope; fix: building or site", c.Scope)
		}
	}
	return nil
}

func validAction(path string, a *ActionSpec, playbooks map[string]bool) error {
	if a == nil {
		return nil
	}
	if a.Auto && strings.TrimSpace(a.Reason) == "" {
		return cfgerr.Errorf(path+".reason", "auto: true needs a reason: why the gateway may change equipment affecting residents without a person confirming")
	}
	for _, act := range a.actions() {
		if err := act.Validate(path, playbooks); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a playbook; playbooks holds every playbook id, rules
// every rule id. Paths are relative to the file.
func (p *Playbook) Validate(playbooks, ruleIDs map[string]bool) error {
	if !idRE.MatchString(p.ID) {
		return cfgerr.Errorf("id", "%q is not a playbook id; fix: lower-case letters, digits, '.', '_' or '-'", p.ID)
	}
	if p.Name == "" {
		return cfgerr.Errorf("name", "is required")
	}
	for i, r := range p.Trigger.Rules {
		if !ruleIDs[r] {
			return cfgerr.Errorf(fmt.Sprintf("trigger.rules[%d]", i), "%q is not a rule id (rules.rules in the gateway config)", r)
		}
	}
	switch p.Trigger.OncePer {
	case "asset", "building", "site":
	default:
		return cfgerr.Errorf("trigger.once_per", "%q is not asset, building or site", p.Trigger.OncePer)
	}
	if len(p.Steps) == 0 {
		return cfgerr.Errorf("steps", "a playbook needs steps")
	}
	if p.Drill != nil {
		if err := p.Drill.validate(); err != nil {
			return err
		}
	}
	records := map[string]bool{}
	for _, r := range p.Record {
		records[r.Key] = true
	}
	if err := validConditions("trigger.when_any", p.Trigger.WhenAny, false); err != nil {
		return err
	}
	if p.Trigger.Records != "" && !records[p.Trigger.Records] {
		return cfgerr.Errorf("trigger.records", "%q is not a key under record:", p.Trigger.Records)
	}
	ids := map[string]int{}
	for i := range p.Steps {
		s := &p.Steps[i]
		path := fmt.Sprintf("steps[%d]", i)
		if !stepIDRE.MatchString(s.ID) {
			return cfgerr.Errorf(path+".id", "%q is not a step id; fix: lower-case letters, digits, '_' or '-'", s.ID)
		}
		if j, dup := ids[s.ID]; dup {
			return cfgerr.Errorf(path+".id", "%q is already steps[%d]", s.ID, j)
		}
		ids[s.ID] = i
		if s.Title == "" || s.Role == "" {
			return cfgerr.Errorf(path, "title and role are required")
		}
		if s.After != "" {
			if _, ok := ids[s.After]; !ok {
				return cfgerr.Errorf(path+".after", "%q is not an earlier step", s.After)
			}
		}
		if s.Deadline <= 0 {
			return cfgerr.Errorf(path+".deadline", "is required: how long after the step starts it must be done, e.g. 3m")
		}
		c, ok := completions[s.Complete]
		if !ok {
			return cfgerr.Errorf(path+".complete", "%q is not manual, telemetry, decision or action", s.Complete)
		}
		if err := c.Validate(path, s); err != nil {
			return err
		}
		if err := validConditions(path+".when", s.When, true); err != nil {
			return err
		}
		if err := validConditions(path+".when_any", s.WhenAny, true); err != nil {
			return err
		}
		for j, c := range s.Decide {
			if err := validConditions(fmt.Sprintf("%s.decide[%d].when", path, j), c.When, true); err != nil {
				return err
			}
		}
		if err := validAction(path+".action", s.Action, playbooks); err != nil {
			return err
		}
		if err := validAction(path+".on_overdue", s.OnOverdue, playbooks); err != nil {
			return err
		}
		if s.Records != "" && !records[s.Records] {
			return cfgerr.Errorf(path+".records", "%q is not a key under record:", s.Records)
		}
	}
	return nil
}

// AutoActions lists where the playbook lets the gateway change equipment
// without a person confirming (gateway check warns about each).
func (p *Playbook) AutoActions() []string {
	var out []string
	for i, s := range p.Steps {
		for what, a := range map[string]*ActionSpec{"action": s.Action, "on_overdue": s.OnOverdue} {
			if a != nil && a.Auto && len(a.Write) > 0 {
				out = append(out, fmt.Sprintf("%s: steps[%d].%s writes equipment without confirmation (%s)", p.ID, i, what, a.Reason))
			}
		}
	}
	return out
}

// CheckCategories checks the work orders the playbook opens use the site's
// work-order categories (rules.categories; none configured: any).
func (p *Playbook) CheckCategories(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	for i, s := range p.Steps {
		for what, a := range map[string]*ActionSpec{"action": s.Action, "on_overdue": s.OnOverdue} {
			if a != nil && a.WorkOrder != nil && !slices.Contains(ids, a.WorkOrder.Category) {
				return cfgerr.Errorf(fmt.Sprintf("steps[%d].%s.workorder.category", i, what), "%q is not under rules.categories; fix: one of %s", a.WorkOrder.Category, strings.Join(ids, ", "))
			}
		}
	}
	return nil
}
