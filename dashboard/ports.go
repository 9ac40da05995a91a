package dashboard

import (
	"context"
	"time"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// The rules layer as the HTTP API sees it: one narrow interface per use,
// each implemented by the engine, the work-order service, the runner or
// the store. Handlers pass the request's context down.

// AlarmReader lists alarms (the engine).
type AlarmReader interface {
	Alarms(filter func(*rules.Alarm) bool) []rules.Alarm
	Alarm(id string) (rules.Alarm, bool)
}

// AlarmActions are what people do to alarms (the engine).
type AlarmActions interface {
	Ack(id, by, note string) (rules.Alarm, error)
	Shelve(id string, d time.Duration, by, note string) (rules.Alarm, error)
	Unshelve(id, by, note string) (rules.Alarm, error)
	SetOutOfService(id string, on bool, by, note string) (rules.Alarm, error)
}

// AlarmHistory reads an alarm's transitions (the store).
type AlarmHistory interface {
	AlarmHistory(ctx context.Context, id string) ([]rules.Transition, error)
}

// WorkOrderActions open and move work orders (the work-order service).
type WorkOrderActions interface {
	Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error)
	Transition(ctx context.Context, id int64, to workorder.Status, by, note string) (*workorder.WorkOrder, error)
	Update(ctx context.Context, id int64, u workorder.Update, by string) (*workorder.WorkOrder, error)
	// Callback records a call-back's outcome (不满意 reopens the order).
	Callback(ctx context.Context, id int64, outcome, note, by string) (*workorder.WorkOrder, error)
}

// WorkOrderReader reads work orders (the store).
type WorkOrderReader interface {
	WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error)
	WorkOrders(ctx context.Context, f workorder.Filter) ([]*workorder.WorkOrder, error)
}

// Reports are the KPIs and the daily review.
type Reports interface {
	KPIs(ctx context.Context, from, to time.Time) (*workorder.KPIs, error)
	// MonthToDate is what every screen shows on connecting (cached briefly).
	MonthToDate(ctx context.Context) (*workorder.KPIs, error)
	Review(ctx context.Context) ([]workorder.ReviewItem, error)
}

// IncidentReader reads playbooks and incidents (the runner).
type IncidentReader interface {
	Playbooks() []playbook.PlaybookInfo
	Incident(ctx context.Context, id int64) (*playbook.Incident, error)
	Incidents(ctx context.Context, openOnly bool) ([]*playbook.Incident, error)
	Playbook(id string) (*playbook.Playbook, bool)
}

// IncidentActions are what people do to incidents (the runner).
type IncidentActions interface {
	Start(ctx context.Context, playbook, asset string, drill bool, by string) (*playbook.Incident, error)
	AddEvidence(ctx context.Context, id int64, by, text string) (*playbook.Incident, error)
	Close(ctx context.Context, id int64, by, note string) (*playbook.Incident, error)
}

// StepActions are what people do to an incident's steps (the runner).
type StepActions interface {
	Complete(ctx context.Context, id int64, step, by, note string) (*playbook.Incident, error)
	Skip(ctx context.Context, id int64, step, by, note string) (*playbook.Incident, error)
	// Confirm lets the equipment writes a step waits for go ahead.
	Confirm(ctx context.Context, id int64, step, by, note string) (*playbook.Incident, error)
}

// Rules is everything the rules endpoints need.
type Rules struct {
	Alarms       AlarmReader
	AlarmActions AlarmActions
	History      AlarmHistory
	WorkOrders   WorkOrderActions
	Orders       WorkOrderReader
	Reports      Reports
}

// Incidents is everything the incident endpoints need.
type Incidents struct {
	Read  IncidentReader
	Act   IncidentActions
	Steps StepActions
}
