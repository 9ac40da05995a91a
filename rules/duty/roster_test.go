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

// The schedule walks the rotation and the overrides, clipped to the range.
func TestSchedule(t *testing.T) {
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	s := NewService(Deps{People: map[string]string{"a": "甲", "b": "乙", "z": "丙"}})
	s.roster = &Roster{Teams: []Team{{ID: "e", Name: "工程部", Rotation: Rotation{Members: []string{"a", "b"}, Start: start, Shift: Duration(24 * time.Hour)},
		Overrides: []Override{{Person: "z", From: start.Add(30 * time.Hour), To: start.Add(34 * time.Hour)}}}}}
	got := s.Schedule(start.Add(-2*time.Hour), start.Add(48*time.Hour))
	want := []struct {
		who      string
		from, to time.Duration
	}{{"b", -2, 0}, {"a", 0, 24}, {"b", 24, 30}, {"z", 30, 34}, {"b", 34, 48}}
	if len(got) != len(want) {
		t.Fatalf("schedule: %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Person != w.who || !g.From.Equal(start.Add(w.from*time.Hour)) || !g.Until.Equal(start.Add(w.to*time.Hour)) {
			t.Errorf("shift %d: %s %s – %s, want %s %dh – %dh", i, g.Person, g.From, g.Until, w.who, w.from, w.to)
		}
	}
	if got[3].Name != "丙" || !got[3].Override {
		t.Errorf("override shift: %+v", got[3])
	}
}
