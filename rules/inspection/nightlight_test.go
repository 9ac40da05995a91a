package inspection_test

import (
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/inspection"
)

// Sunset and sunrise in Shanghai (31.23 N, 121.47 E) from NOAA's solar
// calculator: 21 June 2026 04:50 / 19:01, 21 December 2026 06:51 / 16:54
// (China Standard Time). The elevation crosses -0.833° within minutes of them.
func TestSunElevationMatchesNOAATimes(t *testing.T) {
	const lat, lon = 31.23, 121.47
	for _, c := range []struct {
		name string
		at   time.Time
	}{
		{"summer sunset", time.Date(2026, 6, 21, 19, 1, 0, 0, shanghai)},
		{"summer sunrise", time.Date(2026, 6, 21, 4, 50, 0, 0, shanghai)},
		{"winter sunset", time.Date(2026, 12, 21, 16, 54, 0, 0, shanghai)},
		{"winter sunrise", time.Date(2026, 12, 21, 6, 51, 0, 0, shanghai)},
	} {
		before, after := inspection.SunElevation(c.at.Add(-4*time.Minute), lat, lon), inspection.SunElevation(c.at.Add(4*time.Minute), lat, lon)
		if (before+0.833)*(after+0.833) >= 0 {
			t.Errorf("%s: elevation %.3f → %.3f does not cross -0.833 within 4 minutes of %s", c.name, before, after, c.at.Format("15:04"))
		}
	}
	if e := inspection.SunElevation(time.Date(2026, 6, 21, 12, 0, 0, 0, shanghai), lat, lon); e < 80 || e > 83 {
		t.Errorf("summer noon elevation %.2f, want about 82", e)
	}
}

// The night watch reports a circuit off at night (the lighting rule then
// alarms at medium priority), not by day.
func TestNightWatchAlarmsOnlyAtNight(t *testing.T) {
	rule := rules.Rule{ID: "lighting-off", Target: rules.Target{Kind: "lighting"}, Field: inspection.NightField,
		State: &rules.StateMatch{Equals: true}, Priority: rules.Medium}
	s := newSite(t, assets, []rules.Rule{rule}, time.Date(2026, 11, 23, 14, 0, 0, 0, shanghai))
	cfg := inspection.Config{NightLighting: &inspection.NightLighting{Latitude: 31.23, Longitude: 121.47}}
	cfg.SetDefaults()
	if err := cfg.Validate(func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	w := inspection.NewNightWatch(*cfg.NightLighting, assets, s.State, s.Pipeline, s.Log, s.Clock.Now)
	s.Set("lobby", "on", collectors.Bool(false))
	s.Set("garage", "on", collectors.Bool(true))
	w.Check()
	if a := s.Alarm(t, "lighting-off:lobby"); a.State != rules.StateNormal {
		t.Fatalf("by day (14:00): %s", a.State)
	}
	s.Clock.Set(time.Date(2026, 11, 23, 20, 0, 0, 0, shanghai))
	w.Check()
	if a := s.Alarm(t, "lighting-off:lobby"); a.State != rules.StateUnacked || a.Priority != rules.Medium {
		t.Fatalf("at night (20:00), lobby off: %s %s", a.State, a.Priority)
	}
	if a := s.Alarm(t, "lighting-off:garage"); a.State != rules.StateNormal {
		t.Fatalf("at night, garage on: %s", a.State)
	}
}
