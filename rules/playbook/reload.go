package playbook

import (
	"sort"

	"github.com/propgate/gateway/collectors"
)

// SetPlaybooks replaces the definitions on a config reload, under the
// runner's lock. Open incidents go on where they are: each is reconciled
// with its playbook as defined now, as at start (steps matched by id, new
// steps appended waiting, removed steps kept in the record and no longer
// driven, every change noted on its timeline); an incident whose playbook
// is gone is closed with a note. It returns the ids of the incidents it
// closed. assets are the running ones (names and locations may have
// changed). The playbooks must have been validated.
func (r *Runner) SetPlaybooks(playbooks []Playbook, assets []collectors.Asset) (closed []int64) {
	byID := make(map[string]*Playbook, len(playbooks))
	list := make([]*Playbook, 0, len(playbooks))
	for i := range playbooks {
		p := &playbooks[i]
		p.SetDefaults()
		byID[p.ID] = p
		list = append(list, p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.playbooks, r.list, r.assets = byID, list, assets
	for id, in := range r.open {
		if !r.reconcileDefinition(in) {
			delete(r.open, id)
			closed = append(closed, id)
		}
	}
	now := r.now()
	for _, p := range r.list {
		if _, ok := r.lastRun[p.ID]; !ok && p.Trigger.Every > 0 {
			r.lastRun[p.ID] = now // a new scheduled playbook: first run one interval from now
		}
	}
	sort.Slice(closed, func(i, j int) bool { return closed[i] < closed[j] })
	return closed
}
