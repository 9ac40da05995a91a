package playbook_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	. "github.com/propgate/gateway/rules/playbook"
)

// A config reload hands the running runner edited playbooks: the open
// incidents stay open under the same ids with their steps' progress (a new
// step appended, a removed step kept in the record and no longer driven),
// an incident whose playbook was deleted is closed with a note, and a new
// playbook can be started at once.
func TestSetPlaybooksKeepsOpenIncidents(t *testing.T) {
	c := newClock()
	state := collectors.NewState(siteAssets)
	h := newRunner(t, filepath.Join(t.TempDir(), "gw.db"), c, state)
	outageSite(h)
	h.r.Trigger(fired("mains-lost:b3-panel", "mains-lost", "b3-panel"))
	ins, _ := h.r.Incidents(bg, true)
	var outage, lift *Incident
	for _, in := range ins {
		switch in.Playbook {
		case "outage":
			outage = in
		case "entrapment":
			lift = in
		}
	}
	if outage == nil || lift == nil {
		t.Fatalf("incidents %+v", ins)
	}
	classified := outage.Step("classify").Status

	pbs := testPlaybooks()
	out := &pbs[0]
	out.Steps = append(out.Steps, Step{ID: "announce", Title: "Announce on the PA", Role: "security", Deadline: time.Minute})
	for i, st := range out.Steps {
		if st.ID == "call-utility" {
			out.Steps = append(out.Steps[:i], out.Steps[i+1:]...)
			break
		}
	}
	for i := range out.Steps { // check-lifts spawned entrapment, which goes
		out.Steps[i].Action = nil
	}
	drill := Playbook{ID: "gas-leak", Name: "Gas leak", Steps: []Step{{ID: "evacuate", Title: "Evacuate", Role: "security", Deadline: time.Minute}}}
	pbs = []Playbook{pbs[0], pbs[2], drill}
	ids := map[string]bool{"outage": true, "flooding": true, "gas-leak": true}
	for i := range pbs {
		pbs[i].SetDefaults()
		if err := pbs[i].Validate(ids, map[string]bool{"mains-lost": true, "trapped": true}); err != nil {
			t.Fatal(err)
		}
	}
	closed := h.r.SetPlaybooks(pbs, siteAssets)
	if fmt.Sprint(closed) != fmt.Sprint([]int64{lift.ID}) {
		t.Fatalf("closed %v, want the entrapment incident %d", closed, lift.ID)
	}
	c.advance(2 * time.Minute)
	h.r.Tick()

	got, err := h.r.Incident(bg, outage.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "open" || got.Step("classify").Status != classified {
		t.Fatalf("outage after reload: %s, classify %s (was %s)", got.Status, got.Step("classify").Status, classified)
	}
	if st := got.Step("announce"); st == nil || st.Status != StepActive {
		t.Fatalf("new step: %+v", st)
	}
	if st := got.Step("call-utility"); st == nil || !st.Removed {
		t.Fatalf("removed step not kept as removed: %+v", st)
	}
	l, err := h.r.Incident(bg, lift.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Status != "closed" || !strings.Contains(fmt.Sprint(l.Timeline), `playbook "entrapment" is no longer configured`) {
		t.Fatalf("orphaned incident: %s %v", l.Status, l.Timeline)
	}
	if _, ok := h.r.Playbook("gas-leak"); !ok {
		t.Fatal("the new playbook is not there")
	}
	if _, err := h.r.Start(bg, "gas-leak", "", false, "wang.li"); err != nil {
		t.Fatalf("starting the new playbook: %v", err)
	}
	if _, err := h.r.Start(bg, "entrapment", "b3-lift-1", false, "wang.li"); err == nil {
		t.Fatal("the removed playbook could still be started")
	}
}
