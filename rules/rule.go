package rules

import (
	"fmt"
	"regexp"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Priority of an alarm or work order.
type Priority string

// Priorities, most urgent first.
const (
	Critical Priority = "critical"
	High     Priority = "high"
	Medium   Priority = "medium"
	Low      Priority = "low"
)

// Rank orders priorities: 0 is the most urgent (critical), 4 unknown.
func (p Priority) Rank() int {
	switch p {
	case Critical:
		return 0
	case High:
		return 1
	case Medium:
		return 2
	case Low:
		return 3
	}
	return 4
}

// Valid reports whether p is a known priority.
func (p Priority) Valid() bool { return p == Critical || p == High || p == Medium || p == Low }

// Target selects the assets a rule applies to; set fields must all match.
type Target struct {
	Asset    string `yaml:"asset"`
	Kind     string `yaml:"kind"`
	Building string `yaml:"building"`
	Floor    string `yaml:"floor"`
}

func (t Target) matches(a collectors.Asset) bool {
	return (t.Asset == "" || t.Asset == a.ID) && (t.Kind == "" || t.Kind == string(a.Kind)) &&
		(t.Building == "" || t.Building == a.Building) && (t.Floor == "" || t.Floor == a.Floor)
}

// Suppression puts the alarm in "suppressed" while another rule's alarm is
// active on an asset in the same scope (suppression by design: low outlet
// pressure during a known power outage).
type Suppression struct {
	Rule  string `yaml:"rule"`
	Scope string `yaml:"scope"` // building (default), site or asset
}

// WorkOrderSpec opens a work order when the alarm fires.
type WorkOrderSpec struct {
	Category string   `yaml:"category"`
	Priority Priority `yaml:"priority"` // default: the rule's priority
}

// Rule is one alarm definition.
type Rule struct {
	ID             string         `yaml:"id"`
	Name           string         `yaml:"name"`
	NameZH         string         `yaml:"name_zh"` // shown to Chinese screens and in the Chinese half of messages
	Target         Target         `yaml:"target"`
	Field          string         `yaml:"field"`
	Threshold      *Threshold     `yaml:"threshold"`
	State          *StateMatch    `yaml:"state"`
	Rate           *Rate          `yaml:"rate"`
	NoData         time.Duration  `yaml:"no_data"` // alarm when the field has not been updated for this long
	OnDelay        time.Duration  `yaml:"on_delay"`
	OffDelay       time.Duration  `yaml:"off_delay"`
	Priority       Priority       `yaml:"priority"`
	Category       string         `yaml:"category"`
	Instructions   string         `yaml:"instructions"`
	InstructionsZH string         `yaml:"instructions_zh"` // the Chinese screens and messages show it
	SuppressedBy   []Suppression  `yaml:"suppressed_by"`
	WorkOrder      *WorkOrderSpec `yaml:"workorder"`
	// Fault marks an alarm that means the device itself is faulty (comm
	// lost, a controller fault code, a silent sensor), not a process
	// condition it reports: it counts against equipment in good order.
	Fault bool `yaml:"fault"`

	cond Condition // compiled from the kind's field by Validate
}

var ruleIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// SetDefaults fills unset values.
func (r *Rule) SetDefaults() {
	if r.Priority == "" {
		r.Priority = Medium
	}
	if r.Rate != nil && r.Rate.Per == 0 {
		r.Rate.Per = time.Minute
	}
	for i := range r.SuppressedBy {
		if r.SuppressedBy[i].Scope == "" {
			r.SuppressedBy[i].Scope = "building"
		}
	}
	if r.WorkOrder != nil && r.WorkOrder.Priority == "" {
		r.WorkOrder.Priority = r.Priority
	}
	if r.Name == "" {
		r.Name = r.ID
	}
}

// Validate checks one rule; paths are relative to the rule.
func (r *Rule) Validate() error {
	if !ruleIDRE.MatchString(r.ID) {
		return cfgerr.Errorf("id", "%q is not a rule id; fix: lower-case letters, digits, '.', '_' or '-', e.g. pump-low-pressure", r.ID)
	}
	if r.Target == (Target{}) {
		return cfgerr.Errorf("target", "is required; fix: asset, kind, building and/or floor")
	}
	cond, kindErr, err := compileCondition(r)
	if kindErr != nil {
		return kindErr
	}
	if r.Field == "" {
		return cfgerr.Errorf("field", "is required; fix: the field the rule watches, e.g. outlet_pressure")
	}
	if err != nil {
		return err
	}
	r.cond = cond
	if r.OnDelay < 0 || r.OffDelay < 0 {
		return cfgerr.Errorf("on_delay", "delays must not be negative")
	}
	if !r.Priority.Valid() {
		return cfgerr.Errorf("priority", "%q is not a priority; fix: critical, high, medium or low", r.Priority)
	}
	for i, s := range r.SuppressedBy {
		if s.Scope != "building" && s.Scope != "site" && s.Scope != "asset" {
			return cfgerr.Errorf(fmt.Sprintf("suppressed_by[%d].scope", i), "%q is not a scope; fix: building, site or asset", s.Scope)
		}
	}
	if w := r.WorkOrder; w != nil {
		if w.Category == "" {
			return cfgerr.Errorf("workorder.category", "is required; fix: e.g. plumbing, electrical, elevator")
		}
		if !w.Priority.Valid() {
			return cfgerr.Errorf("workorder.priority", "%q is not a priority", w.Priority)
		}
	}
	return nil
}

// Condition is the rule's compiled condition (nil before Validate).
func (r *Rule) Condition() Condition { return r.cond }
