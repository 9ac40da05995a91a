package playbook

import (
	"fmt"

	"github.com/propgate/gateway/internal/cfgerr"
)

var _ Action = (*SpawnAction)(nil)

// Validate implements Action.
func (sp *SpawnAction) Validate(path string, playbooks map[string]bool) error {
	if !playbooks[sp.Playbook] {
		return cfgerr.Errorf(path+".start_playbook.playbook", "%q is not a playbook; fix: the id of a file in the playbooks folder", sp.Playbook)
	}
	if sp.ForEach != nil {
		if sp.ForEach.Kind == "" {
			return cfgerr.Errorf(path+".start_playbook.for_each.kind", "is required")
		}
		if err := validConditions(path+".start_playbook.for_each.when_any", sp.ForEach.WhenAny, false); err != nil {
			return err
		}
	}
	return nil
}

// Perform implements Action: it starts the child playbook for the
// incident's asset. With for_each, the runner starts one per matching asset
// on every tick while the step is open (spawn), not here.
func (sp *SpawnAction) Perform(x *Exec) error {
	if sp.ForEach != nil {
		return nil
	}
	child, ok := x.r.playbooks[sp.Playbook]
	if !ok {
		return nil
	}
	if _, err := x.r.startLocked(child, x.in.Asset, x.in.Drill, ByEngine, fmt.Sprintf("started by incident %d (%s)", x.in.ID, x.in.Name), x.in.ID, nil); err != nil {
		return fmt.Errorf("start playbook: %w", err)
	}
	return nil
}
