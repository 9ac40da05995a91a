package playbook

import (
	"fmt"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/workorder"
)

var _ Action = (*WorkOrderAction)(nil)

// Validate implements Action.
func (w *WorkOrderAction) Validate(path string, _ map[string]bool) error {
	if w.Category == "" {
		return cfgerr.Errorf(path+".workorder.category", "is required")
	}
	if w.Priority != "" && !w.Priority.Valid() {
		return cfgerr.Errorf(path+".workorder.priority", "%q is not a priority", w.Priority)
	}
	return nil
}

// Perform implements Action: it opens a work order for the incident's asset.
func (w *WorkOrderAction) Perform(x *Exec) error {
	if x.r.workorders == nil {
		return fmt.Errorf("work order: no work-order service configured")
	}
	desc := w.Description
	if desc == "" {
		desc = x.st.Title
	}
	pr := w.Priority
	if pr == "" {
		pr = rules.High
	}
	wo, err := x.r.workorders.Create(x.ctx, workorder.WorkOrder{Category: w.Category, Asset: x.in.Asset, Location: x.in.Location, Priority: pr,
		Description: fmt.Sprintf("%s (incident %d, %s)", desc, x.in.ID, x.in.Name), Reporter: "playbook " + x.in.Playbook, Drill: x.in.Drill}, "playbook "+x.in.Playbook)
	if err != nil {
		return fmt.Errorf("work order: %w", err)
	}
	x.in.WorkOrders = append(x.in.WorkOrders, wo.ID) // bounded: one per step's action
	x.log("opened work order %d (%s)", wo.ID, w.Category)
	return nil
}
