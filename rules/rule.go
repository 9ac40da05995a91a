// Package rules turns readings into alarms with an ISA-18.2 lifecycle,
// opens and tracks work orders against SLAs, and keeps both in an embedded
// database so they survive a crash.
package rules

import (
	"fmt"
	"math"
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

func (p Priority) valid() bool { return p == Critical || p == High || p == Medium || p == Low }

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

// Threshold alarms when the value crosses a limit; it clears only once the
// value is back past the limit by the deadband.
type Threshold struct {
	Above    *float64 `yaml:"above"`
	Below    *float64 `yaml:"below"`
	Deadband float64  `yaml:"deadband"`
}

// State alarms when the field equals a value (a leak is wet, a breaker tripped).
type State struct {
	Equals any `yaml:"equals"` // bool, number or string
}

// Rate alarms when the value changes faster than a limit per interval.
type Rate struct {
	Per   time.Duration `yaml:"per"`   // default 1m
	Above *float64      `yaml:"above"` // rising faster than this per `per`
	Below *float64      `yaml:"below"` // falling: a negative limit, e.g. -0.1
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
	ID           string         `yaml:"id"`
	Name         string         `yaml:"name"`
	NameZH       string         `yaml:"name_zh"` // shown to Chinese screens and in the Chinese half of messages
	Target       Target         `yaml:"target"`
	Field        string         `yaml:"field"`
	Threshold    *Threshold     `yaml:"threshold"`
	State        *State         `yaml:"state"`
	Rate         *Rate          `yaml:"rate"`
	NoData       time.Duration  `yaml:"no_data"` // alarm when the field has not been updated for this long
	OnDelay      time.Duration  `yaml:"on_delay"`
	OffDelay     time.Duration  `yaml:"off_delay"`
	Priority     Priority       `yaml:"priority"`
	Category     string         `yaml:"category"`
	Instructions string         `yaml:"instructions"`
	SuppressedBy []Suppression  `yaml:"suppressed_by"`
	WorkOrder    *WorkOrderSpec `yaml:"workorder"`
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
	kinds := 0
	for _, set := range []bool{r.Threshold != nil, r.State != nil, r.Rate != nil, r.NoData > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return cfgerr.Errorf("", "a rule needs exactly one of threshold, state, rate or no_data (it has %d)", kinds)
	}
	if r.Field == "" {
		return cfgerr.Errorf("field", "is required; fix: the field the rule watches, e.g. outlet_pressure")
	}
	if t := r.Threshold; t != nil {
		if (t.Above == nil) == (t.Below == nil) {
			return cfgerr.Errorf("threshold", "set exactly one of above or below")
		}
		if t.Deadband < 0 || math.IsNaN(t.Deadband) {
			return cfgerr.Errorf("threshold.deadband", "must be zero or positive")
		}
	}
	if s := r.State; s != nil {
		switch s.Equals.(type) {
		case bool, int, float64, string:
		default:
			return cfgerr.Errorf("state.equals", "must be a boolean, number or string")
		}
	}
	if rt := r.Rate; rt != nil {
		if (rt.Above == nil) == (rt.Below == nil) {
			return cfgerr.Errorf("rate", "set exactly one of above or below")
		}
		if rt.Per <= 0 {
			return cfgerr.Errorf("rate.per", "must be positive")
		}
	}
	if r.OnDelay < 0 || r.OffDelay < 0 {
		return cfgerr.Errorf("on_delay", "delays must not be negative")
	}
	if !r.Priority.valid() {
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
		if !w.Priority.valid() {
			return cfgerr.Errorf("workorder.priority", "%q is not a priority", w.Priority)
		}
	}
	return nil
}

// sample is the last value seen, for rates.
type sample struct {
	v  float64
	at time.Time
}

// evaluate says whether a point puts the rule in alarm. active is the
// current condition, for the deadband; ok is false when the point says
// nothing (bad quality, wrong type, first sample of a rate).
func (r *Rule) evaluate(p *collectors.Point, active bool, prev *sample) (cond, ok bool) {
	if p.Quality != collectors.QualityGood {
		return false, false
	}
	switch {
	case r.Threshold != nil:
		v, isNum := p.Value.AsFloat()
		if !isNum {
			return false, false
		}
		t := r.Threshold
		if t.Above != nil {
			if active {
				return v > *t.Above-t.Deadband, true
			}
			return v > *t.Above, true
		}
		if active {
			return v < *t.Below+t.Deadband, true
		}
		return v < *t.Below, true
	case r.State != nil:
		switch want := r.State.Equals.(type) {
		case bool:
			return p.Value.Type == collectors.ValueBool && p.Value.B == want, true
		case string:
			return p.Value.Type == collectors.ValueString && p.Value.S == want, true
		case int:
			v, isNum := p.Value.AsFloat()
			return isNum && v == float64(want), isNum
		case float64:
			v, isNum := p.Value.AsFloat()
			return isNum && v == want, isNum
		}
	case r.Rate != nil:
		v, isNum := p.Value.AsFloat()
		if !isNum {
			return false, false
		}
		if prev.at.IsZero() || !p.Time.After(prev.at) {
			*prev = sample{v, p.Time}
			return active, false
		}
		rate := (v - prev.v) / float64(p.Time.Sub(prev.at)) * float64(r.Rate.Per)
		*prev = sample{v, p.Time}
		if r.Rate.Above != nil {
			return rate > *r.Rate.Above, true
		}
		return rate < *r.Rate.Below, true
	}
	return false, false
}
