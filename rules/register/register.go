// Package register is the asset register (设备台账): per asset its maker,
// model, serial, installation date, maintenance contractor (维保单位) and
// phone, registration code (电梯注册代码), inspection certificates (电梯年检,
// pressure vessels, extinguishers) with their expiry, warranty end and
// document links; and the external contacts directory (供电 95598, 自来水,
// lift contractors, 110/119/120, 社区居委会).
//
// Expiry reminders are not a second alarm path: the register publishes a
// derived reading, cert_days_left (the days until the asset's earliest
// certificate expires, in the site's time zone), into the ingest pipeline
// like any collector, and ordinary rules alarm on it (threshold below 31, 8,
// 2 → the 30/7/1-day reminders). So reminders get the ISA-18.2 lifecycle,
// acknowledgement, shelving, alert routing, quiet hours, work orders, the
// alarm history and InfluxDB history like every other alarm, and a site can
// change their priority or drop one in the rules: section.
package register

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/propgate/gateway/internal/cfgerr"
)

// Date is a calendar day, YYYY-MM-DD ("" when unknown).
type Date string

// Valid reports whether d is empty or a real YYYY-MM-DD day.
func (d Date) Valid() bool {
	if d == "" {
		return true
	}
	_, err := time.Parse(time.DateOnly, string(d))
	return err == nil
}

// DaysLeft is the number of whole days from now's day to d in loc: 0 on the
// day itself, negative once past. ok is false for an empty or bad date.
func (d Date) DaysLeft(now time.Time, loc *time.Location) (int, bool) {
	t, err := time.ParseInLocation(time.DateOnly, string(d), loc)
	if err != nil {
		return 0, false
	}
	n := now.In(loc)
	today := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc)
	// Round: a day across a DST change is 23 or 25 hours (and integer
	// division would round -1 day up to 0: the day after the end).
	return int(math.Round(t.Sub(today).Hours() / 24)), true
}

// Certificate is one inspection certificate with an expiry: the lift's
// annual inspection (电梯年检), a pressure vessel's, the extinguishers'.
type Certificate struct {
	Kind    string `yaml:"kind" json:"kind"`               // e.g. 电梯年检 lift_annual_inspection
	Number  string `yaml:"number" json:"number,omitempty"` // certificate number
	Expires Date   `yaml:"expires" json:"expires"`         // last valid day
	Issuer  string `yaml:"issuer" json:"issuer,omitempty"` // 特种设备检验所…
	Days    *int   `yaml:"-" json:"days_left,omitempty"`   // filled when read
	Status  string `yaml:"-" json:"status,omitempty"`      // ok, due (≤30 days), expired
}

// Document is a link to a manual, a drawing, a photo.
type Document struct {
	Title string `yaml:"title" json:"title"`
	URL   string `yaml:"url" json:"url"`
}

// Entry is one asset's register record.
type Entry struct {
	Asset            string        `yaml:"asset" json:"asset"`
	Maker            string        `yaml:"maker" json:"maker,omitempty"`
	Model            string        `yaml:"model" json:"model,omitempty"`
	Serial           string        `yaml:"serial" json:"serial,omitempty"`
	Installed        Date          `yaml:"installed" json:"installed,omitempty"`
	Location         string        `yaml:"location" json:"location,omitempty"`
	Contractor       string        `yaml:"contractor" json:"contractor,omitempty"`             // 维保单位
	ContractorPhone  string        `yaml:"contractor_phone" json:"contractor_phone,omitempty"` // its 24-hour number
	RegistrationCode string        `yaml:"registration_code" json:"registration_code,omitempty"`
	Certificates     []Certificate `yaml:"certificates" json:"certificates"`
	WarrantyEnd      Date          `yaml:"warranty_end" json:"warranty_end,omitempty"`
	Documents        []Document    `yaml:"documents" json:"documents"`
	Notes            string        `yaml:"notes" json:"notes,omitempty"`
	UpdatedBy        string        `yaml:"-" json:"updated_by,omitempty"`
	Updated          time.Time     `yaml:"-" json:"updated,omitzero"`
	Version          int           `yaml:"-" json:"version"` // bumped on every save; a PUT must send the one it read
}

// Limits on what a person (or a spreadsheet) may enter.
const (
	maxText  = 200
	maxNotes = 2000
	maxCerts = 20
	maxDocs  = 20
)

var phoneRE = regexp.MustCompile(`^[0-9+() -]{3,40}$`)

// Validate checks e; paths are relative to the entry. known reports
// whether an asset id is declared.
func (e *Entry) Validate(known func(string) bool) error {
	if e.Asset == "" {
		return cfgerr.Errorf("asset", "is required; fix: the asset id from assets:")
	}
	if !known(e.Asset) {
		return cfgerr.Errorf("asset", "%q is not declared under assets:; fix: declare it or correct the id", e.Asset)
	}
	for _, f := range []struct{ name, v string }{{"maker", e.Maker}, {"model", e.Model}, {"serial", e.Serial}, {"location", e.Location},
		{"contractor", e.Contractor}, {"registration_code", e.RegistrationCode}} {
		if utf8.RuneCountInString(f.v) > maxText || !utf8.ValidString(f.v) {
			return cfgerr.Errorf(f.name, "is longer than %d characters", maxText)
		}
	}
	if utf8.RuneCountInString(e.Notes) > maxNotes || !utf8.ValidString(e.Notes) {
		return cfgerr.Errorf("notes", "is longer than %d characters", maxNotes)
	}
	if e.ContractorPhone != "" && !phoneRE.MatchString(e.ContractorPhone) {
		return cfgerr.Errorf("contractor_phone", "%q is not a phone number; fix: digits, spaces, +, -, ( ), e.g. 400-820-0000", e.ContractorPhone)
	}
	if !e.Installed.Valid() {
		return cfgerr.Errorf("installed", "%q is not a date; fix: YYYY-MM-DD, e.g. 2015-06-30", e.Installed)
	}
	if !e.WarrantyEnd.Valid() {
		return cfgerr.Errorf("warranty_end", "%q is not a date; fix: YYYY-MM-DD, e.g. 2027-12-31", e.WarrantyEnd)
	}
	if len(e.Certificates) > maxCerts {
		return cfgerr.Errorf("certificates", "at most %d certificates", maxCerts)
	}
	for i, c := range e.Certificates {
		p := fmt.Sprintf("certificates[%d]", i)
		if strings.TrimSpace(c.Kind) == "" {
			return cfgerr.Errorf(p+".kind", "is required; fix: e.g. 电梯年检 (lift annual inspection), 压力容器检验, 灭火器年检")
		}
		if utf8.RuneCountInString(c.Kind) > maxText || utf8.RuneCountInString(c.Number) > maxText || utf8.RuneCountInString(c.Issuer) > maxText {
			return cfgerr.Errorf(p, "a text is longer than %d characters", maxText)
		}
		if c.Expires == "" || !c.Expires.Valid() {
			return cfgerr.Errorf(p+".expires", "%q is not a date; fix: the certificate's last valid day, YYYY-MM-DD", c.Expires)
		}
	}
	if len(e.Documents) > maxDocs {
		return cfgerr.Errorf("documents", "at most %d documents", maxDocs)
	}
	for i, d := range e.Documents {
		if !strings.HasPrefix(d.URL, "https://") && !strings.HasPrefix(d.URL, "http://") && !strings.HasPrefix(d.URL, "/") {
			return cfgerr.Errorf(fmt.Sprintf("documents[%d].url", i), "%q is not a link; fix: an http(s):// address or a path on this gateway", d.URL)
		}
		if utf8.RuneCountInString(d.Title) > maxText || len(d.URL) > 1000 {
			return cfgerr.Errorf(fmt.Sprintf("documents[%d]", i), "too long")
		}
	}
	return nil
}

// CertDaysLeft is the days until the earliest certificate expires (false
// without certificates).
func (e *Entry) CertDaysLeft(now time.Time, loc *time.Location) (int, bool) {
	best, ok := 0, false
	for _, c := range e.Certificates {
		if d, valid := c.Expires.DaysLeft(now, loc); valid && (!ok || d < best) {
			best, ok = d, true
		}
	}
	return best, ok
}

// withDays fills each certificate's days left and status (for reading).
func (e Entry) withDays(now time.Time, loc *time.Location, warn int) Entry {
	certs := make([]Certificate, len(e.Certificates))
	for i, c := range e.Certificates {
		if d, ok := c.Expires.DaysLeft(now, loc); ok {
			c.Days = &d
			switch {
			case d < 0:
				c.Status = "expired"
			case d <= warn:
				c.Status = "due"
			default:
				c.Status = "ok"
			}
		}
		certs[i] = c
	}
	e.Certificates = certs
	if e.Documents == nil {
		e.Documents = []Document{}
	}
	return e
}

// Contact is one entry of the external contacts directory. The config's
// contacts: seed the stored directory at first start; after that admins
// edit it in the console (every change audited, by whom and when).
type Contact struct {
	ID        string    `yaml:"id" json:"id"`
	Name      string    `yaml:"name" json:"name"`         // 供电公司 (国网客服) …
	Category  string    `yaml:"category" json:"category"` // emergency, utility, contractor, government, insurer, other
	Phone     string    `yaml:"phone" json:"phone"`
	Phone2    string    `yaml:"phone2" json:"phone2,omitempty"`
	Notes     string    `yaml:"notes" json:"notes,omitempty"` // when to call, what to say
	Assets    []string  `yaml:"assets" json:"assets,omitempty"`
	UpdatedBy string    `yaml:"-" json:"updated_by,omitempty"`
	Updated   time.Time `yaml:"-" json:"updated,omitzero"`
	Version   int       `yaml:"-" json:"version"`           // bumped on every save; a PUT must send the one it read
	Deleted   bool      `yaml:"-" json:"deleted,omitempty"` // removed by an admin: kept so the seed does not bring it back
}

// MaxContacts bounds the directory.
const MaxContacts = 500

// Validate checks c; paths are relative to the contact. known reports
// whether an asset id is declared.
func (c *Contact) Validate(known func(string) bool) error {
	switch {
	case !contactIDRE.MatchString(c.ID) || c.ID == AssetContractor || len(c.ID) > 64:
		return cfgerr.Errorf("id", "%q is not a contact id; fix: lower-case letters, digits, '_' or '-', at most 64, e.g. power-company (asset_contractor is reserved)", c.ID)
	case strings.TrimSpace(c.Name) == "":
		return cfgerr.Errorf("name", "is required; fix: e.g. 供电公司 State Grid customer service")
	case utf8.RuneCountInString(c.Name) > maxText || !utf8.ValidString(c.Name):
		return cfgerr.Errorf("name", "is longer than %d characters", maxText)
	case !phoneRE.MatchString(c.Phone):
		return cfgerr.Errorf("phone", "%q is not a phone number; fix: digits, spaces, +, -, ( ), e.g. 95598", c.Phone)
	case c.Phone2 != "" && !phoneRE.MatchString(c.Phone2):
		return cfgerr.Errorf("phone2", "%q is not a phone number; fix: digits, spaces, +, -, ( ), or leave it empty", c.Phone2)
	case utf8.RuneCountInString(c.Notes) > maxNotes || !utf8.ValidString(c.Notes):
		return cfgerr.Errorf("notes", "is longer than %d characters", maxNotes)
	case !slices.Contains(ContactCategories, c.Category):
		return cfgerr.Errorf("category", "%q is not a category; fix: emergency, utility, contractor, government, insurer or other", c.Category)
	case len(c.Assets) > 100:
		return cfgerr.Errorf("assets", "at most 100 assets")
	}
	for j, a := range c.Assets {
		if !known(a) {
			return cfgerr.Errorf(fmt.Sprintf("assets[%d]", j), "%q is not declared under assets:", a)
		}
	}
	return nil
}

// ContactCategories are the directory's sections.
var ContactCategories = []string{"emergency", "utility", "contractor", "government", "insurer", "other"}

// AssetContractor is the contact id a playbook step names to mean "the
// maintenance contractor of this incident's asset" (from the register).
const AssetContractor = "asset_contractor"

// ErrNotFound: no such register entry or contact.
var ErrNotFound = errors.New("not found")

// ErrConflict: the entry or contact changed since it was read (or a new
// contact's id is taken).
var ErrConflict = errors.New("changed by someone else since it was read (or the id is taken); reload and retry")

// ErrInUse: a contact a playbook step names cannot be deleted.
var ErrInUse = errors.New("in use")
