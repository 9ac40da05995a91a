package planned

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // the notice's time zone on hosts without zoneinfo

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules/playbook"
)

// Config is the planned_works: section.
type Config struct {
	// MinNotice is how long before the start residents must be told:
	// 24 h (002 停水停电: 提前24小时通知; 001 篇3 二.1). Shorter notice is
	// allowed (urgent repairs happen) but warned about and recorded.
	MinNotice time.Duration `yaml:"min_notice"`
	// Grace widens the window on both sides: the utility cuts a little
	// early, the supply returns a little late.
	Grace time.Duration `yaml:"grace"`
	// RecoveryWithin is how long after the end supply, pumps and lifts may
	// take to come back before a normal alarm is raised.
	RecoveryWithin time.Duration `yaml:"recovery_within"`
	TimeZone       string        `yaml:"time_zone"` // times in the notice; default Asia/Shanghai
	Signature      string        `yaml:"signature"` // who signs the notice: 物业服务中心
	Phone          string        `yaml:"phone"`     // the service desk's phone in the notice
	// NeverPlanned rules always count as faults, even in a window: people
	// trapped in a car, a fire. Default: elevator-entrapment, fire-alarm
	// (those that exist).
	NeverPlanned []string `yaml:"never_planned"`
	// Kinds say, per kind of work, which alarms it explains and what must
	// be back at its end.
	Kinds map[Kind]KindConfig `yaml:"kinds"`

	loc *time.Location
}

// KindConfig is what a kind of planned work explains and what must be
// back at its end.
type KindConfig struct {
	// Rules are the alarms the work is expected to raise on the covered
	// assets (mains-lost during a planned power cut); empty: every rule.
	Rules []string `yaml:"rules"`
	// Recovery: each condition (with kind) must hold on every asset of that
	// kind the work covers once it has ended.
	Recovery []playbook.Condition `yaml:"recovery"`
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.MinNotice == 0 {
		c.MinNotice = 24 * time.Hour
	}
	if c.Grace == 0 {
		c.Grace = 30 * time.Minute
	}
	if c.RecoveryWithin == 0 {
		c.RecoveryWithin = 15 * time.Minute
	}
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Shanghai"
	}
	if c.Signature == "" {
		c.Signature = "物业服务中心"
	}
	if c.NeverPlanned == nil {
		c.NeverPlanned = []string{"elevator-entrapment", "fire-alarm"}
	}
}

// Validate checks the section against the configured rule ids.
func (c *Config) Validate(ruleIDs map[string]bool) error {
	if c.MinNotice < 0 {
		return cfgerr.Errorf("min_notice", "must not be negative; fix: e.g. 24h")
	}
	if c.Grace < 0 || c.Grace > 24*time.Hour {
		return cfgerr.Errorf("grace", "%s is out of range; fix: between 0 and 24h, e.g. 30m", c.Grace)
	}
	if c.RecoveryWithin < 0 {
		return cfgerr.Errorf("recovery_within", "must not be negative; fix: e.g. 15m")
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return cfgerr.Errorf("time_zone", "%q is not a time zone; fix: e.g. Asia/Shanghai", c.TimeZone)
	}
	c.loc = loc
	kinds := make([]string, 0, len(c.Kinds))
	for k := range c.Kinds {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, ks := range kinds {
		k := Kind(ks)
		if !slices.Contains(Kinds, k) {
			return cfgerr.Errorf("kinds."+ks, "%q is not a kind of planned work; fix: %s", ks, kindList())
		}
		kc := c.Kinds[k]
		for i, r := range kc.Rules {
			if !ruleIDs[r] {
				return cfgerr.Errorf(fmt.Sprintf("kinds.%s.rules[%d]", ks, i), "%q is not a rule id (rules.rules)", r)
			}
		}
		for i, cond := range kc.Recovery {
			if cond.Kind == "" {
				return cfgerr.Errorf(fmt.Sprintf("kinds.%s.recovery[%d].kind", ks, i), "is required: the asset kind the condition is checked on, e.g. distribution_panel")
			}
		}
		if err := playbook.ValidateConditions(fmt.Sprintf("kinds.%s.recovery", ks), kc.Recovery); err != nil {
			return err
		}
	}
	for i, r := range c.NeverPlanned {
		if !ruleIDs[r] && !slices.Contains([]string{"elevator-entrapment", "fire-alarm"}, r) {
			return cfgerr.Errorf(fmt.Sprintf("never_planned[%d]", i), "%q is not a rule id (rules.rules)", r)
		}
	}
	return nil
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// location is the notice's time zone (Validate loads it).
func (c *Config) location() *time.Location {
	if c.loc == nil {
		if loc, err := time.LoadLocation(c.TimeZone); err == nil {
			c.loc = loc
		} else {
			c.loc = time.Local
		}
	}
	return c.loc
}
