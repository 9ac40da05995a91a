package rules

import (
	"math"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Threshold alarms when the value crosses a limit; it clears only once the
// value is back past the limit by the deadband. With below, floor is where
// the rule stops applying: a value under it is normal (a reminder counting
// days down to a date clears once the date has passed).
type Threshold struct {
	pointCondition
	Above    *float64 `yaml:"above"`
	Below    *float64 `yaml:"below"`
	Floor    *float64 `yaml:"floor"`
	Deadband float64  `yaml:"deadband"`
}

var _ Condition = (*Threshold)(nil)

func compileThreshold(r *Rule) (Condition, error) {
	t := r.Threshold
	if t == nil {
		return nil, nil
	}
	if (t.Above == nil) == (t.Below == nil) {
		return nil, cfgerr.Errorf("threshold", "set exactly one of above or below")
	}
	if t.Floor != nil && (t.Below == nil || !(*t.Floor < *t.Below)) {
		return nil, cfgerr.Errorf("threshold.floor", "goes with below and must be under it; fix: e.g. below: 31, floor: 0 (a reminder that ends on the day)")
	}
	if t.Deadband < 0 || math.IsNaN(t.Deadband) {
		return nil, cfgerr.Errorf("threshold.deadband", "must be zero or positive")
	}
	return t, nil
}

// Eval implements Condition.
func (t *Threshold) Eval(p *collectors.Point, active bool, _ time.Time, _ *Memory) (cond, ok bool) {
	if p.Quality != collectors.QualityGood {
		return false, false
	}
	v, isNum := p.Value.AsFloat()
	if !isNum {
		return false, false
	}
	if t.Above != nil {
		if active {
			return v > *t.Above-t.Deadband, true
		}
		return v > *t.Above, true
	}
	if t.Floor != nil && v < *t.Floor {
		return false, true
	}
	if active {
		return v < *t.Below+t.Deadband, true
	}
	return v < *t.Below, true
}
