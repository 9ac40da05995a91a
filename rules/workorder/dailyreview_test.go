package workorder_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	. "github.com/propgate/gateway/rules/workorder"
)

type sent struct {
	at            time.Time
	to, subj, txt string
}

// outbox records what the review hands to the alert channels.
type outbox struct {
	mu   sync.Mutex
	msgs []sent
}

func (o *outbox) SendPlain(_ context.Context, to, subject, text string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, sent{time.Now(), to, subject, text})
	return nil
}

func (o *outbox) all() []sent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]sent(nil), o.msgs...)
}

// The daily review goes out at 08:30 (the bubble's clock: it starts at
// midnight), to each responsible person with their orders and to the shift
// lead with all of them, and again the next day; not a second earlier.
func TestDailyReviewSentAt0830(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		cfg := Config{Calendar: Calendar{TimeZone: "UTC"}, DailyReview: ReviewConfig{ShiftLead: []string{"team:shift-lead"}}}
		cfg.SetDefaults()
		svc := NewService(cfg, testAssets, store, quietLog(), time.Now)
		mk := func(p rules.Priority, room, assignee string) int64 {
			w, err := svc.Create(bg, WorkOrder{Category: "plumbing", Room: room, Priority: p, Description: "x", CallerPhone: "13812345678"}, "chen.jing")
			if err != nil {
				t.Fatal(err)
			}
			if assignee != "" {
				if _, err := svc.Update(bg, w.ID, Update{Assignee: &assignee}, "chen.jing"); err != nil {
					t.Fatal(err)
				}
			}
			return w.ID
		}
		mk(rules.Low, "3-0101", "wang.li")      // respond in 4 h: late by 08:30
		mk(rules.Low, "3-0102", "")             // the first-responsible person's (chen.jing)
		time.Sleep(8 * time.Hour)               // 08:00
		mk(rules.Medium, "3-0103", "zhang.wei") // in time at 08:30
		reports := NewReports(store, nil, cfg, time.Now)
		out := &outbox{}
		d := NewDailyReview(cfg, reports, out, quietLog(), time.Now)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- d.Run(ctx) }()

		time.Sleep(29*time.Minute + 59*time.Second) // 08:29:59
		synctest.Wait()
		if n := len(out.all()); n != 0 {
			t.Fatalf("%d messages before 08:30", n)
		}
		time.Sleep(time.Second) // 08:30:00
		synctest.Wait()
		msgs := out.all()
		if len(msgs) != 4 {
			t.Fatalf("%d messages at 08:30, want 4 (chen.jing, wang.li, zhang.wei, the shift lead): %+v", len(msgs), msgs)
		}
		want := time.Date(2000, 1, 1, 8, 30, 0, 0, time.UTC)
		byTo := map[string]sent{}
		for _, m := range msgs {
			if !m.at.Equal(want) {
				t.Errorf("sent to %s at %s, want %s", m.to, m.at, want)
			}
			if strings.Contains(m.txt, "13812345678") {
				t.Errorf("a resident's phone in the review to %s", m.to)
			}
			byTo[m.to] = m
		}
		if m := byTo["wang.li"]; !strings.Contains(m.txt, "#1【超时】报修 plumbing 3-0101") || strings.Contains(m.txt, "#3") ||
			!strings.HasPrefix(m.subj, "每日工单盘点 2000-01-01：您负责的未完成 1 张，超时 1 张") {
			t.Errorf("wang.li got %q / %q", m.subj, m.txt)
		}
		if m := byTo["zhang.wei"]; !strings.Contains(m.txt, "#3【处理中】") || strings.Contains(m.txt, "#1") {
			t.Errorf("zhang.wei got %q", m.txt)
		}
		if m := byTo["team:shift-lead"]; !strings.Contains(m.subj, "全部未完成 3 张，超时 2 张") || !strings.Contains(m.txt, "责任人 wang.li") {
			t.Errorf("the shift lead got %q / %q", m.subj, m.txt)
		}
		time.Sleep(24 * time.Hour) // the next day's
		synctest.Wait()
		if msgs := out.all(); len(msgs) != 8 || !msgs[7].at.Equal(want.Add(24*time.Hour)) {
			t.Fatalf("the next day: %d messages, last at %s", len(msgs), msgs[len(msgs)-1].at)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// An order resolved on time is not "breached" while it waits for its
// call-back, even once its repair deadline has passed: it is 待回访 until
// the call-back deadline (one working day: a Friday's repair is called
// back on Tuesday when Monday is a public holiday; three days after a
// re-repair), then 回访逾期. An order nobody accepted is 超时.
func TestReviewAwaitingCallbackIsNotBreached(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	c := &clock{t: time.Date(2026, 11, 6, 14, 0, 0, 0, sh)} // a Friday
	store, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := Config{Calendar: Calendar{TimeZone: "Asia/Shanghai", Holidays: []string{"2026-11-09"}}, DailyReview: ReviewConfig{ShiftLead: []string{"team:shift-lead"}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	svc := NewService(cfg, testAssets, store, quietLog(), c.now)
	mk := func(room string) int64 {
		w, err := svc.Create(bg, WorkOrder{Category: "plumbing", Room: room, Priority: rules.Medium, Description: "x"}, "chen.jing")
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	must := func(w *WorkOrder, err error) *WorkOrder {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	at := func(d, hm string) {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", d+" "+hm, sh)
		if err != nil {
			t.Fatal(err)
		}
		c.t = v
	}
	o1, o2, o3 := mk("3-0101"), mk("3-0102"), mk("3-0103")
	at("2026-11-06", "14:10")
	for _, id := range []int64{o1, o2} {
		must(svc.Transition(bg, id, Accepted, "wang.li", ""))
	}
	at("2026-11-06", "15:00")
	w1 := must(svc.Transition(bg, o1, Resolved, "wang.li", "")) // due 18:10: on time
	must(svc.Transition(bg, o2, Resolved, "wang.li", ""))
	if want := time.Date(2026, 11, 10, 15, 0, 0, 0, sh); !w1.CallbackDue.Equal(want) {
		t.Fatalf("a Friday's call-back with Monday a holiday is due %s, want Tuesday %s", w1.CallbackDue.In(sh), want)
	}
	at("2026-11-09", "10:00")
	must(svc.Callback(bg, o2, Unsatisfied, "仍在漏水", "chen.jing"))
	at("2026-11-09", "11:00")
	w2 := must(svc.Transition(bg, o2, Resolved, "wang.li", "")) // the re-repair
	if want := time.Date(2026, 11, 12, 11, 0, 0, 0, sh); !w2.CallbackDue.Equal(want) {
		t.Fatalf("after a re-repair the call-back is due %s, want three days later %s", w2.CallbackDue.In(sh), want)
	}

	reports := NewReports(store, nil, cfg, c.now)
	status := func() map[int64]string {
		t.Helper()
		items, err := reports.Review(bg)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]string{}
		for _, it := range items {
			out[it.ID] = it.SLAStatus
		}
		return out
	}
	at("2026-11-10", "08:30") // the repair deadlines long past
	if got := status(); got[o1] != "awaiting_callback" || got[o2] != "awaiting_callback" || got[o3] != "breached" {
		t.Fatalf("Tuesday 08:30: %v; want #%d and #%d awaiting their call-back, #%d breached", got, o1, o2, o3)
	}
	out := &outbox{}
	if _, err := NewDailyReview(cfg, reports, out, quietLog(), c.now).Send(bg); err != nil {
		t.Fatal(err)
	}
	var lead string
	for _, m := range out.all() {
		if m.to == "team:shift-lead" {
			lead = m.subj + "\n" + m.txt
		}
	}
	for _, want := range []string{"超时 1 张，回访逾期 0 张", "#1【待回访】报修 plumbing 3-0101，回访期限 11-10 15:00", "#3【超时】报修 plumbing 3-0103"} {
		if !strings.Contains(lead, want) {
			t.Errorf("the shift lead's review lacks %q:\n%s", want, lead)
		}
	}
	k, err := reports.KPIs(bg, time.Date(2026, 11, 1, 0, 0, 0, 0, sh), time.Date(2026, 12, 1, 0, 0, 0, 0, sh))
	if err != nil {
		t.Fatal(err)
	}
	if k.ResolutionOnTimeRate.Value == nil || *k.ResolutionOnTimeRate.Value != 2.0/3 || k.Callbacks.Awaiting != 1 || k.Callbacks.Done != 1 || k.Callbacks.Overdue != 0 {
		t.Fatalf("KPIs: resolution on time %v of %d (want 2 of 3: #3 late), call-backs %+v (want #1 awaiting, #2 done)", *k.ResolutionOnTimeRate.Value, k.ResolutionOnTimeRate.Of, k.Callbacks)
	}
	at("2026-11-10", "15:01")
	if got := status(); got[o1] != "callback_overdue" || got[o2] != "awaiting_callback" {
		t.Fatalf("Tuesday 15:01: %v; want #%d's call-back overdue", got, o1)
	}
}
