package rules

import (
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Condition decides, for one rule on one asset, whether the alarm
// condition holds. A new rule kind is one type implementing it, in one
// file, plus a line in conditionKinds.
type Condition interface {
	// Eval looks at one point of the rule's field. active is the current
	// condition (for deadbands); ok is false when the point says nothing
	// (bad quality, wrong type, first sample of a rate).
	Eval(p *collectors.Point, active bool, now time.Time, m *Memory) (cond, ok bool)
	// Elapsed is asked on every tick: whether the passing of time alone
	// puts the rule in alarm (no data), with the value to record; ok is
	// false when time alone says nothing.
	Elapsed(now time.Time, m *Memory) (value collectors.Value, ok bool)
}

// Memory is what a condition keeps between evaluations of one rule on one
// asset.
type Memory struct {
	Prev     float64   // last value, for rates
	PrevAt   time.Time // its time (zero: no sample yet)
	LastSeen time.Time // when a good point last arrived, for no_data
}

// conditionKinds compiles a rule's kind field into its Condition; each
// returns nil when its field is not set.
var conditionKinds = []func(r *Rule) (Condition, error){
	compileThreshold,
	compileStateMatch,
	compileRate,
	compileNoData,
}

// compileCondition returns the rule's one condition, or the error of the
// kind that is set but wrong; kindErr says the rule does not have exactly
// one kind (checked before anything else about the rule).
func compileCondition(r *Rule) (c Condition, kindErr, err error) {
	n := 0
	for _, compile := range conditionKinds {
		ci, ei := compile(r)
		if ci == nil && ei == nil {
			continue
		}
		n++
		c, err = ci, ei
	}
	if n != 1 {
		return nil, cfgerr.Errorf("", "a rule needs exactly one of threshold, state, rate or no_data (it has %d)", n), nil
	}
	return c, nil, err
}

// pointCondition is embedded by kinds that time alone never triggers.
type pointCondition struct{}

func (pointCondition) Elapsed(time.Time, *Memory) (collectors.Value, bool) {
	return collectors.Value{}, false
}
