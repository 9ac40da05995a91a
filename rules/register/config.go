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
	Contacts []Contact `yaml:"contacts"`

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
	for i, ct := range c.Contacts {
		p := fmt.Sprintf("contacts[%d]", i)
		switch {
		case !contactIDRE.MatchString(ct.ID) || ct.ID == AssetContractor:
			return cfgerr.Errorf(p+".id", "%q is not a contact id; fix: lower-case letters, digits, '_' or '-', e.g. power-company (asset_contractor is reserved)", ct.ID)
		case ct.Name == "":
			return cfgerr.Errorf(p+".name", "is required; fix: e.g. 供电公司 State Grid customer service")
		case !phoneRE.MatchString(ct.Phone):
			return cfgerr.Errorf(p+".phone", "%q is not a phone number; fix: digits, spaces, +, -, ( ), e.g. 95598", ct.Phone)
		case ct.Phone2 != "" && !phoneRE.MatchString(ct.Phone2):
			return cfgerr.Errorf(p+".phone2", "%q is not a phone number", ct.Phone2)
		}
		if j, dup := ids[ct.ID]; dup {
			return cfgerr.Errorf(p+".id", "%q is already used by contacts[%d]", ct.ID, j)
		}
		ids[ct.ID] = i
		okCat := false
		for _, k := range ContactCategories {
			okCat = okCat || ct.Category == k
		}
		if !okCat {
			return cfgerr.Errorf(p+".category", "%q is not a category; fix: emergency, utility, contractor, government, insurer or other", ct.Category)
		}
		for j, a := range ct.Assets {
			if !known(a) {
				return cfgerr.Errorf(fmt.Sprintf("%s.assets[%d]", p, j), "%q is not declared under assets:", a)
			}
		}
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
