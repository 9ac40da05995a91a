// Package maintenance runs the preventive-maintenance plans (维保计划): by
// calendar (lifts every 15 days as the national lift rule asks, water tanks
// twice a year, monthly fire tests) and by running hours (pump service every
// N run_hours, read from telemetry). Each due item opens one PM work order
// ahead of time through the work-order service; done and overdue are read
// from the work order, and the counts feed the monthly report.
package maintenance

import (
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
)

// RunHours is a plan by running hours.
type RunHours struct {
	Field string             `yaml:"field"`        // the assets' hour meter; default run_hours
	Every float64            `yaml:"every"`        // service interval, hours
	Lead  float64            `yaml:"lead"`         // open the work order this many hours before; default 0
	Last  map[string]float64 `yaml:"last_service"` // per asset: the meter at the last service; default: the last multiple of every
}

// Plan is one maintenance plan over some assets.
type Plan struct {
	ID       string         `yaml:"id" json:"id"`
	Name     string         `yaml:"name" json:"name"`
	Assets   []string       `yaml:"assets" json:"assets"`
	Category string         `yaml:"category" json:"category"` // work orders; default maintenance
	Priority rules.Priority `yaml:"priority" json:"priority"` // default low
	// By calendar: a cron schedule in the site's time zone, or every N days
	// from a start date.
	Schedule  string        `yaml:"schedule" json:"schedule,omitempty"`
	EveryDays int           `yaml:"every_days" json:"every_days,omitempty"`
	Start     string        `yaml:"start" json:"start,omitempty"` // YYYY-MM-DD, with every_days
	Lead      time.Duration `yaml:"lead" json:"lead"`             // calendar: open the work order this long before; default 72h
	// By running hours.
	RunHours *RunHours `yaml:"run_hours" json:"run_hours,omitempty"`
	Notes    string    `yaml:"notes" json:"notes,omitempty"` // what the work includes, the rule it follows

	sched cron.Schedule
}

// Config is the maintenance: section.
type Config struct {
	TimeZone string `yaml:"time_zone"` // default Asia/Shanghai
	Plans    []Plan `yaml:"plans"`

	loc *time.Location
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Shanghai"
	}
	for i := range c.Plans {
		p := &c.Plans[i]
		if p.Category == "" {
			p.Category = "maintenance"
		}
		if p.Priority == "" {
			p.Priority = rules.Low
		}
		if p.Lead == 0 && p.RunHours == nil {
			p.Lead = 72 * time.Hour
		}
		if p.RunHours != nil && p.RunHours.Field == "" {
			p.RunHours.Field = "run_hours"
		}
	}
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// everyDays is a schedule every n days from start (09:00 local).
type everyDays struct {
	start time.Time
	n     int
}

func (e everyDays) Next(t time.Time) time.Time {
	if t.Before(e.start) {
		return e.start
	}
	k := int(t.Sub(e.start).Hours()/24)/e.n + 1
	for {
		d := e.start.AddDate(0, 0, k*e.n)
		if d.After(t) {
			return d
		}
		k++
	}
}

// Validate checks the section; known reports whether an asset is declared.
func (c *Config) Validate(known func(string) bool) error {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return cfgerr.Errorf("time_zone", "%q is not a time zone; fix: e.g. Asia/Shanghai", c.TimeZone)
	}
	c.loc = loc
	ids := map[string]int{}
	for i := range c.Plans {
		p := &c.Plans[i]
		path := fmt.Sprintf("plans[%d]", i)
		if !idRE.MatchString(p.ID) {
			return cfgerr.Errorf(path+".id", "%q is not a plan id; fix: lower-case letters, digits, '_' or '-', e.g. lift-15-day", p.ID)
		}
		if j, dup := ids[p.ID]; dup {
			return cfgerr.Errorf(path+".id", "%q is already used by plans[%d]", p.ID, j)
		}
		ids[p.ID] = i
		if p.Name == "" {
			return cfgerr.Errorf(path+".name", "is required; fix: e.g. 电梯半月保养 Lift maintenance every 15 days")
		}
		if len(p.Assets) == 0 {
			return cfgerr.Errorf(path+".assets", "list the assets the plan covers")
		}
		for j, a := range p.Assets {
			if !known(a) {
				return cfgerr.Errorf(fmt.Sprintf("%s.assets[%d]", path, j), "%q is not declared under assets:", a)
			}
		}
		if !p.Priority.Valid() {
			return cfgerr.Errorf(path+".priority", "%q is not a priority; fix: critical, high, medium or low", p.Priority)
		}
		kinds := 0
		if p.Schedule != "" {
			kinds++
		}
		if p.EveryDays != 0 {
			kinds++
		}
		if p.RunHours != nil {
			kinds++
		}
		if kinds != 1 {
			return cfgerr.Errorf(path, "set exactly one of schedule (cron), every_days (with start) or run_hours")
		}
		switch {
		case p.Schedule != "":
			s, err := cron.ParseStandard("CRON_TZ=" + c.TimeZone + " " + p.Schedule)
			if err != nil {
				return cfgerr.Errorf(path+".schedule", "%q is not a schedule; fix: cron minute hour day month weekday, e.g. \"0 9 1 * *\" (the 1st of each month, 09:00)", p.Schedule)
			}
			p.sched = s
		case p.EveryDays != 0:
			start, err := time.ParseInLocation(time.DateOnly, p.Start, loc)
			if err != nil {
				return cfgerr.Errorf(path+".start", "%q is not a date; fix: the first due day, YYYY-MM-DD", p.Start)
			}
			if p.EveryDays < 1 || p.EveryDays > 3660 {
				return cfgerr.Errorf(path+".every_days", "%d is out of range; fix: 1 to 3660", p.EveryDays)
			}
			p.sched = everyDays{start: start.Add(9 * time.Hour), n: p.EveryDays}
		default:
			rh := p.RunHours
			if !(rh.Every > 0) || math.IsInf(rh.Every, 0) {
				return cfgerr.Errorf(path+".run_hours.every", "must be a positive number of hours, e.g. 2000")
			}
			if rh.Lead < 0 || rh.Lead >= rh.Every {
				return cfgerr.Errorf(path+".run_hours.lead", "must be at least 0 and less than every")
			}
			for a := range rh.Last {
				if !known(a) {
					return cfgerr.Errorf(path+".run_hours.last_service", "%q is not declared under assets:", a)
				}
			}
		}
		if p.Lead < 0 {
			return cfgerr.Errorf(path+".lead", "must not be negative")
		}
	}
	return nil
}

func (c *Config) schedule(p *Plan) cron.Schedule {
	if p.sched != nil {
		return p.sched
	}
	if p.Schedule != "" {
		if s, err := cron.ParseStandard("CRON_TZ=" + c.TimeZone + " " + p.Schedule); err == nil {
			return s
		}
	}
	if p.EveryDays > 0 {
		loc := c.loc
		if loc == nil {
			loc = time.Local
		}
		if start, err := time.ParseInLocation(time.DateOnly, p.Start, loc); err == nil {
			return everyDays{start: start.Add(9 * time.Hour), n: p.EveryDays}
		}
	}
	return nil
}
