package rules

import (
	"time"

	"github.com/propgate/gateway/collectors"
)

// NoData (`no_data:` in a rule) alarms when the field has not had a good
// reading for a while; a good reading clears it.
type NoData struct {
	After time.Duration
}

var _ Condition = (*NoData)(nil)

func compileNoData(r *Rule) (Condition, error) {
	if r.NoData <= 0 {
		return nil, nil
	}
	return &NoData{After: r.NoData}, nil
}

// Eval implements Condition: any good point means data is flowing.
func (n *NoData) Eval(p *collectors.Point, _ bool, now time.Time, m *Memory) (cond, ok bool) {
	if p.Quality != collectors.QualityGood {
		return false, false
	}
	m.LastSeen = now
	return false, true
}

// Elapsed implements Condition.
func (n *NoData) Elapsed(now time.Time, m *Memory) (collectors.Value, bool) {
	if now.Sub(m.LastSeen) > n.After {
		return collectors.String("no data since " + m.LastSeen.Format(time.RFC3339)), true
	}
	return collectors.Value{}, false
}
