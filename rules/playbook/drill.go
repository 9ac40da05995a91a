package playbook

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/propgate/gateway/internal/cfgerr"
)

// DrillSchedule (`drill:` in a playbook) has the runner start the plan as a
// drill on a calendar: every six months, per 002/003 (演练每半年一次), at a
// time of day. A drill never touches equipment, and its work orders never
// count in the KPIs.
type DrillSchedule struct {
	Every  Interval `yaml:"every"`  // 6mo, 1y, 90d, 72h
	At     string   `yaml:"at"`     // time of day, "10:00" (default), in the gateway's time zone
	Notify []string `yaml:"notify"` // roles reminded when it starts; default the plan's first step's role
}

// Interval is a calendar interval: months and days count on the calendar
// (6mo after 31 August is the last day of February's neighbour, as
// time.AddDate does), hours as a duration.
type Interval struct {
	Months, Days int
	Dur          time.Duration
}

var intervalRE = regexp.MustCompile(`^(\d+)(mo|y|d|w)$`)

// UnmarshalYAML reads "6mo", "1y", "2w", "90d" or a Go duration ("72h").
func (iv *Interval) UnmarshalYAML(n *yaml.Node) error {
	p, err := ParseInterval(n.Value)
	if err != nil {
		return err
	}
	*iv = p
	return nil
}

// MarshalText shows the interval as written.
func (iv Interval) MarshalText() ([]byte, error) { return []byte(iv.String()), nil }

func (iv Interval) String() string {
	switch {
	case iv.Months%12 == 0 && iv.Months > 0 && iv.Days == 0 && iv.Dur == 0:
		return strconv.Itoa(iv.Months/12) + "y"
	case iv.Months > 0 && iv.Days == 0 && iv.Dur == 0:
		return strconv.Itoa(iv.Months) + "mo"
	case iv.Days > 0 && iv.Months == 0 && iv.Dur == 0:
		return strconv.Itoa(iv.Days) + "d"
	}
	return iv.Dur.String()
}

// ParseInterval reads "6mo", "1y", "2w", "90d" or a Go duration.
func ParseInterval(s string) (Interval, error) {
	s = strings.TrimSpace(s)
	if m := intervalRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		switch m[2] {
		case "mo":
			return Interval{Months: n}, nil
		case "y":
			return Interval{Months: 12 * n}, nil
		case "w":
			return Interval{Days: 7 * n}, nil
		default:
			return Interval{Days: n}, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Interval{}, fmt.Errorf("%q is not an interval; fix: 6mo, 1y, 2w, 90d or 72h", s)
	}
	return Interval{Dur: d}, nil
}

// After is t plus the interval.
func (iv Interval) After(t time.Time) time.Time { return t.AddDate(0, iv.Months, iv.Days).Add(iv.Dur) }

func (iv Interval) zero() bool { return iv.Months <= 0 && iv.Days <= 0 && iv.Dur <= 0 }

// clock is the schedule's time of day.
func (d *DrillSchedule) clock() (h, m int, err error) {
	at := d.At
	if at == "" {
		at = "10:00"
	}
	t, err := time.Parse("15:04", at)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a time of day; fix: 10:00", d.At)
	}
	return t.Hour(), t.Minute(), nil
}

func (d *DrillSchedule) validate() error {
	if d.Every.zero() {
		return cfgerr.Errorf("drill.every", "is required: how often the plan is drilled, e.g. 6mo")
	}
	if _, _, err := d.clock(); err != nil {
		return cfgerr.Errorf("drill.at", "%s", err)
	}
	return nil
}

// next is when the next drill is due: the interval after the last one (or
// at once when none is on record: the standard asks for one), at the
// schedule's time of day.
func (d *DrillSchedule) next(last, now time.Time) time.Time {
	h, m, _ := d.clock()
	base := now
	if !last.IsZero() {
		base = d.Every.After(last)
	}
	base = base.In(now.Location())
	due := time.Date(base.Year(), base.Month(), base.Day(), h, m, 0, 0, base.Location())
	if due.Before(base) && last.IsZero() {
		due = due.AddDate(0, 0, 1) // none on record: the next time the clock comes round
	}
	return due
}

// PlaybookInfo is a definition with its drill record, as the API lists it.
type PlaybookInfo struct {
	Playbook
	LastDrill *time.Time `json:"last_drill,omitempty"`
	NextDrill *time.Time `json:"next_drill,omitempty"`
}

// scheduleDrills starts the drills that are due (runner lock held).
func (r *Runner) scheduleDrills(now time.Time) {
	for _, p := range r.list {
		if p.Drill == nil || now.Before(p.Drill.next(r.lastDrill[p.ID], r.since)) {
			continue
		}
		in, err := r.startLocked(p, "", true, ByEngine, fmt.Sprintf("scheduled drill (every %s)", p.Drill.Every), 0, nil)
		if err != nil {
			r.log.Error("scheduled drill failed", "playbook", p.ID, "err", err)
			continue
		}
		roles := p.Drill.Notify
		if len(roles) == 0 && len(p.Steps) > 0 {
			roles = []string{p.Steps[0].Role}
		}
		r.notify(Notification{At: now, Roles: roles, Incident: in.ID, Drill: true,
			Text: fmt.Sprintf("演练开始 DRILL starts now: %s (incident %d); every %s", p.Name, in.ID, p.Drill.Every)})
	}
}
