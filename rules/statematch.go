package rules

import (
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// StateMatch (`state:` in a rule) alarms when the field equals a value (a
// leak is wet, a breaker tripped).
type StateMatch struct {
	pointCondition
	Equals any `yaml:"equals"` // bool, number or string
}

var _ Condition = (*StateMatch)(nil)

func compileStateMatch(r *Rule) (Condition, error) {
	s := r.State
	if s == nil {
		return nil, nil
	}
	switch s.Equals.(type) {
	case bool, int, float64, string:
		return s, nil
	}
	return nil, cfgerr.Errorf("state.equals", "must be a boolean, number or string")
}

// Eval implements Condition.
func (s *StateMatch) Eval(p *collectors.Point, _ bool, _ time.Time, _ *Memory) (cond, ok bool) {
	if p.Quality != collectors.QualityGood {
		return false, false
	}
	switch want := s.Equals.(type) {
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
	return false, false
}
