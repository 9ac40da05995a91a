package alerts_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
)

// roster is the stored duty roster as the router sees it.
type roster map[string]string

func (r roster) OnCall(team string, now time.Time) (string, time.Time, bool) {
	p, ok := r[team]
	return p, now.Add(time.Hour), ok
}

// With a duty roster the router notifies whom the roster has on call (an
// admin's edit in the console), and falls back to the config's rotation
// for teams the roster does not know.
func TestRouterUsesTheDutyRoster(t *testing.T) {
	store, err := sqlite.OpenAlerts(filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Teams = append(cfg.Teams, alerts.Team{ID: "management", Name: "Management", Rotation: alerts.Rotation{Members: []string{"boss"}, Start: t0, Shift: 24 * time.Hour, TimeZone: "Asia/Shanghai"}})
	now := func() time.Time { return t0 }
	plain, err := alerts.NewRouter(cfg, alerts.Deps{Alarms: &fakeAlarms{alarms: map[string]*rules.Alarm{}}, Store: store, Links: store, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got := plain.Targets([]string{"team:engineering"}, t0); !slices.Equal(got, []string{"wang"}) {
		t.Fatalf("config rotation: %v", got)
	}
	r, err := alerts.NewRouter(cfg, alerts.Deps{Alarms: &fakeAlarms{alarms: map[string]*rules.Alarm{}}, Store: store, Links: store, Now: now,
		Roster: roster{"engineering": "li"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Targets([]string{"team:engineering", "team:management"}, t0); !slices.Equal(got, []string{"li", "boss"}) {
		t.Fatalf("with the roster: %v", got)
	}
	oc := r.OnCallNow()
	if len(oc) != 2 || oc[0].Person != "li" || oc[0].Name != "Li Ming" || !oc[0].Until.Equal(t0.Add(time.Hour)) || oc[1].Person != "boss" {
		t.Fatalf("on call now: %+v", oc)
	}
}
