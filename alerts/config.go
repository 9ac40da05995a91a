package alerts

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
)

// Contact is one way to reach a person, tried in order.
type Contact struct {
	Channel string `yaml:"channel"` // a key of channels:
	Address string `yaml:"address"` // phone, e-mail, robot user id, topic part
}

// Person is someone who can be notified.
type Person struct {
	ID       string    `yaml:"id"`
	Name     string    `yaml:"name"`
	Language string    `yaml:"language"` // zh (default) or en: which language comes first
	Contacts []Contact `yaml:"contacts"`
}

// Override puts someone on call for a team for a while.
type Override struct {
	Person string    `yaml:"person"`
	From   time.Time `yaml:"from"`
	To     time.Time `yaml:"to"`
}

// Rotation hands a team's on-call duty from member to member.
type Rotation struct {
	Members  []string      `yaml:"members"`
	Start    time.Time     `yaml:"start"` // a handover; the first member is on call from here
	Shift    time.Duration `yaml:"shift"` // e.g. 24h or 168h
	TimeZone string        `yaml:"time_zone"`
}

// Team is engineering, security, customer service, management...
type Team struct {
	ID        string     `yaml:"id"`
	Name      string     `yaml:"name"`
	Rotation  Rotation   `yaml:"rotation"`
	Overrides []Override `yaml:"overrides"`
}

// Level is one step of an escalation policy.
type Level struct {
	Notify []string      `yaml:"notify"` // team:<id> (whoever is on call) or person:<id>
	Wait   time.Duration `yaml:"wait"`   // before the next level, if nobody acknowledged
}

// Policy escalates an alert level by level until someone acknowledges.
type Policy struct {
	ID     string  `yaml:"id"`
	Levels []Level `yaml:"levels"`
	Repeat int     `yaml:"repeat"` // times the whole policy is run again after the last level
	// AckExpiry: an acknowledged alarm neither resolved nor progressed (work
	// order accepted or worked on, an incident step done) within this
	// returns to unacknowledged and is paged again on every contact;
	// progress restarts it. 0: never.
	AckExpiry time.Duration `yaml:"ack_expiry"`
}

// Route sends matching alarms to a policy; the first match wins.
type Route struct {
	Priorities []rules.Priority `yaml:"priorities"`
	Categories []string         `yaml:"categories"`
	Rules      []string         `yaml:"rules"`
	Policy     string           `yaml:"policy"`
	Immediate  bool             `yaml:"immediate"` // never held for grouping (an entrapment)
}

func (r *Route) matches(a *rules.Alarm) bool {
	return (len(r.Priorities) == 0 || slices.Contains(r.Priorities, a.Priority)) &&
		(len(r.Categories) == 0 || slices.Contains(r.Categories, a.Category)) &&
		(len(r.Rules) == 0 || slices.Contains(r.Rules, a.Rule))
}

// Inhibit: while a source rule's alarm is active in the scope, alerts of
// the listed categories are not sent (the outage explains them), except the
// listed rules (never an entrapment).
type Inhibit struct {
	SourceRule string   `yaml:"source_rule"`
	Categories []string `yaml:"categories"`
	Except     []string `yaml:"except_rules"`
	Scope      string   `yaml:"scope"` // building (default) or site
}

// QuietHours hold alerts of some priorities until working hours.
type QuietHours struct {
	From       string           `yaml:"from"` // "22:00"
	To         string           `yaml:"to"`   // "07:30"
	Priorities []rules.Priority `yaml:"priorities"`
	TimeZone   string           `yaml:"time_zone"`
}

// Maintenance silences alerts for assets or buildings for a while.
type Maintenance struct {
	From      time.Time `yaml:"from"`
	To        time.Time `yaml:"to"`
	Assets    []string  `yaml:"assets"`
	Buildings []string  `yaml:"buildings"`
	Reason    string    `yaml:"reason"`
}

// Config is the alerts: section.
type Config struct {
	BaseURL     string                   `yaml:"base_url"`    // the gateway as phones reach it, for acknowledgement links
	LinkSecret  string                   `yaml:"link_secret"` // signs acknowledgement links
	LinkTTL     time.Duration            `yaml:"link_ttl"`    // caps a link's life; default (and at most): the policy's escalation horizon
	Database    string                   `yaml:"database"`    // default data/alerts.db
	TimeZone    string                   `yaml:"time_zone"`   // times in messages; default the server's
	GroupWindow time.Duration            `yaml:"group_window"`
	MinInterval time.Duration            `yaml:"min_interval"` // per person: messages closer than this are grouped
	Channels    map[string]ChannelConfig `yaml:"channels"`
	People      []Person                 `yaml:"people"`
	Teams       []Team                   `yaml:"teams"`
	Policies    []Policy                 `yaml:"policies"`
	Routes      []Route                  `yaml:"routes"`
	Inhibit     []Inhibit                `yaml:"inhibit"`
	QuietHours  []QuietHours             `yaml:"quiet_hours"`
	Maintenance []Maintenance            `yaml:"maintenance"`
	// Roles map playbook roles (notify actions, escalations) to teams.
	Roles map[string]string `yaml:"roles"`
	// FallbackAfter: a critical or high message that waited this long for
	// its endpoint's budget goes to the person's next contact; default 30s.
	FallbackAfter time.Duration `yaml:"fallback_after"`
	// Flood: more than Alarms activations within Window is an alarm flood
	// (ISA-18.2: 10 in 10 minutes); during one, messages waiting for an
	// endpoint merge into digests.
	Flood Flood `yaml:"flood"`
	// UrgentPlaybooks' notifications are never merged into a digest and go
	// ahead of the queue (critical alarms and immediate routes always are).
	UrgentPlaybooks []string `yaml:"urgent_playbooks"`
}

// Flood is the alarm-flood threshold.
type Flood struct {
	Alarms int           `yaml:"alarms"` // default 10
	Window time.Duration `yaml:"window"` // default 10m
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.Database == "" {
		c.Database = "data/alerts.db"
	}
	if c.GroupWindow == 0 {
		c.GroupWindow = 10 * time.Second
	}
	if c.FallbackAfter == 0 {
		c.FallbackAfter = 30 * time.Second
	}
	if c.Flood.Alarms == 0 {
		c.Flood.Alarms = 10
	}
	if c.Flood.Window == 0 {
		c.Flood.Window = 10 * time.Minute
	}
	for i := range c.People {
		if c.People[i].Language == "" {
			c.People[i].Language = "zh"
		}
	}
	for i := range c.Inhibit {
		if c.Inhibit[i].Scope == "" {
			c.Inhibit[i].Scope = "building"
		}
	}
}

func clock(s string) (int, bool) {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// Validate checks the section and its references.
func (c *Config) Validate() error {
	if u, err := url.Parse(c.BaseURL); c.BaseURL == "" || err != nil || u.Host == "" {
		return cfgerr.Errorf("base_url", "%q is not a URL; fix: how phones reach this gateway, e.g. https://gw.yushan.example", c.BaseURL)
	}
	if c.LinkTTL < 0 {
		return cfgerr.Errorf("link_ttl", "must not be negative")
	}
	if len(c.LinkSecret) < 16 {
		return cfgerr.Errorf("link_secret", "must be at least 16 characters: it makes acknowledgement links unforgeable; fix: ${ALERT_LINK_SECRET}")
	}
	names := make([]string, 0, len(c.Channels))
	for name := range c.Channels {
		names = append(names, name)
	}
	slices.Sort(names)
	endpoints := map[string]string{} // endpoint name → its first channel
	for _, name := range names {
		ch := c.Channels[name]
		if err := ch.Validate(); err != nil {
			return cfgerr.Prefix("channels."+name, err)
		}
		if ch.Endpoint == "" {
			continue
		}
		if first, ok := endpoints[ch.Endpoint]; ok {
			fc := c.Channels[first]
			if fc.Type == ch.Type && fc.EndpointKey() == ch.EndpointKey() {
				continue
			}
			return cfgerr.Errorf("channels."+name+".endpoint", "%q is also channels.%s's endpoint, which sends elsewhere; fix: one endpoint name per robot, SMS account or SMTP relay", ch.Endpoint, first)
		}
		endpoints[ch.Endpoint] = name
	}
	if c.FallbackAfter < 0 {
		return cfgerr.Errorf("fallback_after", "must not be negative")
	}
	if c.Flood.Alarms < 0 || c.Flood.Window < 0 {
		return cfgerr.Errorf("flood", "alarms and window must not be negative")
	}
	people := map[string]bool{}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return cfgerr.Errorf("time_zone", "%q is not a time zone: %v", c.TimeZone, err)
	}
	for i, p := range c.People {
		path := fmt.Sprintf("people[%d]", i)
		if p.ID == "" || people[p.ID] {
			return cfgerr.Errorf(path+".id", "%q is empty or used twice", p.ID)
		}
		people[p.ID] = true
		if p.Language != "zh" && p.Language != "en" {
			return cfgerr.Errorf(path+".language", "%q is not zh or en", p.Language)
		}
		if len(p.Contacts) == 0 {
			return cfgerr.Errorf(path+".contacts", "%s cannot be reached: add a contact", p.ID)
		}
		for j, ct := range p.Contacts {
			if _, ok := c.Channels[ct.Channel]; !ok {
				return cfgerr.Errorf(fmt.Sprintf("%s.contacts[%d].channel", path, j), "%q is not a channel under channels:", ct.Channel)
			}
		}
	}
	teams := map[string]bool{}
	for i, t := range c.Teams {
		path := fmt.Sprintf("teams[%d]", i)
		teams[t.ID] = true
		if len(t.Rotation.Members) == 0 || t.Rotation.Shift <= 0 {
			return cfgerr.Errorf(path+".rotation", "members and a positive shift are required")
		}
		if _, err := time.LoadLocation(t.Rotation.TimeZone); err != nil {
			return cfgerr.Errorf(path+".rotation.time_zone", "%q is not a time zone: %v", t.Rotation.TimeZone, err)
		}
		for _, m := range t.Rotation.Members {
			if !people[m] {
				return cfgerr.Errorf(path+".rotation.members", "%q is not under people:", m)
			}
		}
		for j, o := range t.Overrides {
			if !people[o.Person] || !o.To.After(o.From) {
				return cfgerr.Errorf(fmt.Sprintf("%s.overrides[%d]", path, j), "person must be under people: and to after from")
			}
		}
	}
	policies := map[string]bool{}
	for i, p := range c.Policies {
		path := fmt.Sprintf("policies[%d]", i)
		policies[p.ID] = true
		if len(p.Levels) == 0 {
			return cfgerr.Errorf(path+".levels", "a policy needs levels")
		}
		for j, l := range p.Levels {
			for _, target := range l.Notify {
				kind, id, _ := strings.Cut(target, ":")
				if !(kind == "team" && teams[id]) && !(kind == "person" && people[id]) {
					return cfgerr.Errorf(fmt.Sprintf("%s.levels[%d].notify", path, j), "%q is not team:<id> or person:<id> of a declared team or person", target)
				}
			}
			if l.Wait <= 0 {
				return cfgerr.Errorf(fmt.Sprintf("%s.levels[%d].wait", path, j), "must be positive: how long before the next level")
			}
		}
	}
	for i, r := range c.Routes {
		if !policies[r.Policy] {
			return cfgerr.Errorf(fmt.Sprintf("routes[%d].policy", i), "%q is not a policy", r.Policy)
		}
	}
	for role, team := range c.Roles {
		if !teams[team] {
			return cfgerr.Errorf("roles."+role, "%q is not a team", team)
		}
	}
	for i, q := range c.QuietHours {
		_, ok1 := clock(q.From)
		_, ok2 := clock(q.To)
		if !ok1 || !ok2 {
			return cfgerr.Errorf(fmt.Sprintf("quiet_hours[%d]", i), "from and to are HH:MM")
		}
		if _, err := time.LoadLocation(q.TimeZone); err != nil {
			return cfgerr.Errorf(fmt.Sprintf("quiet_hours[%d].time_zone", i), "%q is not a time zone", q.TimeZone)
		}
	}
	return nil
}

// OnCall says who is on call for a team at a time, and until when.
func (t *Team) OnCall(now time.Time) (person string, until time.Time) {
	for _, o := range t.Overrides {
		if !now.Before(o.From) && now.Before(o.To) {
			return o.Person, o.To
		}
	}
	r := t.Rotation
	loc, _ := time.LoadLocation(r.TimeZone)
	start := r.Start.In(loc)
	n := int64(now.Sub(start) / r.Shift)
	if now.Before(start) {
		n--
	}
	idx := int(((n % int64(len(r.Members))) + int64(len(r.Members))) % int64(len(r.Members)))
	return r.Members[idx], start.Add(time.Duration(n+1) * r.Shift)
}

// quiet reports whether priority p must wait at now, and until when.
func (q *QuietHours) quiet(p rules.Priority, now time.Time) (bool, time.Time) {
	if !slices.Contains(q.Priorities, p) {
		return false, time.Time{}
	}
	loc, _ := time.LoadLocation(q.TimeZone)
	local := now.In(loc)
	from, _ := clock(q.From)
	to, _ := clock(q.To)
	m := local.Hour()*60 + local.Minute()
	in := from <= to && m >= from && m < to || from > to && (m >= from || m < to)
	if !in {
		return false, time.Time{}
	}
	end := time.Date(local.Year(), local.Month(), local.Day(), to/60, to%60, 0, 0, loc)
	if !end.After(local) {
		end = end.AddDate(0, 0, 1)
	}
	return true, end
}
