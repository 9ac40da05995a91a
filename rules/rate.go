package rules

import (
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Rate alarms when the value changes faster than a limit per interval.
type Rate struct {
	pointCondition
	Per   time.Duration `yaml:"per"`   // default 1m
	Above *float64      `yaml:"above"` // rising faster than this per `per`
	Below *float64      `yaml:"below"` // falling: a negative limit, e.g. -0.1
}

var _ Condition = (*Rate)(nil)

func compileRate(r *Rule) (Condition, error) {
	rt := r.Rate
	if rt == nil {
		return nil, nil
	}
	if (rt.Above == nil) == (rt.Below == nil) {
		return nil, cfgerr.Errorf("rate", "set exactly one of above or below")
	}
	if rt.Per <= 0 {
		return nil, cfgerr.Errorf("rate.per", "must be positive")
	}
	return rt, nil
}

// Eval implements Condition: the change since the previous sample, scaled
// to Per. The first sample (and one not newer than the last) says nothing.
func (rt *Rate) Eval(p *collectors.Point, active bool, _ time.Time, m *Memory) (cond, ok bool) {
	if p.Quality != collectors.QualityGood {
		return false, false
	}
	v, isNum := p.Value.AsFloat()
	if !isNum {
		return false, false
	}
	if m.PrevAt.IsZero() || !p.Time.After(m.PrevAt) {
		m.Prev, m.PrevAt = v, p.Time
		return active, false
	}
	rate := (v - m.Prev) / float64(p.Time.Sub(m.PrevAt)) * float64(rt.Per)
	m.Prev, m.PrevAt = v, p.Time
	if rt.Above != nil {
		return rate > *rt.Above, true
	}
	return rate < *rt.Below, true
}
