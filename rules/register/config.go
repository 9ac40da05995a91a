package register

import (
	"fmt"
	"regexp"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
)

// Config is the register: section: the YAML seed of the register (what an
// office starts from; the console and CSV import edit the stored copy), the
// contacts directory and the reminder settings.
type Config struct {
	TimeZone string    `yaml:"time_zone"` // the site's days; default Asia/Shanghai
	WarnDays int       `yaml:"warn_days"` // a certificate is "due" this many days ahead (screens); default 30
	Assets   []Entry   `yaml:"assets"`    // seed: stored at first start, never overwriting what people edited
	Contacts []Contact `yaml:"contacts"`  // seed: stored at first start; admins edit the stored copy

	// StepContacts are the directory ids the playbooks' steps name, each
	// with where (set by the config check): those cannot be deleted.
	StepContacts map[string]string `yaml:"-"`

	loc *time.Location
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Shanghai"
	}
	if c.WarnDays == 0 {
		c.WarnDays = 30
	}
}

var contactIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate checks the section; known reports whether an asset is declared.
func (c *Config) Validate(known func(string) bool) error {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return cfgerr.Errorf("time_zone", "%q is not a time zone; fix: e.g. Asia/Shanghai", c.TimeZone)
	}
	c.loc = loc
	if c.WarnDays < 1 || c.WarnDays > 365 {
		return cfgerr.Errorf("warn_days", "%d is out of range; fix: 1 to 365", c.WarnDays)
	}
	seen := map[string]int{}
	for i := range c.Assets {
		e := &c.Assets[i]
		if err := e.Validate(known); err != nil {
			return cfgerr.Prefix(fmt.Sprintf("assets[%d]", i), err)
		}
		if j, dup := seen[e.Asset]; dup {
			return cfgerr.Errorf(fmt.Sprintf("assets[%d].asset", i), "%q already has a register entry (assets[%d]); fix: one entry per asset", e.Asset, j)
		}
		seen[e.Asset] = i
	}
	ids := map[string]int{}
	for i := range c.Contacts {
		ct := &c.Contacts[i]
		p := fmt.Sprintf("contacts[%d]", i)
		if err := ct.Validate(known); err != nil {
			return cfgerr.Prefix(p, err)
		}
		if j, dup := ids[ct.ID]; dup {
			return cfgerr.Errorf(p+".id", "%q is already used by contacts[%d]", ct.ID, j)
		}
		ids[ct.ID] = i
	}
	if len(c.Contacts) > MaxContacts {
		return cfgerr.Errorf("contacts", "more than %d contacts", MaxContacts)
	}
	return nil
}

// Location is the site's time zone (valid after Validate).
func (c *Config) Location() *time.Location {
	if c.loc == nil {
		if l, err := time.LoadLocation(c.TimeZone); err == nil {
			return l
		}
		return time.Local
	}
	return c.loc
}

// HasContact reports whether id is a directory entry or asset_contractor.
func (c *Config) HasContact(id string) bool {
	if id == AssetContractor {
		return true
	}
	for _, ct := range c.Contacts {
		if ct.ID == id {
			return true
		}
	}
	return false
}
