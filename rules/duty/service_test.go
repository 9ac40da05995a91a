package duty_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

var shanghai = func() *time.Location { l, _ := time.LoadLocation("Asia/Shanghai"); return l }()

// clock is an injected, settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type alarms []rules.Alarm

func (a alarms) Alarms(f func(*rules.Alarm) bool) []rules.Alarm {
	var out []rules.Alarm
	for i := range a {
		if f(&a[i]) {
			out = append(out, a[i])
		}
	}
	return out
}

type incidents []*playbook.Incident

func (in incidents) Incidents(context.Context, bool) ([]*playbook.Incident, error) { return in, nil }

type planned []duty.PlannedWork

func (p planned) InProgress(context.Context, time.Time) ([]duty.PlannedWork, error) { return p, nil }

func seed() []duty.Team {
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, shanghai)
	return []duty.Team{
		{ID: "engineering", Name: "工程部", Rotation: duty.Rotation{Members: []string{"wang.li", "zhang.wei"}, Start: start, Shift: duty.Duration(24 * time.Hour), TimeZone: "Asia/Shanghai"}},
		{ID: "security", Name: "保安部", Rotation: duty.Rotation{Members: []string{"zhao.gang"}, Start: start, Shift: duty.Duration(24 * time.Hour), TimeZone: "Asia/Shanghai"}},
	}
}

var people = map[string]string{"wang.li": "王立", "zhang.wei": "张伟", "zhao.gang": "赵刚", "li.ming": "李明"}

type fixture struct {
	clk    *clock
	rules  *sqlite.Rules
	store  *sqlite.Duty
	orders *workorder.Service
	svc    *duty.Service
	path   string
	told   observed
}

// observed keeps what the service told its observer (the bus).
type observed struct{ hs []duty.Handover }

func (o *observed) HandoverChanged(h duty.Handover) { o.hs = append(o.hs, h) }

func newFixture(t *testing.T, src duty.Sources, seedTeams []duty.Team) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{time.Date(2026, 11, 23, 7, 30, 0, 0, shanghai)}, path: filepath.Join(t.TempDir(), "rules.db")}
	f.open(t, src, seedTeams)
	return f
}

func (f *fixture) open(t *testing.T, src duty.Sources, seedTeams []duty.Team) {
	t.Helper()
	var err error
	if f.rules, err = sqlite.OpenRules(f.path, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rules.Close() })
	if f.store, err = sqlite.NewDuty(f.rules.DB); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.orders = workorder.NewService(workorder.Config{}, []collectors.Asset{{ID: "pump-1", Kind: "pump", Building: "B3"}}, f.rules, log, f.clk.now)
	if src.WorkOrders == nil {
		src.WorkOrders = f.rules
	}
	f.svc = duty.NewService(duty.Deps{Store: f.store, Sources: src, Orders: orders{f.rules, f.orders}, People: people, Seed: seedTeams,
		Required: []string{"engineering"}, Location: shanghai, Log: log, Now: f.clk.now, Observer: &f.told})
	if err := f.svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type orders struct {
	*sqlite.Rules
	*workorder.Service
}

func (o orders) WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error) {
	return o.Rules.WorkOrder(ctx, id)
}

func (o orders) Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error) {
	return o.Service.Create(ctx, w, by)
}

// The config's teams are stored as version 1; who is on duty follows the
// rotation, then an admin's override; a stale edit, a removed required team
// and an unknown person are refused; the roster survives a restart, and a
// team added to the config later is added as a new version.
func TestRosterSeededEditedAndKept(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, duty.Sources{}, seed())
	r := f.svc.Roster()
	if r.Version != 1 || r.By != "config" || len(r.Teams) != 2 {
		t.Fatalf("seeded roster: %+v", r)
	}
	// 2026-11-23 07:30 is before the 08:00 handover: the shift that started
	// 2026-11-22 08:00; day 321 since the start, odd → zhang.wei.
	p, until, ok := f.svc.OnCall("engineering", f.clk.t)
	if !ok || p != "zhang.wei" || !until.Equal(time.Date(2026, 11, 23, 8, 0, 0, 0, shanghai)) {
		t.Fatalf("on call: %s until %s (%v)", p, until, ok)
	}
	if p, _, _ := f.svc.OnCall("engineering", until); p != "wang.li" {
		t.Fatalf("after the handover: %s", p)
	}
	if _, _, ok := f.svc.OnCall("nobody", f.clk.t); ok {
		t.Fatal("unknown team answered")
	}
	// An override: li.ming covers zhang.wei 07:00-12:00.
	teams := r.Teams
	teams[0].Overrides = []duty.Override{{Person: "li.ming", From: time.Date(2026, 11, 23, 7, 0, 0, 0, shanghai), To: time.Date(2026, 11, 23, 12, 0, 0, 0, shanghai), Note: "换班"}}
	if _, err := f.svc.SetRoster(ctx, teams, 0, duty.Who{Username: "admin"}, "stale"); !errors.Is(err, duty.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	if _, err := f.svc.SetRoster(ctx, teams[1:], 1, duty.Who{Username: "admin"}, ""); !errors.Is(err, duty.ErrInvalid) || !strings.Contains(err.Error(), `team "engineering" cannot be removed`) {
		t.Fatalf("required team removed: %v", err)
	}
	bad := f.svc.Roster().Teams
	bad[1].Rotation.Members = []string{"stranger"}
	if _, err := f.svc.SetRoster(ctx, bad, 1, duty.Who{Username: "admin"}, ""); !errors.Is(err, duty.ErrInvalid) || !strings.Contains(err.Error(), `"stranger" is not a person`) {
		t.Fatalf("unknown person: %v", err)
	}
	saved, err := f.svc.SetRoster(ctx, teams, 1, duty.Who{Username: "admin"}, "李明代班")
	if err != nil || saved.Version != 2 || saved.By != "admin" {
		t.Fatalf("save: %+v %v", saved, err)
	}
	if p, until, _ := f.svc.OnCall("engineering", f.clk.t); p != "li.ming" || until.Hour() != 12 {
		t.Fatalf("override: %s until %s", p, until)
	}
	// Before the override starts the rotation's shift ends at its start.
	if _, until, _ := f.svc.OnCall("engineering", time.Date(2026, 11, 23, 6, 0, 0, 0, shanghai)); until.Hour() != 7 {
		t.Fatalf("shift before an override ends at %s", until)
	}
	onDuty := f.svc.OnDuty(f.clk.t)
	if len(onDuty) != 2 || onDuty[0].Name != "李明" || !onDuty[0].Override {
		t.Fatalf("on duty: %+v", onDuty)
	}

	// Restart with a config that gained a team.
	f.rules.Close()
	more := append(seed(), duty.Team{ID: "service", Name: "客服", Rotation: duty.Rotation{Members: []string{"li.ming"}, Start: time.Date(2026, 1, 5, 8, 0, 0, 0, shanghai), Shift: duty.Duration(24 * time.Hour), TimeZone: "Asia/Shanghai"}})
	f.open(t, duty.Sources{}, more)
	r = f.svc.Roster()
	if r.Version != 3 || len(r.Teams) != 3 || r.Teams[0].Overrides[0].Person != "li.ming" || !strings.Contains(r.Note, "service") {
		t.Fatalf("after restart: %+v", r)
	}
	vs, err := f.svc.RosterVersions(ctx, 10)
	if err != nil || len(vs) != 3 || vs[1].Note != "李明代班" {
		t.Fatalf("versions: %v %v", vs, err)
	}
}

// A handover with open items round-trips through both signatures: the
// summary names the unacknowledged alarm, the shelved one with who and
// until when, the incident's current step, the overdue work order, the
// planned work and the shift's log; it is stored as it was; the outgoing
// person cannot accept their own handover, nor is it accepted twice.
func TestHandoverRoundTrip(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 7, 30, 0, 0, shanghai)
	shelvedUntil := now.Add(2 * time.Hour)
	al := alarms{
		{ID: "low-pressure:pump-1", Rule: "low-pressure", Asset: "pump-1", Name: "Low pressure", NameZH: "供水压力低", Priority: "high", State: rules.StateUnacked, Since: now.Add(-time.Hour), Active: true},
		{ID: "leak:b3", Rule: "leak", Asset: "b3", Name: "Leak", Priority: "critical", State: rules.StateShelved, Since: now.Add(-30 * time.Minute), ShelvedUntil: shelvedUntil},
		{ID: "ok:x", Rule: "ok", Asset: "x", State: rules.StateNormal},
	}
	in := incidents{{ID: 7, Playbook: "flooding", Name: "水浸", Asset: "b3", Started: now.Add(-40 * time.Minute), Status: "open", Steps: []playbook.StepState{
		{ID: "report", Title: "Report", Status: playbook.StepDone},
		{ID: "lifts", Title: "Lifts up", TitleZH: "电梯升至最高层并断电", Status: playbook.StepActive, Due: now.Add(5 * time.Minute)},
	}}}
	f := newFixture(t, duty.Sources{Alarms: al, History: historyFor("leak:b3", "zhang.wei", "换泵期间"), Incidents: in,
		PlannedWorks: planned{{ID: 3, Title: "3号楼计划停电", Start: now.Add(-time.Hour), End: now.Add(3 * time.Hour)}}}, seed())
	// An order opened yesterday, overdue now (24 h default resolution).
	f.clk.t = now.Add(-26 * time.Hour)
	wo, err := f.orders.Create(ctx, workorder.WorkOrder{Category: "plumbing", Priority: "medium", Description: "3-201 漏水"}, "wang.li")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.t = now.Add(-10 * time.Minute)
	at := now.Add(-20 * time.Minute)
	if _, err := f.svc.Write(ctx, duty.EntryInput{At: &at, Kind: duty.KindCall, Caller: "3-201 刘女士", Text: "卫生间漏水", WorkOrder: wo.ID}, duty.Who{Username: "zhang.wei"}); err != nil {
		t.Fatal(err)
	}
	f.clk.t = now

	out := duty.Who{Username: "zhang.wei", Name: "张伟"}
	h, err := f.svc.Sign(ctx, "engineering", "2号泵异响，请关注", out)
	if err != nil {
		t.Fatal(err)
	}
	s := h.Summary
	if h.Status != duty.Signed || h.Outgoing.By != "zhang.wei" || !h.Outgoing.At.Equal(now) || h.Rostered != "zhang.wei" || h.Next != "wang.li" ||
		!h.ShiftEnd.Equal(time.Date(2026, 11, 23, 8, 0, 0, 0, shanghai)) {
		t.Fatalf("handover: %+v", h)
	}
	if len(s.Alarms) != 1 || s.Alarms[0].ID != "low-pressure:pump-1" {
		t.Fatalf("alarms: %+v", s.Alarms)
	}
	if len(s.Masked) != 1 || s.Masked[0].By != "zhang.wei" || s.Masked[0].Note != "换泵期间" || !s.Masked[0].Until.Equal(shelvedUntil) {
		t.Fatalf("shelved: %+v", s.Masked)
	}
	if len(s.Incidents) != 1 || len(s.Incidents[0].Current) != 1 || s.Incidents[0].Current[0].TitleZH != "电梯升至最高层并断电" || s.Incidents[0].Done != 1 {
		t.Fatalf("incidents: %+v", s.Incidents)
	}
	if len(s.WorkOrders) != 1 || !s.WorkOrders[0].Overdue || s.WorkOrders[0].ID != wo.ID {
		t.Fatalf("work orders: %+v", s.WorkOrders)
	}
	if len(s.PlannedWorks) != 1 || len(s.Log) != 1 || s.Log[0].Caller != "3-201 刘女士" {
		t.Fatalf("planned works %+v, log %+v", s.PlannedWorks, s.Log)
	}
	if _, err := f.svc.Sign(ctx, "engineering", "", duty.Who{Username: "wang.li"}); !errors.Is(err, duty.ErrConflict) {
		t.Fatalf("second pending handover: %v", err)
	}
	if _, err := f.svc.Accept(ctx, h.ID, "", out); !errors.Is(err, duty.ErrInvalid) {
		t.Fatalf("self-acceptance: %v", err)
	}
	f.clk.t = now.Add(25 * time.Minute)
	got, err := f.svc.Accept(ctx, h.ID, "已了解", duty.Who{Username: "wang.li", Name: "王立"})
	if err != nil || got.Status != duty.Accepted || got.Incoming.By != "wang.li" || !got.Incoming.At.Equal(f.clk.t) {
		t.Fatalf("accept: %+v %v", got, err)
	}
	if _, err := f.svc.Accept(ctx, h.ID, "", duty.Who{Username: "li.ming"}); !errors.Is(err, duty.ErrConflict) {
		t.Fatalf("accepted twice: %v", err)
	}
	if _, err := f.svc.Accept(ctx, 999, "", duty.Who{Username: "li.ming"}); !errors.Is(err, duty.ErrNotFound) {
		t.Fatalf("no such handover: %v", err)
	}
	// The observer (the bus: replication to the center) was told of the
	// signing and the acceptance, stored, and of nothing refused.
	if hs := f.told.hs; len(hs) != 2 || hs[0].ID != h.ID || hs[0].Status != duty.Signed || hs[1].Status != duty.Accepted ||
		hs[1].Incoming == nil || hs[1].Incoming.By != "wang.li" || !hs[1].Incoming.At.Equal(f.clk.t) {
		t.Fatalf("observer told %+v", hs)
	}
	// Stored as it was: the snapshot, both signatures.
	al[0].State = rules.StateNormal
	back, err := f.svc.Handover(ctx, h.ID)
	if err != nil || back.Incoming == nil || back.Incoming.Note != "已了解" || back.Outgoing.By != "zhang.wei" || back.Remarks != "2号泵异响，请关注" ||
		len(back.Summary.Alarms) != 1 || back.Summary.Open() != s.Open() {
		t.Fatalf("stored: %+v %v", back, err)
	}
	// Searchable by date (in Shanghai) and words.
	from, to, _ := f.svc.Day("2026-11-23")
	if hs, _ := f.svc.Handovers(ctx, duty.Query{From: from, To: to}); len(hs) != 1 {
		t.Fatalf("by date: %d", len(hs))
	}
	from, to, _ = f.svc.Day("2026-11-22")
	if hs, _ := f.svc.Handovers(ctx, duty.Query{From: from, To: to}); len(hs) != 0 {
		t.Fatalf("the day before: %d", len(hs))
	}
	if hs, _ := f.svc.Handovers(ctx, duty.Query{Text: "异响"}); len(hs) != 1 {
		t.Fatalf("by words: %d", len(hs))
	}
	// The next handover's log starts at this one's signing.
	f.clk.t = now.Add(time.Hour)
	d, err := f.svc.Draft(ctx, "engineering", duty.Who{Username: "wang.li"})
	if err != nil || len(d.Summary.Log) != 0 || d.Rostered != "wang.li" {
		t.Fatalf("next draft: %+v %v", d, err)
	}
}

type history map[string][]rules.Transition

func (h history) AlarmHistory(_ context.Context, id string) ([]rules.Transition, error) {
	return h[id], nil
}

func historyFor(id, by, note string) history {
	return history{id: {{AlarmID: id, To: rules.StateUnacked, By: rules.ByEngine}, {AlarmID: id, To: rules.StateShelved, By: by, Note: note}}}
}

// Duty-log times are when it happened: required unless the person says
// "now"; never in the future; searchable by the day it happened; a call
// can open a work order with the caller as its reporter.
func TestDutyLogTimes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, duty.Sources{}, seed())
	who := duty.Who{Username: "wang.li", Name: "王立"}
	if _, err := f.svc.Write(ctx, duty.EntryInput{Kind: duty.KindPatrol, Text: "地下车库巡逻正常"}, who); !errors.Is(err, duty.ErrInvalid) || !strings.Contains(err.Error(), "at is required") {
		t.Fatalf("no time: %v", err)
	}
	e, err := f.svc.Write(ctx, duty.EntryInput{AtNow: true, Kind: duty.KindPatrol, Text: "地下车库巡逻正常"}, who)
	if err != nil || !e.At.Equal(f.clk.t) || e.Author != "wang.li" {
		t.Fatalf("at now: %+v %v", e, err)
	}
	late := time.Date(2026, 11, 22, 23, 50, 0, 0, shanghai) // yesterday, written this morning
	if e, err = f.svc.Write(ctx, duty.EntryInput{At: &late, Kind: duty.KindCall, Caller: "5-1102 王先生 139xxxx", Text: "楼道灯不亮",
		NewWorkOrder: &duty.NewWorkOrder{Category: "lighting", Location: "5号楼11层"}}, who); err != nil {
		t.Fatal(err)
	}
	if !e.At.Equal(late) || !e.Recorded.Equal(f.clk.t) || e.WorkOrder == 0 {
		t.Fatalf("entry: %+v", e)
	}
	w, _, err := f.rules.WorkOrder(ctx, e.WorkOrder)
	if err != nil || w.Reporter != "5-1102 王先生 139xxxx" || w.Description != "楼道灯不亮" || w.Status != workorder.Opened {
		t.Fatalf("opened order: %+v %v", w, err)
	}
	future := f.clk.t.Add(time.Hour)
	for name, in := range map[string]duty.EntryInput{
		"future":     {At: &future, Kind: duty.KindNote, Text: "x"},
		"both times": {At: &late, AtNow: true, Kind: duty.KindNote, Text: "x"},
		"kind":       {AtNow: true, Kind: "gossip", Text: "x"},
		"no text":    {AtNow: true, Kind: duty.KindNote, Text: "  "},
		"no order":   {AtNow: true, Kind: duty.KindCall, Text: "x", WorkOrder: 999},
		"team":       {AtNow: true, Kind: duty.KindCall, Text: "x", Team: "kitchen"},
	} {
		if _, err := f.svc.Write(ctx, in, who); !errors.Is(err, duty.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	from, to, _ := f.svc.Day("2026-11-22")
	es, err := f.svc.Entries(ctx, duty.Query{From: from, To: to})
	if err != nil || len(es) != 1 || es[0].Text != "楼道灯不亮" {
		t.Fatalf("yesterday: %+v %v", es, err)
	}
	if es, _ := f.svc.Entries(ctx, duty.Query{Text: "1102"}); len(es) != 1 {
		t.Fatalf("by caller: %d", len(es))
	}
	if es, _ := f.svc.Entries(ctx, duty.Query{Text: "%"}); len(es) != 0 {
		t.Fatalf("%% is not a wildcard: %d", len(es))
	}
	if _, _, err := f.svc.Day("23/11/2026"); !errors.Is(err, duty.ErrInvalid) {
		t.Fatalf("bad date: %v", err)
	}
}
