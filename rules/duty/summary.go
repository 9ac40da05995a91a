package duty

import (
	"context"
	"slices"
	"time"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// Summary is what is open at a handover, as generated for the outgoing
// person and stored with the handover as it was when they signed.
type Summary struct {
	Generated    time.Time       `json:"generated"`
	Alarms       []AlarmItem     `json:"alarms"`                // active or not yet acknowledged
	Masked       []AlarmItem     `json:"masked"`                // shelved or out of service: who did it and until when
	Incidents    []IncidentItem  `json:"incidents"`             // open, with their current steps
	WorkOrders   []WorkOrderItem `json:"workorders"`            // open, overdue ones first
	PlannedWorks []PlannedWork   `json:"planned_works"`         // in progress now
	Log          []*Entry        `json:"log"`                   // the duty log since the team's previous handover
	Unavailable  []string        `json:"unavailable,omitempty"` // parts that could not be read (the rest is still handed over)
}

// Open counts the items handed over (not the log).
func (s *Summary) Open() int {
	return len(s.Alarms) + len(s.Masked) + len(s.Incidents) + len(s.WorkOrders) + len(s.PlannedWorks)
}

// AlarmItem is one alarm handed over.
type AlarmItem struct {
	ID       string           `json:"id"`
	Rule     string           `json:"rule"`
	Asset    string           `json:"asset"`
	Name     string           `json:"name"`
	NameZH   string           `json:"name_zh,omitempty"`
	Priority rules.Priority   `json:"priority"`
	State    rules.AlarmState `json:"state"`
	Since    time.Time        `json:"since"`
	Value    string           `json:"value,omitempty"`
	AckBy    string           `json:"ack_by,omitempty"`
	By       string           `json:"by,omitempty"`    // shelved or taken out of service by
	Note     string           `json:"note,omitempty"`  // their reason
	Until    time.Time        `json:"until,omitempty"` // shelved until
}

// IncidentItem is one open incident and where it stands.
type IncidentItem struct {
	ID       int64      `json:"id"`
	Playbook string     `json:"playbook"`
	Name     string     `json:"name"`
	Drill    bool       `json:"drill"`
	Asset    string     `json:"asset,omitempty"`
	Location string     `json:"location,omitempty"`
	Started  time.Time  `json:"started"`
	Current  []StepItem `json:"current"` // active steps
	Done     int        `json:"done"`
	Total    int        `json:"total"`
}

// StepItem is one current step of an incident.
type StepItem struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	TitleZH  string    `json:"title_zh,omitempty"`
	Due      time.Time `json:"due,omitempty"`
	Overdue  bool      `json:"overdue"`
	Awaiting string    `json:"awaiting_confirmation,omitempty"`
}

// WorkOrderItem is one open work order.
type WorkOrderItem struct {
	ID            int64            `json:"id"`
	Category      string           `json:"category"`
	Asset         string           `json:"asset,omitempty"`
	Location      string           `json:"location,omitempty"`
	Priority      rules.Priority   `json:"priority"`
	Description   string           `json:"description"`
	Status        workorder.Status `json:"status"`
	Assignee      string           `json:"assignee,omitempty"`
	Created       time.Time        `json:"created"`
	ResolutionDue time.Time        `json:"resolution_due"`
	Overdue       bool             `json:"overdue"`
	Drill         bool             `json:"drill"`
}

// PlannedWork is one planned stop or maintenance in progress (计划停水停电 / 维保).
type PlannedWork struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Kind      string    `json:"kind,omitempty"`   // power, water, maintenance
	Status    string    `json:"status,omitempty"` // in_progress, verifying, not_recovered; scheduled when it starts within a day
	Buildings []string  `json:"buildings,omitempty"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// The summary's sources: one narrow interface each.

// AlarmReader lists alarms (the rules engine).
type AlarmReader interface {
	Alarms(filter func(*rules.Alarm) bool) []rules.Alarm
}

// AlarmHistory says who shelved an alarm or took it out of service (the store).
type AlarmHistory interface {
	AlarmHistory(ctx context.Context, id string) ([]rules.Transition, error)
}

// IncidentReader lists open incidents (the playbook runner).
type IncidentReader interface {
	Incidents(ctx context.Context, openOnly bool) ([]*playbook.Incident, error)
}

// WorkOrderReader lists open work orders (the store).
type WorkOrderReader interface {
	WorkOrders(ctx context.Context, f workorder.Filter) ([]*workorder.WorkOrder, error)
}

// PlannedWorks lists the planned works in progress at a time, and those
// starting within a day (the planned-works package).
type PlannedWorks interface {
	InProgress(ctx context.Context, at time.Time) ([]PlannedWork, error)
}

// Sources are what a summary is generated from; any may be nil (that part
// is left out, e.g. no playbooks configured).
type Sources struct {
	Alarms       AlarmReader
	History      AlarmHistory
	Incidents    IncidentReader
	WorkOrders   WorkOrderReader
	PlannedWorks PlannedWorks
}

const maxItems = 500

var prio = map[rules.Priority]int{"critical": 0, "high": 1, "medium": 2, "low": 3}

// summarise generates the summary at now; parts whose source fails are
// named in Unavailable rather than failing the handover.
func (src Sources) summarise(ctx context.Context, now time.Time) Summary {
	s := Summary{Generated: now, Alarms: []AlarmItem{}, Masked: []AlarmItem{}, Incidents: []IncidentItem{}, WorkOrders: []WorkOrderItem{},
		PlannedWorks: []PlannedWork{}, Log: []*Entry{}}
	if src.Alarms != nil {
		for _, a := range src.Alarms.Alarms(func(a *rules.Alarm) bool { return a.State != rules.StateNormal && a.State != rules.StateSuppressed }) {
			it := AlarmItem{ID: a.ID, Rule: a.Rule, Asset: a.Asset, Name: a.Name, NameZH: a.NameZH, Priority: a.Priority, State: a.State,
				Since: a.Since, Value: a.Value, AckBy: a.AckBy, Until: a.ShelvedUntil}
			switch a.State {
			case rules.StateShelved, rules.StateOutOfService:
				if src.History != nil {
					if tr, err := src.History.AlarmHistory(ctx, a.ID); err != nil {
						s.Unavailable = appendOnce(s.Unavailable, "alarm history: "+err.Error())
					} else {
						for i := len(tr) - 1; i >= 0; i-- { // the latest time it entered this state
							if tr[i].To == a.State {
								it.By, it.Note = tr[i].By, tr[i].Note
								break
							}
						}
					}
				}
				s.Masked = append(s.Masked, it)
			default:
				s.Alarms = append(s.Alarms, it)
			}
		}
		byPrio := func(a, b AlarmItem) int {
			if d := prio[a.Priority] - prio[b.Priority]; d != 0 {
				return d
			}
			return a.Since.Compare(b.Since)
		}
		slices.SortFunc(s.Alarms, byPrio)
		slices.SortFunc(s.Masked, byPrio)
		s.Alarms, s.Masked = capped(s.Alarms), capped(s.Masked)
	}
	if src.Incidents != nil {
		ins, err := src.Incidents.Incidents(ctx, true)
		if err != nil {
			s.Unavailable = append(s.Unavailable, "incidents: "+err.Error())
		}
		for _, in := range ins {
			it := IncidentItem{ID: in.ID, Playbook: in.Playbook, Name: in.Name, Drill: in.Drill, Asset: in.Asset, Location: in.Location, Started: in.Started, Current: []StepItem{}}
			for _, st := range in.Steps {
				if st.Removed {
					continue
				}
				it.Total++
				switch st.Status {
				case playbook.StepDone, playbook.StepSkipped:
					it.Done++
				case playbook.StepActive:
					it.Current = append(it.Current, StepItem{ID: st.ID, Title: st.Title, TitleZH: st.TitleZH, Due: st.Due, Overdue: st.Overdue, Awaiting: st.Awaiting})
				}
			}
			s.Incidents = append(s.Incidents, it)
		}
		slices.SortFunc(s.Incidents, func(a, b IncidentItem) int { return a.Started.Compare(b.Started) })
		s.Incidents = capped(s.Incidents)
	}
	if src.WorkOrders != nil {
		ws, err := src.WorkOrders.WorkOrders(ctx, workorder.Filter{Open: true, Limit: maxItems})
		if err != nil {
			s.Unavailable = append(s.Unavailable, "work orders: "+err.Error())
		}
		for _, w := range ws {
			s.WorkOrders = append(s.WorkOrders, WorkOrderItem{ID: w.ID, Category: w.Category, Asset: w.Asset, Location: w.Location, Priority: w.Priority,
				Description: w.Description, Status: w.Status, Assignee: w.Assignee, Created: w.Created, ResolutionDue: w.ResolutionDue,
				Overdue: w.ResolutionBreached || !w.ResolutionDue.IsZero() && now.After(w.ResolutionDue), Drill: w.Drill})
		}
		slices.SortFunc(s.WorkOrders, func(a, b WorkOrderItem) int {
			if a.Overdue != b.Overdue {
				if a.Overdue {
					return -1
				}
				return 1
			}
			if d := prio[a.Priority] - prio[b.Priority]; d != 0 {
				return d
			}
			return a.Created.Compare(b.Created)
		})
	}
	if src.PlannedWorks != nil {
		pw, err := src.PlannedWorks.InProgress(ctx, now)
		if err != nil {
			s.Unavailable = append(s.Unavailable, "planned works: "+err.Error())
		}
		s.PlannedWorks = append(s.PlannedWorks, capped(pw)...)
	}
	return s
}

func capped[T any](s []T) []T {
	if len(s) > maxItems {
		return s[:maxItems]
	}
	return s
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
