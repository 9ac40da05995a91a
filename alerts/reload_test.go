package alerts_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/rules"
)

// reload hands the running router a new config, as a SIGHUP does.
func (h *alertHarness) reload(cfg alerts.Config) alerts.Reloaded {
	h.t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	p, err := h.r.Prepare(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.r.Reload(p, testAssetsA)
}

// A reload changes who is told next without restarting the escalation in
// progress: the alert stays at its level (nobody is paged again for level
// 1), the next level goes to the person the new config names, and the
// person removed is not told.
func TestReloadKeepsEscalationState(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	first := h.messages(1)[0]

	cfg := testConfig(h.hook)
	cfg.People = append(cfg.People[:2], alerts.Person{ID: "zhao", Name: "Zhao Lei", Contacts: []alerts.Contact{{Channel: "hook"}}}) // boss left, zhao joined
	cfg.Policies[0].Levels[1].Notify = []string{"person:zhao"}
	if res := h.reload(cfg); len(res.Closed) != 0 {
		t.Fatalf("reload closed %v", res.Closed)
	}
	h.advance(time.Minute) // level 1 still waiting: nothing new
	if got := h.settled(); len(got) != 1 {
		t.Fatalf("after the reload the escalation restarted: %v", got)
	}
	h.advance(4 * time.Minute) // level 2 is due under the new config
	got := h.settled()
	if fmt.Sprint(got) != fmt.Sprint([]string{first, "zhao: 【高·升级报警】pump-fault"}) {
		t.Fatalf("messages: %v", got)
	}
	a := h.stored(alertIDAt(id, t0))
	if a.State != alerts.Firing || a.Level != 1 || !a.Since.Equal(t0) {
		t.Fatalf("alert after the reload: %+v", a)
	}
}

// An escalation the new config no longer routes is closed with a note
// (never left escalating to nobody), and a config whose channel cannot be
// built is refused by Prepare without touching the router.
func TestReloadClosesUnroutedAlertsAndRefusesBadChannels(t *testing.T) {
	h := newAlertHarness(t, nil)
	id := h.fire("pump-fault", "b3-pump", "water_supply", rules.High)
	h.advance(10 * time.Second)
	h.messages(1)

	bad := testConfig(h.hook)
	bad.Channels["sms"] = alerts.ChannelConfig{Type: "carrier-pigeon"}
	bad.SetDefaults()
	if _, err := h.r.Prepare(bad); err == nil || !strings.Contains(err.Error(), "channels.sms") {
		t.Fatalf("Prepare of a bad channel: %v", err)
	}

	cfg := testConfig(h.hook)
	cfg.Policies[0].ID = "lifts-only"
	cfg.Routes = []alerts.Route{{Rules: []string{"elevator-entrapment"}, Policy: "lifts-only"}}
	res := h.reload(cfg)
	if fmt.Sprint(res.Closed) != fmt.Sprint([]string{alertIDAt(id, t0)}) {
		t.Fatalf("closed %v", res.Closed)
	}
	h.advance(time.Hour) // no escalation any more
	if got := h.settled(); len(got) != 1 {
		t.Fatalf("messages after the close: %v", got)
	}
	a := h.stored(alertIDAt(id, t0))
	if a.State != alerts.Closed || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "no route matches: closed") {
		t.Fatalf("alert %+v", a)
	}
}
