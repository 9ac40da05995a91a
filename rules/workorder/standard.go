package workorder

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
)

// Category is one line of the maintenance time-limit table (公共设施维护时限表,
// 003): the kind of repair, and how long the person who accepted it (接单)
// has to finish it. Arrival, when set, is how soon an emergency of this
// kind must have someone on site (fire: 2 minutes).
type Category struct {
	ID         string        `yaml:"id" json:"id"`
	NameZH     string        `yaml:"name_zh" json:"name_zh"`
	Name       string        `yaml:"name" json:"name"`
	Resolution time.Duration `yaml:"resolution" json:"resolution"` // counted from acceptance
	Arrival    time.Duration `yaml:"arrival" json:"arrival,omitempty"`
}

var categoryIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Calendar says which days are working days: the weekend, public holidays
// and the make-up working days (调休) the State Council announces each year.
type Calendar struct {
	TimeZone string   `yaml:"time_zone"` // default Asia/Shanghai
	Weekend  []string `yaml:"weekend"`   // default saturday, sunday
	Holidays []string `yaml:"holidays"`  // 2026-10-01 …
	Workdays []string `yaml:"workdays"`  // make-up working days on a weekend

	loc      *time.Location
	weekend  map[time.Weekday]bool
	holidays map[string]bool
	workdays map[string]bool
}

var weekdays = map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}

// SetDefaults fills unset values.
func (c *Calendar) SetDefaults() {
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Shanghai"
	}
	if c.Weekend == nil {
		c.Weekend = []string{"saturday", "sunday"}
	}
}

// Validate checks the calendar and prepares it for use.
func (c *Calendar) Validate() error {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return cfgerr.Errorf("time_zone", "%q is not a time zone: %v; fix: e.g. Asia/Shanghai", c.TimeZone, err)
	}
	c.loc, c.weekend, c.holidays, c.workdays = loc, map[time.Weekday]bool{}, map[string]bool{}, map[string]bool{}
	for i, d := range c.Weekend {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return cfgerr.Errorf(fmt.Sprintf("weekend[%d]", i), "%q is not a day of the week; fix: e.g. saturday", d)
		}
		c.weekend[wd] = true
	}
	for name, list := range map[string][]string{"holidays": c.Holidays, "workdays": c.Workdays} {
		for i, d := range list {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return cfgerr.Errorf(fmt.Sprintf("%s[%d]", name, i), "%q is not a date; fix: YYYY-MM-DD, e.g. 2026-10-01", d)
			}
			if name == "holidays" {
				c.holidays[d] = true
			} else {
				c.workdays[d] = true
			}
		}
	}
	return nil
}

func (c *Calendar) ready() {
	if c.loc == nil {
		c.SetDefaults()
		if err := c.Validate(); err != nil { // defaults only: cannot fail but for a broken tzdata
			c.loc = time.UTC
		}
	}
}

// Location is the calendar's time zone.
func (c *Calendar) Location() *time.Location { c.ready(); return c.loc }

// WorkingDay reports whether t's date is a working day.
func (c *Calendar) WorkingDay(t time.Time) bool {
	c.ready()
	d := t.In(c.loc).Format(time.DateOnly)
	if c.workdays[d] {
		return true
	}
	return !c.holidays[d] && !c.weekend[t.In(c.loc).Weekday()]
}

// AddWorkingDays is t moved on by n working days: the same clock time on
// the n-th working day after t's date (a Friday afternoon's call-back is
// due on Monday afternoon, or after the holiday).
func (c *Calendar) AddWorkingDays(t time.Time, n int) time.Time {
	c.ready()
	d := t.In(c.loc)
	for i := 0; i < 400 && n > 0; i++ { // a year of holidays at most
		d = d.AddDate(0, 0, 1)
		if c.WorkingDay(d) {
			n--
		}
	}
	return d
}

// CallbackConfig sets the call-back deadlines (003): one working day after
// a repair is finished, three days after a re-repair.
type CallbackConfig struct {
	WorkingDays  int           `yaml:"working_days"`   // default 1
	AfterRework  time.Duration `yaml:"after_rework"`   // default 72h
	ReopenOnFail *bool         `yaml:"reopen_on_fail"` // 不满意 reopens the order; default true
}

// Targets are the figures the site is judged by (002, 003).
type Targets struct {
	Handling  float64       `yaml:"handling"`   // 处理率, default 1.0
	Callback  float64       `yaml:"callback"`   // 回访率, default 0.95
	GoodOrder float64       `yaml:"good_order"` // 设备完好率, default 0.98
	OnSite    time.Duration `yaml:"on_site"`    // emergency team on site, default 3m
	OnTime    float64       `yaml:"on_time"`    // 维修及时率 (response and resolution), default 0.95
	Arrival   float64       `yaml:"arrival"`    // share of emergencies on site in time, default 1.0
}

// SetDefaults fills unset targets with the seeds' figures.
func (t *Targets) SetDefaults() {
	if t.Handling == 0 {
		t.Handling = 1
	}
	if t.Callback == 0 {
		t.Callback = 0.95
	}
	if t.GoodOrder == 0 {
		t.GoodOrder = 0.98
	}
	if t.OnSite == 0 {
		t.OnSite = 3 * time.Minute
	}
	if t.OnTime == 0 {
		t.OnTime = 0.95
	}
	if t.Arrival == 0 {
		t.Arrival = 1
	}
}

// Validate checks the targets.
func (t *Targets) Validate() error {
	for name, v := range map[string]float64{"handling": t.Handling, "callback": t.Callback, "good_order": t.GoodOrder, "on_time": t.OnTime, "arrival": t.Arrival} {
		if v <= 0 || v > 1 {
			return cfgerr.Errorf(name, "%v is not a share; fix: a number between 0 and 1, e.g. 0.95 for 95 %%", v)
		}
	}
	if t.OnSite <= 0 {
		return cfgerr.Errorf("on_site", "must be positive, e.g. 3m")
	}
	return nil
}

// ReviewConfig is the daily review's push (投诉日盘点).
type ReviewConfig struct {
	At        string   `yaml:"at"`         // HH:MM in the calendar's time zone; default 08:30
	ShiftLead []string `yaml:"shift_lead"` // who gets the whole list: alerts recipients (a person id, or team:<id> for whoever is on duty)
	Disabled  bool     `yaml:"disabled"`
}

var hhmmRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

func validateCategories(cs []Category) error {
	seen := map[string]bool{}
	for i, c := range cs {
		p := fmt.Sprintf("categories[%d]", i)
		if !categoryIDRE.MatchString(c.ID) {
			return cfgerr.Errorf(p+".id", "%q is not a category id; fix: lower-case letters, digits, '_' or '-', e.g. plumbing", c.ID)
		}
		if seen[c.ID] {
			return cfgerr.Errorf(p+".id", "%q is listed twice", c.ID)
		}
		seen[c.ID] = true
		if strings.TrimSpace(c.NameZH) == "" {
			return cfgerr.Errorf(p+".name_zh", "is required: the category's Chinese name, e.g. 给排水维修")
		}
		if c.Resolution <= 0 {
			return cfgerr.Errorf(p+".resolution", "must be positive: the time limit from acceptance, e.g. 24h")
		}
		if c.Arrival < 0 {
			return cfgerr.Errorf(p+".arrival", "must not be negative")
		}
	}
	return nil
}

// CategoryIDs lists the configured categories' ids.
func (c *Config) CategoryIDs() []string {
	ids := make([]string, len(c.Categories))
	for i, x := range c.Categories {
		ids[i] = x.ID
	}
	return ids
}

// category is the configured category, if any.
func (c *Config) category(id string) (Category, bool) {
	i := slices.IndexFunc(c.Categories, func(x Category) bool { return x.ID == id })
	if i < 0 {
		return Category{}, false
	}
	return c.Categories[i], true
}

// CheckCategory refuses a category not in the configured list (any is
// accepted when none is configured).
func (c *Config) CheckCategory(id string) error {
	if len(c.Categories) == 0 {
		if strings.TrimSpace(id) == "" {
			return fmt.Errorf("category required")
		}
		return nil
	}
	if _, ok := c.category(id); !ok {
		return fmt.Errorf("category %q is not configured; fix: one of %s", id, strings.Join(c.CategoryIDs(), ", "))
	}
	return nil
}

// resolutionTime is how long after acceptance the order must be resolved.
func (c *Config) resolutionTime(w *WorkOrder) time.Duration {
	if cat, ok := c.category(w.Category); ok && w.Priority != rules.Critical {
		return cat.Resolution
	}
	return c.SLA.For(w.Category, w.Priority).Resolution
}

// arrivalTime is how soon an emergency (a critical order) needs someone on
// site; 0 for other orders.
func (c *Config) arrivalTime(w *WorkOrder) time.Duration {
	if w.Priority != rules.Critical {
		return 0
	}
	if cat, ok := c.category(w.Category); ok && cat.Arrival > 0 {
		return cat.Arrival
	}
	return c.SLA.Arrival
}

// callbackDue is when the call-back for an order resolved at t is due.
func (c *Config) callbackDue(w *WorkOrder, t time.Time) time.Time {
	if w.Reworks > 0 {
		return t.Add(c.Callback.AfterRework)
	}
	return c.Calendar.AddWorkingDays(t, c.Callback.WorkingDays)
}
