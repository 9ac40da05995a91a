// Package inspection runs the duty room's inspection rounds (巡检): routes
// with checkpoints and checklist items on calendar schedules (cron), rounds
// opened at their time, checkpoint check-in by a signed QR code, items the
// gateway can verify from telemetry pre-filled and flagged when the
// inspector's entry disagrees, abnormal items opening work orders, and
// missed rounds reported as the derived reading inspections_missed (rules
// alarm on it, like every alarm). It also watches night lighting: between
// dusk and dawn, computed for the site's coordinates, it publishes
// night_unlit for each lighting circuit that is off.
package inspection

import (
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/propgate/gateway/internal/cfgerr"
)

// Item kinds.
const (
	KindReading = "reading" // a number, with a normal range
	KindYesNo   = "yesno"   // 是/否, with the normal answer
	KindPhoto   = "photo"   // a photo taken on the phone
	KindNote    = "note"    // free text
)

// Telemetry says which live reading verifies an item.
type Telemetry struct {
	Asset     string  `yaml:"asset" json:"asset"`
	Field     string  `yaml:"field" json:"field"`
	Tolerance float64 `yaml:"tolerance" json:"tolerance,omitempty"` // reading: allowed difference
	// Invert: for yes/no items whose question is the reading's opposite
	// ("sump level normal?" verified by sump_high): yes means the reading is false.
	Invert bool `yaml:"invert" json:"invert,omitempty"`
}

// Item is one line of a checkpoint's checklist.
type Item struct {
	ID        string     `yaml:"id" json:"id"`
	Label     string     `yaml:"label" json:"label"` // Chinese first: "水泵运行声音正常 Pump sounds normal"
	Kind      string     `yaml:"kind" json:"kind"`
	Unit      string     `yaml:"unit" json:"unit,omitempty"`
	Min       *float64   `yaml:"min" json:"min,omitempty"`       // reading: below is abnormal
	Max       *float64   `yaml:"max" json:"max,omitempty"`       // reading: above is abnormal
	Expect    *bool      `yaml:"expect" json:"expect,omitempty"` // yesno: the normal answer; default true
	Optional  bool       `yaml:"optional" json:"optional,omitempty"`
	Telemetry *Telemetry `yaml:"telemetry" json:"telemetry,omitempty"`
}

// Checkpoint is one place on a route, with its QR code on the wall.
type Checkpoint struct {
	ID       string `yaml:"id" json:"id"`
	Name     string `yaml:"name" json:"name"`
	Location string `yaml:"location" json:"location,omitempty"`
	Items    []Item `yaml:"items" json:"items"`
}

// Route is one inspection route on a calendar schedule.
type Route struct {
	ID          string        `yaml:"id" json:"id"`
	Name        string        `yaml:"name" json:"name"`
	Schedule    string        `yaml:"schedule" json:"schedule"` // cron, 5 fields, in the site's time zone: "0 20 * * *"
	Window      time.Duration `yaml:"window" json:"window"`     // to complete the round; after it the round is missed; default 2h
	Asset       string        `yaml:"asset" json:"asset"`       // where a missed round is reported (inspections_missed)
	Category    string        `yaml:"category" json:"category"` // work orders for abnormal items; default inspection
	Checkpoints []Checkpoint  `yaml:"checkpoints" json:"checkpoints"`

	sched cron.Schedule
}

// NightLighting is the night-lighting watch: from dusk to dawn at the
// site's coordinates each lighting circuit that is off is reported.
type NightLighting struct {
	Latitude  float64       `yaml:"latitude"`
	Longitude float64       `yaml:"longitude"`
	SunBelow  *float64      `yaml:"sun_below"`   // night when the sun is below this elevation (degrees); default -0.833 (sunset)
	Kind      string        `yaml:"kind"`        // the lighting assets' kind; default lighting
	Field     string        `yaml:"field"`       // their on/off reading; default "on"
	Every     time.Duration `yaml:"check_every"` // default 10s
}

// Config is the inspections: section.
type Config struct {
	TimeZone      string         `yaml:"time_zone"` // default Asia/Shanghai
	QRSecret      string         `yaml:"qr_secret"` // signs the checkpoint QR codes; at least 16 characters
	Category      string         `yaml:"category"`  // default work-order category for abnormal items; default inspection
	Routes        []Route        `yaml:"routes"`
	NightLighting *NightLighting `yaml:"night_lighting"`

	loc *time.Location
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Shanghai"
	}
	if c.Category == "" {
		c.Category = "inspection"
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Window == 0 {
			r.Window = 2 * time.Hour
		}
		if r.Category == "" {
			r.Category = c.Category
		}
		for j := range r.Checkpoints {
			for k := range r.Checkpoints[j].Items {
				it := &r.Checkpoints[j].Items[k]
				if it.Kind == KindYesNo && it.Expect == nil {
					t := true
					it.Expect = &t
				}
			}
		}
	}
	if n := c.NightLighting; n != nil {
		if n.SunBelow == nil {
			v := -0.833
			n.SunBelow = &v
		}
		if n.Kind == "" {
			n.Kind = "lighting"
		}
		if n.Field == "" {
			n.Field = "on"
		}
		if n.Every == 0 {
			n.Every = 10 * time.Second
		}
	}
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate checks the section; known reports whether an asset is declared.
func (c *Config) Validate(known func(string) bool) error {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return cfgerr.Errorf("time_zone", "%q is not a time zone; fix: e.g. Asia/Shanghai", c.TimeZone)
	}
	c.loc = loc
	if len(c.Routes) > 0 && len(c.QRSecret) < 16 {
		return cfgerr.Errorf("qr_secret", "must be at least 16 characters (it signs the checkpoint QR codes); fix: a long random value, e.g. ${INSPECTION_QR_SECRET}")
	}
	routes := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		if !idRE.MatchString(r.ID) {
			return cfgerr.Errorf(p+".id", "%q is not a route id; fix: lower-case letters, digits, '_' or '-', e.g. pump-room-weekly", r.ID)
		}
		if j, dup := routes[r.ID]; dup {
			return cfgerr.Errorf(p+".id", "%q is already used by routes[%d]", r.ID, j)
		}
		routes[r.ID] = i
		if r.Name == "" {
			return cfgerr.Errorf(p+".name", "is required; fix: e.g. 泵房周巡检 Weekly pump-room round")
		}
		s, err := cron.ParseStandard("CRON_TZ=" + c.TimeZone + " " + r.Schedule)
		if err != nil || r.Schedule == "" {
			return cfgerr.Errorf(p+".schedule", "%q is not a schedule; fix: cron minute hour day month weekday, e.g. \"0 20 * * *\" (daily 20:00) or \"0 9 * * 1\" (Mondays 09:00)", r.Schedule)
		}
		r.sched = s
		if r.Window < time.Minute {
			return cfgerr.Errorf(p+".window", "%s is too short; fix: at least 1m, e.g. 2h", r.Window)
		}
		if r.Asset == "" || !known(r.Asset) {
			return cfgerr.Errorf(p+".asset", "%q is not declared under assets:; fix: the asset a missed round is reported on, e.g. the pump room", r.Asset)
		}
		if len(r.Checkpoints) == 0 {
			return cfgerr.Errorf(p+".checkpoints", "a route needs at least one checkpoint")
		}
		cps := map[string]bool{}
		for j, cp := range r.Checkpoints {
			q := fmt.Sprintf("%s.checkpoints[%d]", p, j)
			if !idRE.MatchString(cp.ID) || cps[cp.ID] {
				return cfgerr.Errorf(q+".id", "%q is not a checkpoint id or is used twice on the route", cp.ID)
			}
			cps[cp.ID] = true
			if cp.Name == "" {
				return cfgerr.Errorf(q+".name", "is required")
			}
			if len(cp.Items) == 0 {
				return cfgerr.Errorf(q+".items", "a checkpoint needs at least one item")
			}
			items := map[string]bool{}
			for k, it := range cp.Items {
				ip := fmt.Sprintf("%s.items[%d]", q, k)
				if !idRE.MatchString(it.ID) || items[it.ID] {
					return cfgerr.Errorf(ip+".id", "%q is not an item id or is used twice at the checkpoint", it.ID)
				}
				items[it.ID] = true
				if it.Label == "" {
					return cfgerr.Errorf(ip+".label", "is required")
				}
				switch it.Kind {
				case KindReading, KindYesNo, KindPhoto, KindNote:
				default:
					return cfgerr.Errorf(ip+".kind", "%q is not an item kind; fix: reading, yesno, photo or note", it.Kind)
				}
				if (it.Min != nil || it.Max != nil) && it.Kind != KindReading {
					return cfgerr.Errorf(ip+".min", "min and max are for readings")
				}
				if t := it.Telemetry; t != nil {
					if it.Kind != KindReading && it.Kind != KindYesNo {
						return cfgerr.Errorf(ip+".telemetry", "only readings and yes/no items can be verified from telemetry")
					}
					if !known(t.Asset) {
						return cfgerr.Errorf(ip+".telemetry.asset", "%q is not declared under assets:", t.Asset)
					}
					if t.Field == "" {
						return cfgerr.Errorf(ip+".telemetry.field", "is required; fix: e.g. outlet_pressure")
					}
					if t.Invert && it.Kind != KindYesNo {
						return cfgerr.Errorf(ip+".telemetry.invert", "is for yes/no items")
					}
					if t.Tolerance < 0 || math.IsNaN(t.Tolerance) {
						return cfgerr.Errorf(ip+".telemetry.tolerance", "must not be negative")
					}
				}
			}
		}
	}
	if n := c.NightLighting; n != nil {
		if n.Latitude < -90 || n.Latitude > 90 || n.Longitude < -180 || n.Longitude > 180 || (n.Latitude == 0 && n.Longitude == 0) {
			return cfgerr.Errorf("night_lighting.latitude", "%g, %g is not the site's position; fix: decimal degrees, e.g. latitude: 31.23, longitude: 121.47 (Shanghai)", n.Latitude, n.Longitude)
		}
		if *n.SunBelow < -18 || *n.SunBelow > 5 {
			return cfgerr.Errorf("night_lighting.sun_below", "%g is out of range; fix: -0.833 (sunset), -6 (civil dusk) … -18", *n.SunBelow)
		}
		if n.Every < time.Second {
			return cfgerr.Errorf("night_lighting.check_every", "must be at least 1s")
		}
	}
	return nil
}

// Location is the site's time zone.
func (c *Config) Location() *time.Location {
	if c.loc != nil {
		return c.loc
	}
	if l, err := time.LoadLocation(c.TimeZone); err == nil {
		return l
	}
	return time.Local
}

// schedule compiles a route's schedule (Validate did already).
func (c *Config) schedule(r *Route) (cron.Schedule, error) {
	if r.sched != nil {
		return r.sched, nil
	}
	return cron.ParseStandard("CRON_TZ=" + c.TimeZone + " " + r.Schedule)
}
