package alerts

import "time"

// Targets lists the ids of the people a level's notify list reaches at now.
func (r *Router) Targets(list []string, now time.Time) []string {
	var ids []string
	for _, p := range r.targets(list, now) {
		ids = append(ids, p.ID)
	}
	return ids
}
