package duty_test

import (
	"context"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/internal/testsite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/duty"
)

// The engineering shift ends at 08:00 (张伟 → 王立). No handover by 08:30
// (grace 30m): handover_overdue is 1 and the ordinary rule on it alarms on
// the duty room's asset; the one-person security rotation is never asked.
// 张伟 signs at 08:40: the handover is the ended shift's (not 王立's), the
// alarm returns to normal. The next morning it is due again.
func TestHandoverOverdueAlarms(t *testing.T) {
	ctx := context.Background()
	above0 := 0.0
	assets := []collectors.Asset{{ID: "b3-fire-panel", Kind: "fire_alarm_panel", Name: "3号楼 消防报警主机", Building: "3号楼"}}
	rule := rules.Rule{ID: "handover-overdue", Target: rules.Target{Asset: "b3-fire-panel"}, Field: duty.OverdueField,
		Threshold: &rules.Threshold{Above: &above0}, Priority: rules.Medium}
	site := testsite.New(t, assets, []rules.Rule{rule}, time.Date(2026, 11, 23, 7, 0, 0, 0, shanghai))
	st, err := sqlite.NewDuty(site.DB.DB)
	if err != nil {
		t.Fatal(err)
	}
	svc := duty.NewService(duty.Deps{Store: st, People: people, Seed: seed(), Location: shanghai, Log: site.Log, Now: site.Clock.Now})
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	w := duty.NewWatch(duty.HandoverCheck{Teams: []string{"engineering", "security"}, Grace: 30 * time.Minute, Asset: "b3-fire-panel"},
		svc, "fire_alarm_panel", site.Pipeline, site.Log)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	at := func(day, h, m int) { site.Clock.Set(time.Date(2026, 11, day, h, m, 0, 0, shanghai)) }
	check := func(want int64, state rules.AlarmState) {
		t.Helper()
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if fs, _ := site.State.Get("b3-fire-panel", duty.OverdueField); fs.Value.I != want {
			t.Fatalf("%s: handover_overdue = %v, want %d", site.Clock.Now(), fs.Value, want)
		}
		if a := site.Alarm(t, "handover-overdue:b3-fire-panel"); a.State != state {
			t.Fatalf("%s: alarm %s, want %s", site.Clock.Now(), a.State, state)
		}
	}
	// 07:00: the shift that began yesterday at 08:00 began before the
	// roster existed; nothing is due before 08:30.
	check(0, rules.StateNormal)
	at(23, 8, 20)
	check(0, rules.StateNormal)
	at(23, 8, 31)
	check(1, rules.StateUnacked)
	list, _ := w.Overdue(ctx)
	if len(list) != 1 || list[0].Team != "engineering" || list[0].Outgoing != "zhang.wei" || list[0].IncomingName != "王立" ||
		!list[0].ShiftEnded.Equal(time.Date(2026, 11, 23, 8, 0, 0, 0, shanghai)) {
		t.Fatalf("overdue: %+v", list)
	}
	// 张伟 signs late: it is his ended shift's handover.
	at(23, 8, 40)
	h, err := svc.Sign(ctx, "engineering", "2号泵异响", duty.Who{Username: "zhang.wei", Name: "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Rostered != "zhang.wei" || h.Next != "wang.li" || !h.ShiftEnd.Equal(time.Date(2026, 11, 23, 8, 0, 0, 0, shanghai)) {
		t.Fatalf("late handover: rostered %s, next %s, shift end %s", h.Rostered, h.Next, h.ShiftEnd)
	}
	check(0, rules.StateRTNUnacked)
	if _, err := svc.Accept(ctx, h.ID, "", duty.Who{Username: "wang.li"}); err != nil {
		t.Fatal(err)
	}
	// The next morning 王立's shift has ended; his handover is due.
	at(24, 8, 15)
	check(0, rules.StateRTNUnacked)
	at(24, 8, 45)
	check(1, rules.StateUnacked)
	// The day after, 张伟 signs before his shift ends: nothing due that morning.
	at(25, 7, 50)
	if _, err := svc.Sign(ctx, "engineering", "", duty.Who{Username: "zhang.wei"}); err != nil {
		t.Fatal(err)
	}
	at(25, 8, 45)
	if list, _ := w.Overdue(ctx); len(list) != 0 {
		t.Fatalf("signed before the end: %+v", list)
	}
}
