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
