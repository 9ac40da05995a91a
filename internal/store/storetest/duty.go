package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/propgate/gateway/rules/duty"
)

// Duty runs the duty-store suite (roster versions, handovers, the duty
// log); open gives a fresh store.
func Duty(t *testing.T, open func(t *testing.T) duty.Store) {
	t.Run("RosterVersions", func(t *testing.T) { rosterVersions(t, open(t)) })
	t.Run("Handovers", func(t *testing.T) { handovers(t, open(t)) })
	t.Run("LogEntries", func(t *testing.T) { logEntries(t, open(t)) })
}

func rosterVersions(t *testing.T, s duty.Store) {
	ctx := t.Context()
	if _, err := s.Roster(ctx); !errors.Is(err, duty.ErrNotFound) {
		t.Fatalf("before the first roster: %v", err)
	}
	for v := 1; v <= 3; v++ {
		if err := s.SaveRoster(ctx, &duty.Roster{Version: v, Updated: at(int64(v)), By: "admin"}); err != nil {
			t.Fatal(err)
		}
	}
	// Two people saving version 3 at once: the second is refused.
	if err := s.SaveRoster(ctx, &duty.Roster{Version: 3, Updated: at(9), By: "late"}); !errors.Is(err, duty.ErrConflict) {
		t.Fatalf("a second version 3: %v", err)
	}
	r, err := s.Roster(ctx)
	if err != nil || r.Version != 3 || r.By != "admin" || !r.Updated.Equal(at(3)) {
		t.Fatalf("newest: %+v %v", r, err)
	}
	if vs, err := s.RosterVersions(ctx, 2); err != nil || len(vs) != 2 || vs[0].Version != 3 || vs[1].Version != 2 {
		t.Fatalf("versions: %+v %v", vs, err)
	}
}

func handovers(t *testing.T, s duty.Store) {
	ctx := t.Context()
	mk := func(team, remarks string, signed time.Time) *duty.Handover {
		return &duty.Handover{Team: team, TeamName: "工程部", Remarks: remarks, Status: duty.Signed,
			Outgoing: duty.Signature{By: "wang.li", Name: "王丽", At: signed}}
	}
	a := mk("engineering", "2号楼水泵异响，已报修 100%", at(0))
	b := mk("security", "3号门门禁故障", at(60_000))
	c := mk("engineering", "无异常", at(120_000))
	for _, h := range []*duty.Handover{a, b, c} {
		if err := s.AddHandover(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if a.ID <= 0 || b.ID <= a.ID || c.ID <= b.ID {
		t.Fatalf("ids %d %d %d", a.ID, b.ID, c.ID)
	}
	in := duty.Signature{By: "zhang.wei", Name: "张伟", At: at(130_000), Note: "已接班"}
	if err := s.AcceptHandover(ctx, a.ID, in); err != nil {
		t.Fatal(err)
	}
	if err := s.AcceptHandover(ctx, a.ID, in); !errors.Is(err, duty.ErrConflict) {
		t.Fatalf("accepted twice: %v", err)
	}
	if err := s.AcceptHandover(ctx, 99999, in); !errors.Is(err, duty.ErrNotFound) {
		t.Fatalf("accepting none: %v", err)
	}
	got, err := s.Handover(ctx, a.ID)
	if err != nil || got.Status != duty.Accepted || got.Incoming == nil || got.Incoming.Name != "张伟" || !got.Incoming.At.Equal(at(130_000)) || got.Remarks != a.Remarks {
		t.Fatalf("accepted handover: %+v %v", got, err)
	}
	if _, err := s.Handover(ctx, 99999); !errors.Is(err, duty.ErrNotFound) {
		t.Fatalf("no such handover: %v", err)
	}
	list := func(q duty.Query) string {
		t.Helper()
		hs, err := s.Handovers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hs {
			out = append(out, h.Remarks)
		}
		return fmt.Sprint(out)
	}
	for _, c := range []struct {
		name string
		q    duty.Query
		want string
	}{
		{"all, newest first", duty.Query{}, "[无异常 3号门门禁故障 2号楼水泵异响，已报修 100%]"},
		{"pending", duty.Query{Pending: true}, "[无异常 3号门门禁故障]"},
		{"team", duty.Query{Team: "engineering"}, "[无异常 2号楼水泵异响，已报修 100%]"},
		{"signed in [1m, 2m)", duty.Query{From: at(60_000), To: at(120_000)}, "[3号门门禁故障]"},
		{"text", duty.Query{Text: "水泵"}, "[2号楼水泵异响，已报修 100%]"},
		{"text with % is literal", duty.Query{Text: "100%"}, "[2号楼水泵异响，已报修 100%]"},
		{"text with _ is literal", duty.Query{Text: "_"}, "[]"},
		{"limit", duty.Query{Limit: 1}, "[无异常]"},
	} {
		if got := list(c.q); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func logEntries(t *testing.T, s duty.Store) {
	ctx := t.Context()
	// Entered out of order: listed by when it happened, newest first.
	for i, e := range []*duty.Entry{
		{At: at(30_000), Recorded: at(31_000), Kind: duty.KindCall, Team: "engineering", Author: "wang.li", Caller: "1203室 李女士 139****0000", Text: "卫生间漏水"},
		{At: at(10_000), Recorded: at(40_000), Kind: duty.KindPatrol, Team: "security", Author: "zhao.gang", Text: "地下车库巡逻正常"},
		{At: at(20_000), Recorded: at(41_000), Kind: duty.KindReport, Team: "engineering", Author: "wang.li", Text: "电梯按钮失灵", WorkOrder: 7},
	} {
		if err := s.AddEntry(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.ID <= 0 {
			t.Fatalf("entry %d: no id", i)
		}
	}
	list := func(q duty.Query) string {
		t.Helper()
		es, err := s.Entries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Text)
		}
		return fmt.Sprint(out)
	}
	for _, c := range []struct {
		name string
		q    duty.Query
		want string
	}{
		{"all", duty.Query{}, "[卫生间漏水 电梯按钮失灵 地下车库巡逻正常]"},
		{"team", duty.Query{Team: "engineering"}, "[卫生间漏水 电梯按钮失灵]"},
		{"at in [10s, 30s)", duty.Query{From: at(10_000), To: at(30_000)}, "[电梯按钮失灵 地下车库巡逻正常]"},
		{"text finds the caller too", duty.Query{Text: "李女士"}, "[卫生间漏水]"},
		{"limit", duty.Query{Limit: 2}, "[卫生间漏水 电梯按钮失灵]"},
	} {
		if got := list(c.q); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	es, _ := s.Entries(ctx, duty.Query{Text: "电梯"})
	if len(es) != 1 || es[0].WorkOrder != 7 || es[0].Kind != duty.KindReport || !es[0].Recorded.Equal(at(41_000)) || es[0].Author != "wang.li" {
		t.Fatalf("entry read back: %+v", es)
	}
}
