package duty

import (
	"testing"
	"time"
)

// The rotation's arithmetic, before and after its start, at the edges.
func TestRotationAt(t *testing.T) {
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	tm := Team{ID: "e", Rotation: Rotation{Members: []string{"a", "b", "c"}, Start: start, Shift: Duration(24 * time.Hour)}}
	for _, c := range []struct {
		at     time.Time
		person string
		from   time.Time
	}{
		{start, "a", start},
		{start.Add(24*time.Hour - time.Nanosecond), "a", start},
		{start.Add(24 * time.Hour), "b", start.Add(24 * time.Hour)},
		{start.Add(72 * time.Hour), "a", start.Add(72 * time.Hour)},
		{start.Add(-time.Nanosecond), "c", start.Add(-24 * time.Hour)},
		{start.Add(-24 * time.Hour), "c", start.Add(-24 * time.Hour)},
		{start.Add(-25 * time.Hour), "b", start.Add(-48 * time.Hour)},
	} {
		s := tm.At(c.at)
		if s.Person != c.person || !s.From.Equal(c.from) || !s.Until.Equal(c.from.Add(24*time.Hour)) {
			t.Errorf("at %s: %+v, want %s from %s", c.at, s, c.person, c.from)
		}
	}
}
