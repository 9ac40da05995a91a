// Package workorder owns work orders: their lifecycle from registration to
// call-back and archive, SLA deadlines and breaches, the KPIs and daily
// review, and the webhook outbox that feeds a CMMS.
package workorder

import (
	"fmt"
	"regexp"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
)

// Status is a work order's place in the lifecycle the property-service
// plans describe: registered, dispatched, handled, followed up with a
// call-back, archived.
type Status string

// Work-order statuses.
const (
	Opened       Status = "opened"
	Dispatched   Status = "dispatched"
	Accepted     Status = "accepted"
	OnSite       Status = "on_site" // the engineer has arrived: an emergency's response is measured to here
	InProgress   Status = "in_progress"
	Resolved     Status = "resolved"
	CallbackDone Status = "callback_done"
	Closed       Status = "closed"
	Cancelled    Status = "cancelled"
)

// next lists the allowed transitions.
var next = map[Status][]Status{
	Opened:       {Dispatched, Accepted, Cancelled},
	Dispatched:   {Accepted, Opened, Cancelled},
	Accepted:     {OnSite, InProgress, Resolved, Cancelled},
	OnSite:       {InProgress, Resolved, Cancelled},
	InProgress:   {Resolved, Cancelled},
	Resolved:     {CallbackDone, InProgress, Closed},
	CallbackDone: {Closed, InProgress},
	Closed:       {},
	Cancelled:    {},
}

// Open reports whether the order is still being worked on.
func (s Status) Open() bool {
	return s != Closed && s != Cancelled && s != Resolved && s != CallbackDone
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := next[s]; return ok }

// CanMove reports whether from → to is allowed.
func CanMove(from, to Status) bool {
	for _, s := range next[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Type is what kind of report a work order records (报事报修/投诉登记):
// the four a resident makes, and the two the gateway raises.
type Type string

// Work-order types.
const (
	Repair     Type = "repair"     // 报修
	Complaint  Type = "complaint"  // 投诉
	Help       Type = "help"       // 求助
	Suggestion Type = "suggestion" // 建议
	Fault      Type = "fault"      // 设备故障 (raised by the gateway from an alarm)
	PM         Type = "pm"         // 预防性维护 (planned maintenance)
)

// Types lists the types with their Chinese names, in display order.
var Types = []struct {
	Type   Type
	NameZH string
}{{Repair, "报修"}, {Complaint, "投诉"}, {Help, "求助"}, {Suggestion, "建议"}, {Fault, "设备故障"}, {PM, "预防性维护"}}

// Valid reports whether t is a known type.
func (t Type) Valid() bool {
	for _, x := range Types {
		if x.Type == t {
			return true
		}
	}
	return false
}

// NameZH is the type's Chinese name.
func (t Type) NameZH() string {
	for _, x := range Types {
		if x.Type == t {
			return x.NameZH
		}
	}
	return string(t)
}

// FromResident reports whether a resident (or another person) reported it:
// those orders are called back; the gateway's own are not.
func (t Type) FromResident() bool { return t != Fault && t != PM }

// Channels are where a report came in.
var Channels = []string{"phone", "front_desk", "wechat", "monitoring_center", "gateway"}

// Callback outcomes (回访结果).
const (
	Satisfied       = "satisfied"        // 满意
	FairlySatisfied = "fairly_satisfied" // 基本满意
	Unsatisfied     = "unsatisfied"      // 不满意: the order is reopened for a re-repair
)

// Callback is one call-back to the person who reported the order.
type Callback struct {
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Outcome string    `json:"outcome"` // satisfied, fairly_satisfied, unsatisfied
	Note    string    `json:"note,omitempty"`
	Due     time.Time `json:"due,omitempty"`
	Late    bool      `json:"late"` // made after its deadline
}

// WorkOrder is one job for the engineering or service team.
type WorkOrder struct {
	ID               int64          `json:"id"`
	Type             Type           `json:"type"`
	Category         string         `json:"category"`
	Asset            string         `json:"asset,omitempty"`
	Location         string         `json:"location,omitempty"`
	Room             string         `json:"room,omitempty"` // room or unit (房号), for a resident's report
	Priority         rules.Priority `json:"priority"`
	Description      string         `json:"description"`
	Status           Status         `json:"status"`
	Source           string         `json:"source"` // "rule" or "manual"
	Channel          string         `json:"channel,omitempty"`
	Rule             string         `json:"rule,omitempty"`
	AlarmID          string         `json:"alarm_id,omitempty"`
	Reporter         string         `json:"reporter,omitempty"`
	CallerName       string         `json:"caller_name,omitempty"`  // personal data: hidden from the wall
	CallerPhone      string         `json:"caller_phone,omitempty"` // personal data: hidden from the wall
	FirstResponsible string         `json:"first_responsible,omitempty"`
	Assignee         string         `json:"assignee,omitempty"`
	// The complaint flow (002): analysed → solution → handled and fed back.
	Analysis           string     `json:"analysis,omitempty"`
	Solution           string     `json:"solution,omitempty"`
	Feedback           string     `json:"feedback,omitempty"`
	Created            time.Time  `json:"created"`
	ResponseDue        time.Time  `json:"response_due"`
	ArrivalDue         time.Time  `json:"arrival_due,omitempty"` // emergencies: on site by
	ResolutionDue      time.Time  `json:"resolution_due"`        // from acceptance (接单); provisional before
	CallbackDue        time.Time  `json:"callback_due,omitempty"`
	AcceptedAt         time.Time  `json:"accepted_at,omitempty"`
	OnSiteAt           time.Time  `json:"on_site_at,omitempty"`
	ResolvedAt         time.Time  `json:"resolved_at,omitempty"`
	CallbackAt         time.Time  `json:"callback_at,omitempty"`
	ClosedAt           time.Time  `json:"closed_at,omitempty"`
	ResponseBreached   bool       `json:"response_breached"`
	ArrivalBreached    bool       `json:"arrival_breached"`
	ResolutionBreached bool       `json:"resolution_breached"`
	ResolvedLate       bool       `json:"resolved_late"`    // was once resolved after its deadline (kept through re-repairs)
	CallbackSkipped    bool       `json:"callback_skipped"` // closed without the call-back it needed
	Callbacks          []Callback `json:"callbacks,omitempty"`
	Reworks            int        `json:"reworks"`     // times reopened after resolution (返修)
	Drill              bool       `json:"drill"`       // opened by a drill: never counted in the KPIs
	Occurrences        int        `json:"occurrences"` // times its rule fired for it
	Version            int        `json:"version"`     // bumped on every change
	Updated            time.Time  `json:"updated"`
}

// mobileRE is a mainland mobile number (11 digits from 1[3-9], maybe
// grouped 3-4-4 with spaces or '-', maybe after +86), not inside a longer
// run of digits.
var mobileRE = regexp.MustCompile(`(^|[^0-9])((?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2})($|[^0-9])`)

// MaskPhones replaces the mobile numbers in s (what the wall must not show).
func MaskPhones(s string) string {
	for range 4 { // adjacent numbers share a separator: another pass finds the next
		m := mobileRE.ReplaceAllString(s, "${1}"+phoneMask+"${3}")
		if m == s {
			break
		}
		s = m
	}
	return s
}

const phoneMask = "***********"

// hidden replaces personal data on the wall.
const hidden = "（已隐去 hidden）"

// ForViewer is the order as the read-only wall token sees it: who reported
// it and how to reach them (a resident's name, phone, room), what people
// wrote about it (call-back notes, the complaint's analysis) are left out.
func (w WorkOrder) ForViewer() WorkOrder {
	// What it is and where stay on the wall; a mobile number typed into
	// them ("12楼漏水，业主 138 1234 5678") does not.
	w.Description, w.Location = MaskPhones(w.Description), MaskPhones(w.Location)
	if w.Reporter != "" && w.Source == "manual" {
		w.Reporter = hidden
	}
	for _, f := range []*string{&w.CallerName, &w.CallerPhone, &w.Room, &w.Analysis, &w.Solution, &w.Feedback} {
		if *f != "" {
			*f = hidden
		}
	}
	if len(w.Callbacks) > 0 {
		cbs := make([]Callback, len(w.Callbacks))
		for i, c := range w.Callbacks {
			c.Note, c.By = "", ""
			cbs[i] = c
		}
		w.Callbacks = cbs
	}
	return w
}

// HistoryEntry is one recorded change of a work order.
type HistoryEntry struct {
	WorkOrder int64     `json:"workorder"`
	At        time.Time `json:"at"`
	By        string    `json:"by"`
	From      Status    `json:"from,omitempty"`
	To        Status    `json:"to,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// Deadlines are one SLA: respond (accepted) within, resolve within.
type Deadlines struct {
	Response   time.Duration `yaml:"response"`
	Resolution time.Duration `yaml:"resolution"`
}

// SLA sets deadlines per category and priority, falling back to the
// priority's default, then to Default.
type SLA struct {
	Arrival    time.Duration                           `yaml:"arrival"` // emergencies (critical): on site within; default 3m (a category may set its own: fire 2m)
	Default    Deadlines                               `yaml:"default"`
	Priorities map[rules.Priority]Deadlines            `yaml:"priorities"`
	Categories map[string]map[rules.Priority]Deadlines `yaml:"categories"`
}

// SetDefaults: the seeds ask for the emergency team on site within 3
// minutes; routine repairs within a day.
func (s *SLA) SetDefaults() {
	if s.Arrival == 0 {
		s.Arrival = 3 * time.Minute
	}
	if s.Default == (Deadlines{}) {
		s.Default = Deadlines{Response: 30 * time.Minute, Resolution: 24 * time.Hour}
	}
	if s.Priorities == nil {
		s.Priorities = map[rules.Priority]Deadlines{
			rules.Critical: {Response: 3 * time.Minute, Resolution: 2 * time.Hour},
			rules.High:     {Response: 15 * time.Minute, Resolution: 4 * time.Hour},
			rules.Medium:   {Response: time.Hour, Resolution: 24 * time.Hour},
			rules.Low:      {Response: 4 * time.Hour, Resolution: 72 * time.Hour},
		}
	}
}

// Validate checks the SLA.
func (s *SLA) Validate() error {
	check := func(path string, d Deadlines) error {
		if d.Response <= 0 || d.Resolution <= 0 || d.Resolution < d.Response {
			return cfgerr.Errorf(path, "response and resolution must be positive and resolution at least response (got %s / %s)", d.Response, d.Resolution)
		}
		return nil
	}
	if s.Arrival < 0 {
		return cfgerr.Errorf("arrival", "must be positive, e.g. 3m")
	}
	if err := check("default", s.Default); err != nil {
		return err
	}
	for p, d := range s.Priorities {
		if !p.Valid() {
			return cfgerr.Errorf("priorities."+string(p), "%q is not a priority", p)
		}
		if err := check("priorities."+string(p), d); err != nil {
			return err
		}
	}
	for c, m := range s.Categories {
		for p, d := range m {
			if !p.Valid() {
				return cfgerr.Errorf(fmt.Sprintf("categories.%s.%s", c, p), "%q is not a priority", p)
			}
			if err := check(fmt.Sprintf("categories.%s.%s", c, p), d); err != nil {
				return err
			}
		}
	}
	return nil
}

// For returns the deadlines for a category and priority.
func (s *SLA) For(category string, p rules.Priority) Deadlines {
	if d, ok := s.Categories[category][p]; ok {
		return d
	}
	if d, ok := s.Priorities[p]; ok {
		return d
	}
	return s.Default
}

// TransitionError is an invalid work-order move; nothing is changed.
type TransitionError struct{ From, To Status }

func (e *TransitionError) Error() string {
	allowed := make([]string, 0, len(next[e.From]))
	for _, s := range next[e.From] {
		allowed = append(allowed, string(s))
	}
	if !e.To.Valid() {
		return fmt.Sprintf("%q is not a status; from %s it can go to %v", e.To, e.From, allowed)
	}
	return fmt.Sprintf("a %s work order cannot become %s; from %s it can go to %v", e.From, e.To, e.From, allowed)
}

// move applies a status change and its timestamps.
func (w *WorkOrder) move(to Status, now time.Time) error {
	if !CanMove(w.Status, to) {
		return &TransitionError{From: w.Status, To: to}
	}
	switch to {
	case Accepted:
		if w.AcceptedAt.IsZero() {
			w.AcceptedAt = now
		}
	case OnSite:
		if w.OnSiteAt.IsZero() {
			w.OnSiteAt = now
		}
	case Resolved:
		w.ResolvedAt = now
	case CallbackDone:
		w.CallbackAt = now
	case Closed, Cancelled:
		w.ClosedAt = now
	case InProgress, Opened:
		if to == Opened || w.Status == Resolved || w.Status == CallbackDone {
			w.ResolvedAt, w.CallbackAt = time.Time{}, time.Time{} // reopened for more work
		}
	}
	w.Status = to
	return nil
}

// breaches marks deadlines passed at now; it reports whether anything changed.
func (w *WorkOrder) breaches(now time.Time) (changed []string) {
	if !w.ResponseBreached && w.AcceptedAt.IsZero() && (w.Status == Opened || w.Status == Dispatched) && now.After(w.ResponseDue) {
		w.ResponseBreached = true
		changed = append(changed, "response")
	}
	if !w.ArrivalBreached && !w.ArrivalDue.IsZero() && w.OnSiteAt.IsZero() && w.Status.Open() && now.After(w.ArrivalDue) {
		w.ArrivalBreached = true
		changed = append(changed, "arrival")
	}
	if !w.ResolutionBreached && w.Status.Open() && now.After(w.ResolutionDue) {
		w.ResolutionBreached = true
		changed = append(changed, "resolution")
	}
	return changed
}
