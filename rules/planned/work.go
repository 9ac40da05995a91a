// Package planned keeps planned works (计划停水停电 / 维保公告): an operator
// records a planned water or power stop or maintenance with its buildings,
// lines and window; the gateway checks residents are told at least 24 h
// ahead (002; 001 篇3 二.1), writes the residents' notice, tags the alarms
// the work raises in its window as planned (annunciated quietly: nobody
// paged, no emergency plan, no fault work order) and verifies at the end
// that supply, pumps and lifts came back, raising a normal alarm if not.
package planned

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is what the work stops.
type Kind string

// Kinds of planned work.
const (
	Power       Kind = "power"       // 计划停电
	Water       Kind = "water"       // 计划停水
	Maintenance Kind = "maintenance" // 设备维保
)

// Kinds lists every kind.
var Kinds = []Kind{Power, Water, Maintenance}

// ZH is the kind in the notice's words.
func (k Kind) ZH() string {
	switch k {
	case Power:
		return "停电"
	case Water:
		return "停水"
	}
	return "设备维保"
}

// Status is where a planned work is.
type Status string

// Statuses.
const (
	Scheduled    Status = "scheduled"     // announced, not started
	InProgress   Status = "in_progress"   // within its window
	Verifying    Status = "verifying"     // ended: waiting for supply, pumps and lifts
	Completed    Status = "completed"     // ended and everything came back
	NotRecovered Status = "not_recovered" // ended, something did not come back: a normal alarm is raised
	Cancelled    Status = "cancelled"
)

// Closed reports whether the work no longer tags alarms or checks anything.
func (s Status) Closed() bool { return s == Completed || s == Cancelled }

// Request is what an operator enters (POST /api/v1/planned-works).
type Request struct {
	Kind        Kind      `json:"kind"`
	Title       string    `json:"title"`
	Buildings   []string  `json:"buildings"`
	Area        string    `json:"area"`   // free text for the notice: "3号楼全楼" (default: the buildings)
	Assets      []string  `json:"assets"` // lines and equipment affected: panels, pump rooms, cars
	Lines       string    `json:"lines"`  // free text: "10kV 2#进线"
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"` // expected end
	Reason      string    `json:"reason"`
	Elevators   string    `json:"elevators"` // elevator use during the work: "停电期间电梯停运"
	Safety      string    `json:"safety"`    // safety notes for residents
	Contact     string    `json:"contact"`   // person in charge on site and phone (staff only)
	AnnouncedAt time.Time `json:"announced_at,omitempty"`
}

// Entry is one line of a work's log.
type Entry struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Kind string    `json:"kind"` // created, announced, warning, started, tagged, ended, recovered, not_recovered, cancelled, finished
	Text string    `json:"text"`
}

// Recovery is what the end-of-work check found.
type Recovery struct {
	Checked   time.Time `json:"checked"`             // last check
	Recovered time.Time `json:"recovered,omitempty"` // when everything was seen back
	Missing   []string  `json:"missing,omitempty"`   // what is not back (asset: reading)
	Alarmed   []string  `json:"alarmed,omitempty"`   // assets whose not_recovered alarm was raised
}

// Work is one planned work.
type Work struct {
	ID int64 `json:"id"`
	Request
	Status      Status    `json:"status"`
	Created     time.Time `json:"created"`
	CreatedBy   string    `json:"created_by,omitempty"`
	AnnouncedBy string    `json:"announced_by,omitempty"`
	// Warnings: announced less than min_notice ahead, and the like.
	Warnings []string  `json:"warnings"`
	Started  time.Time `json:"started,omitempty"`
	Ended    time.Time `json:"ended,omitempty"` // the window's end, or when an operator said it finished
	// Tagged lists the alarms tagged planned in the window.
	Tagged   []string  `json:"tagged"`
	Recovery *Recovery `json:"recovery,omitempty"`
	Log      []Entry   `json:"log"`
	Version  int64     `json:"version"`
}

// ErrInvalid marks a request that cannot be a planned work (HTTP 400).
var ErrInvalid = errors.New("invalid planned work")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// bounds on what people write (the notice goes on a wall; the store is
// not a file share).
const (
	maxText  = 2000
	maxList  = 200
	maxTitle = 200
)

// validate checks a request against the site's buildings and assets.
func (r *Request) validate(buildings, assets map[string]bool, now time.Time) error {
	switch r.Kind {
	case Power, Water, Maintenance:
	case "":
		return invalid(`"kind" is required: power (停电), water (停水) or maintenance (维保)`)
	default:
		return invalid(`"kind" %q is not power, water or maintenance`, r.Kind)
	}
	if strings.TrimSpace(r.Title) == "" {
		r.Title = r.defaultTitle()
	}
	for what, s := range map[string]string{"title": r.Title, "area": r.Area, "lines": r.Lines, "reason": r.Reason, "elevators": r.Elevators, "safety": r.Safety, "contact": r.Contact} {
		limit := maxText
		if what == "title" {
			limit = maxTitle
		}
		if utf8.RuneCountInString(s) > limit {
			return invalid("%q is longer than %d characters", what, limit)
		}
		if !utf8.ValidString(s) {
			return invalid("%q is not valid UTF-8", what)
		}
	}
	if len(r.Buildings) == 0 && len(r.Assets) == 0 {
		return invalid(`name the buildings ("buildings") or the lines and equipment ("assets") the work affects`)
	}
	if len(r.Buildings) > maxList || len(r.Assets) > maxList {
		return invalid("at most %d buildings and %d assets", maxList, maxList)
	}
	for _, b := range r.Buildings {
		if !buildings[b] {
			return invalid("building %q is not a building of this site (assets: building)", b)
		}
	}
	for _, a := range r.Assets {
		if !assets[a] {
			return invalid("asset %q is not declared", a)
		}
	}
	if r.Start.IsZero() || r.End.IsZero() {
		return invalid(`"start" and "end" (the expected end) are required, RFC 3339 with the time zone: 2026-11-24T08:00:00+08:00`)
	}
	if !r.End.After(r.Start) {
		return invalid(`"end" must be after "start"`)
	}
	if r.End.Sub(r.Start) > 14*24*time.Hour {
		return invalid("a planned work of more than 14 days is not one window; fix: enter it in parts")
	}
	if !r.End.After(now) {
		return invalid(`"end" %s is in the past: a planned work is entered before it ends`, r.End.Format(time.RFC3339))
	}
	if strings.TrimSpace(r.Reason) == "" {
		return invalid(`"reason" is required: the notice tells residents why (e.g. 供电局线路检修)`)
	}
	if !r.AnnouncedAt.IsZero() {
		if r.AnnouncedAt.After(now.Add(time.Minute)) {
			return invalid(`"announced_at" is in the future: record the notice when it has been posted`)
		}
		if r.AnnouncedAt.After(r.Start) {
			return invalid(`"announced_at" is after "start": residents were not told beforehand`)
		}
	}
	return nil
}

func (r *Request) defaultTitle() string {
	where := strings.Join(r.Buildings, "、")
	if where == "" {
		where = strings.Join(r.Assets, "、")
	}
	return where + "计划" + r.Kind.ZH()
}

// ForViewer is the work as the wall display may see it: what, where and
// when, without the people (contact, who entered it) or the log.
func (w *Work) ForViewer() *Work {
	c := *w
	c.Contact, c.CreatedBy, c.AnnouncedBy = "", "", ""
	c.Log = nil
	c.Recovery = nil
	c.Tagged = nil
	c.Safety, c.Elevators, c.Lines = "", "", ""
	return &c
}

func (w *Work) clone() *Work {
	c := *w
	c.Buildings = append([]string(nil), w.Buildings...)
	c.Assets = append([]string(nil), w.Assets...)
	c.Warnings = append([]string{}, w.Warnings...)
	c.Tagged = append([]string{}, w.Tagged...)
	c.Log = append([]Entry(nil), w.Log...)
	if w.Recovery != nil {
		r := *w.Recovery
		r.Missing = append([]string(nil), r.Missing...)
		r.Alarmed = append([]string(nil), r.Alarmed...)
		c.Recovery = &r
	}
	return &c
}

func (w *Work) log(at time.Time, by, kind, format string, a ...any) {
	w.Log = append(w.Log, Entry{At: at, By: by, Kind: kind, Text: fmt.Sprintf(format, a...)})
}
