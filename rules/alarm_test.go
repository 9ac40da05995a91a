package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
)

func f64(v float64) *float64 { return &v }

// step is one thing that happens to an alarm at a time offset (seconds).
type step struct {
	at    float64
	do    string  // "value", "tick", "ack", "shelve", "unshelve", "oos", "ins", "suppress", "unsuppress"
	value float64 // for "value"; minutes for "shelve"
	want  AlarmState
	err   error
}

func run(t *testing.T, r *Rule, steps []step) []Transition {
	t.Helper()
	r.SetDefaults()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	a := &Alarm{ID: "a", Rule: r.ID, State: StateNormal, Acked: true}
	var all []Transition
	var mem Memory
	for i, s := range steps {
		now := t0.Add(time.Duration(s.at * float64(time.Second)))
		var tr []Transition
		var err error
		switch s.do {
		case "value":
			p := collectors.Point{Value: collectors.Float(s.value), Quality: collectors.QualityGood, Time: now}
			cond, ok := r.Condition().Eval(&p, a.Active, now, &mem)
			if ok {
				tr = a.Observe(cond, collectors.Float(s.value), now, r)
			}
		case "tick":
			tr = a.Tick(now, r)
		case "ack":
			tr, err = a.Ack(now, "wang.li", "on my way")
		case "shelve":
			tr, err = a.Shelve(now, now.Add(time.Duration(s.value)*time.Minute), "wang.li", "sensor being replaced")
		case "unshelve":
			tr, err = a.Unshelve(now, "wang.li", "")
		case "oos":
			tr = a.SetOutOfService(true, now, "wang.li", "work order open")
		case "ins":
			tr = a.SetOutOfService(false, now, "wang.li", "")
		case "suppress":
			tr = a.SetSuppressed(true, now, "mains lost")
		case "unsuppress":
			tr = a.SetSuppressed(false, now, "mains back")
		default:
			t.Fatalf("unknown step %q", s.do)
		}
		if err != s.err {
			t.Fatalf("step %d (%s at %gs): err %v, want %v", i, s.do, s.at, err, s.err)
		}
		if a.State != s.want {
			t.Fatalf("step %d (%s %g at %gs): state %s, want %s", i, s.do, s.value, s.at, a.State, s.want)
		}
		all = append(all, tr...)
	}
	return all
}

func path(tr []Transition) string {
	var b strings.Builder
	for _, t := range tr {
		fmt.Fprintf(&b, "%s>%s@%d/%s ", t.From, t.To, t.At.Unix()-1_700_000_000, t.By)
	}
	return strings.TrimSpace(b.String())
}

func lowPressure() *Rule {
	return &Rule{ID: "pump-low-pressure", Target: Target{Kind: "pump_room"}, Field: "outlet_pressure",
		Threshold: &Threshold{Below: f64(0.15), Deadband: 0.02}, Priority: High}
}

func TestAlarmLifecycle(t *testing.T) {
	cases := []struct {
		name  string
		rule  *Rule
		steps []step
		path  string
	}{
		{"full ISA-18.2 cycle: ack while active, then clear", lowPressure(), []step{
			{0, "value", 0.30, StateNormal, nil},
			{1, "value", 0.10, StateUnacked, nil},
			{2, "ack", 0, StateAcked, nil},
			{3, "value", 0.30, StateNormal, nil},
		}, "normal>unacknowledged@1/engine unacknowledged>acknowledged@2/wang.li acknowledged>normal@3/engine"},
		{"returns to normal unacknowledged, then ack", lowPressure(), []step{
			{1, "value", 0.10, StateUnacked, nil},
			{2, "value", 0.30, StateRTNUnacked, nil},
			{3, "ack", 0, StateNormal, nil},
		}, "normal>unacknowledged@1/engine unacknowledged>returned_unacknowledged@2/engine returned_unacknowledged>normal@3/wang.li"},
		{"returned unacknowledged re-alarms", lowPressure(), []step{
			{1, "value", 0.10, StateUnacked, nil},
			{2, "value", 0.30, StateRTNUnacked, nil},
			{3, "value", 0.10, StateUnacked, nil},
		}, "normal>unacknowledged@1/engine unacknowledged>returned_unacknowledged@2/engine returned_unacknowledged>unacknowledged@3/engine"},
		{"ack with nothing to acknowledge", lowPressure(), []step{
			{1, "ack", 0, StateNormal, ErrNothingToAck},
			{2, "value", 0.10, StateUnacked, nil},
			{3, "ack", 0, StateAcked, nil},
			{4, "ack", 0, StateAcked, ErrNothingToAck},
		}, "normal>unacknowledged@2/engine unacknowledged>acknowledged@3/wang.li"},
		{"deadband: 0.16 is not yet clear, 0.17 is", lowPressure(), []step{
			{1, "value", 0.14, StateUnacked, nil},
			{2, "ack", 0, StateAcked, nil},
			{3, "value", 0.16, StateAcked, nil},
			{4, "value", 0.1699, StateAcked, nil},
			{5, "value", 0.17, StateNormal, nil},
		}, "normal>unacknowledged@1/engine unacknowledged>acknowledged@2/wang.li acknowledged>normal@5/engine"},
		{"on-delay: must stay bad 10s; a blip does not alarm", withDelays(lowPressure(), 10, 0), []step{
			{0, "value", 0.10, StateNormal, nil},
			{5, "value", 0.30, StateNormal, nil}, // back before 10 s: no alarm
			{6, "value", 0.10, StateNormal, nil},
			{15, "tick", 0, StateNormal, nil},  // 9 s
			{16, "tick", 0, StateUnacked, nil}, // 10 s, no new reading needed
		}, "normal>unacknowledged@16/engine"},
		{"off-delay: must stay good 30s before it clears", withDelays(lowPressure(), 0, 30), []step{
			{0, "value", 0.10, StateUnacked, nil},
			{1, "ack", 0, StateAcked, nil},
			{10, "value", 0.30, StateAcked, nil},
			{20, "value", 0.10, StateAcked, nil}, // bad again: off-delay restarts
			{25, "value", 0.30, StateAcked, nil},
			{54, "tick", 0, StateAcked, nil},
			{55, "tick", 0, StateNormal, nil},
		}, "normal>unacknowledged@0/engine unacknowledged>acknowledged@1/wang.li acknowledged>normal@55/engine"},
		{"shelving hides the alarm and expires by itself", lowPressure(), []step{
			{1, "value", 0.10, StateUnacked, nil},
			{2, "shelve", 5, StateShelved, nil},
			{3, "shelve", 5, StateShelved, ErrAlreadyShelved},
			{300, "tick", 0, StateShelved, nil},
			{302, "tick", 0, StateUnacked, nil}, // 5 min after 2 s, still active: annunciates again
		}, "normal>unacknowledged@1/engine unacknowledged>shelved@2/wang.li shelved>unacknowledged@302/engine"},
		{"shelved alarm that cleared returns to normal", lowPressure(), []step{
			{1, "value", 0.10, StateUnacked, nil},
			{2, "shelve", 5, StateShelved, nil},
			{60, "value", 0.30, StateShelved, nil},
			{302, "tick", 0, StateNormal, nil},
		}, "normal>unacknowledged@1/engine unacknowledged>shelved@2/wang.li shelved>normal@302/engine"},
		{"unshelve by hand", lowPressure(), []step{
			{1, "unshelve", 0, StateNormal, ErrNotShelved},
			{2, "shelve", 60, StateShelved, nil},
			{3, "value", 0.10, StateShelved, nil},
			{4, "unshelve", 0, StateUnacked, nil},
		}, "normal>shelved@2/wang.li shelved>unacknowledged@4/wang.li"},
		{"out of service and back", lowPressure(), []step{
			{1, "value", 0.10, StateUnacked, nil},
			{2, "oos", 0, StateOutOfService, nil},
			{3, "value", 0.30, StateOutOfService, nil},
			{4, "value", 0.10, StateOutOfService, nil},
			{5, "ins", 0, StateUnacked, nil},
		}, "normal>unacknowledged@1/engine unacknowledged>out_of_service@2/wang.li out_of_service>unacknowledged@5/wang.li"},
		{"suppression by design: never annunciated if it clears first", lowPressure(), []step{
			{0, "suppress", 0, StateNormal, nil},
			{1, "value", 0.10, StateSuppressed, nil},
			{2, "value", 0.30, StateNormal, nil},
			{3, "unsuppress", 0, StateNormal, nil},
		}, "normal>suppressed@1/engine suppressed>normal@2/engine"},
		{"suppression lifted while still active annunciates", lowPressure(), []step{
			{1, "value", 0.10, StateUnacked, nil},
			{2, "suppress", 0, StateSuppressed, nil},
			{3, "unsuppress", 0, StateUnacked, nil},
		}, "normal>unacknowledged@1/engine unacknowledged>suppressed@2/engine suppressed>unacknowledged@3/engine"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := path(run(t, c.rule, c.steps)); got != c.path {
				t.Fatalf("transitions:\n got %s\nwant %s", got, c.path)
			}
		})
	}
}

func withDelays(r *Rule, on, off float64) *Rule {
	r.OnDelay = time.Duration(on * float64(time.Second))
	r.OffDelay = time.Duration(off * float64(time.Second))
	return r
}

func TestChatteringIsFlagged(t *testing.T) {
	r := lowPressure()
	steps := []step{}
	for i := 0; i < 3; i++ {
		steps = append(steps, step{float64(i * 10), "value", 0.10, StateUnacked, nil}, step{float64(i*10 + 5), "value", 0.30, StateRTNUnacked, nil})
	}
	tr := run(t, r, steps)
	var notes []string
	for _, x := range tr {
		if x.Note != "" {
			notes = append(notes, fmt.Sprintf("%d:%s", x.At.Unix()-1_700_000_000, x.Note[:10]))
		}
	}
	if fmt.Sprint(notes) != "[20:chattering]" {
		t.Fatalf("chattering notes %v, want the third activation flagged", notes)
	}
}

func TestRuleConditions(t *testing.T) {
	t0 := time.Unix(0, 0)
	pt := func(v collectors.Value, sec int) *collectors.Point {
		return &collectors.Point{Value: v, Quality: collectors.QualityGood, Time: t0.Add(time.Duration(sec) * time.Second)}
	}
	leak := &Rule{ID: "leak", Target: Target{Kind: "water_sensor"}, Field: "leak", State: &StateMatch{Equals: true}}
	rising := &Rule{ID: "sump-rising", Target: Target{Kind: "pump_room"}, Field: "sump_level", Rate: &Rate{Per: time.Minute, Above: f64(0.5)}}
	for _, r := range []*Rule{leak, rising} {
		r.SetDefaults()
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	var mem Memory
	eval := func(r *Rule, p *collectors.Point) (bool, bool) { return r.Condition().Eval(p, false, p.Time, &mem) }
	if c, ok := eval(leak, pt(collectors.Bool(true), 0)); !c || !ok {
		t.Error("wet leak sensor did not alarm")
	}
	if c, ok := eval(leak, pt(collectors.Float(1), 0)); c || !ok {
		t.Error("a number matched a boolean state")
	}
	bad := pt(collectors.Bool(true), 0)
	bad.Quality = collectors.QualityBad
	if _, ok := eval(leak, bad); ok {
		t.Error("a bad-quality point was evaluated")
	}
	if _, ok := eval(rising, pt(collectors.Float(1.0), 0)); ok {
		t.Error("first sample of a rate decided something")
	}
	if c, _ := eval(rising, pt(collectors.Float(1.2), 30)); c { // 0.4 per minute
		t.Error("0.4 m/min alarmed at 0.5")
	}
	if c, _ := eval(rising, pt(collectors.Float(1.6), 60)); !c { // 0.8 per minute
		t.Error("0.8 m/min did not alarm")
	}
}

// A threshold with a floor stops applying under it: a reminder counting
// days down (below 31) clears once the date has passed (floor 0).
func TestThresholdFloor(t *testing.T) {
	th := &Threshold{Below: f64(31), Floor: f64(0)}
	for _, c := range []struct {
		v    int64
		want bool
	}{{40, false}, {30, true}, {0, true}, {-1, false}, {-400, false}} {
		p := &collectors.Point{Value: collectors.Int(c.v), Quality: collectors.QualityGood}
		if got, ok := th.Eval(p, false, time.Time{}, nil); !ok || got != c.want {
			t.Errorf("%d days: %v %v, want %v", c.v, got, ok, c.want)
		}
	}
	r := &Rule{Threshold: &Threshold{Above: f64(1), Floor: f64(0)}}
	if _, err := compileThreshold(r); err == nil {
		t.Error("floor with above accepted")
	}
	r = &Rule{Threshold: &Threshold{Below: f64(1), Floor: f64(2)}}
	if _, err := compileThreshold(r); err == nil {
		t.Error("floor above below accepted")
	}
}
