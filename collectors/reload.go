package collectors

// Relabel updates the names and locations (name, building, floor,
// location, stale_after) of declared assets on a config reload; the set of
// assets and their kinds stay as they are (those need a restart: the
// collectors, the queue and the series keys are built from them). It
// returns how many assets changed.
func (s *State) Relabel(assets []Asset) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range assets {
		e, ok := s.assets[a.ID]
		if !ok || e.asset.Kind != a.Kind || e.asset == a {
			continue
		}
		e.asset = a
		n++
	}
	return n
}
