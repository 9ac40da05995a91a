package workorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/rules"
)

// Messenger sends a plain message to a person, or to whoever is on duty in
// a team ("team:<id>") (alerts.Router.SendPlain).
type Messenger interface {
	SendPlain(ctx context.Context, to, subject, text string) error
}

// DailyReview pushes the daily review (投诉日盘点) at a set time: each
// responsible person gets their open and late orders, the shift lead all of
// them.
type DailyReview struct {
	cfg     ReviewConfig
	cal     *Calendar
	reports *Reports
	send    Messenger
	log     *slog.Logger
	now     func() time.Time
}

// NewDailyReview builds the push; cfg is the work-order config (with its
// daily_review and calendar).
func NewDailyReview(cfg Config, reports *Reports, send Messenger, log *slog.Logger, now func() time.Time) *DailyReview {
	cfg.SetDefaults()
	cal := cfg.Calendar
	return &DailyReview{cfg: cfg.DailyReview, cal: &cal, reports: reports, send: send, log: log, now: now}
}

// Next is the first review time after t.
func (d *DailyReview) Next(t time.Time) time.Time {
	var hh, mm int
	fmt.Sscanf(d.cfg.At, "%d:%d", &hh, &mm)
	l := t.In(d.cal.Location())
	n := time.Date(l.Year(), l.Month(), l.Day(), hh, mm, 0, 0, l.Location())
	if !n.After(t) {
		n = time.Date(l.Year(), l.Month(), l.Day()+1, hh, mm, 0, 0, l.Location())
	}
	return n
}

// Run sends the review every day at the set time until ctx ends.
func (d *DailyReview) Run(ctx context.Context) error {
	if d.cfg.Disabled {
		<-ctx.Done()
		return nil
	}
	for {
		now := d.now()
		t := time.NewTimer(d.Next(now).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if n, err := d.Send(ctx); err != nil {
			d.log.Error("daily review not sent to everyone", "sent", n, "err", err)
		} else {
			d.log.Info("daily review sent", "messages", n)
		}
	}
}

var reviewZH = map[string]string{"breached": "超时", "callback_overdue": "回访逾期", "due_soon": "即将到期", "awaiting_callback": "待回访", "ok": "处理中"}

// maxLines bounds one message (the rest is counted, not listed).
const maxLines = 30

func reviewText(day string, items []ReviewItem, whole bool) (string, string) {
	count := map[string]int{}
	for _, it := range items {
		count[it.SLAStatus]++
	}
	who := "您负责的"
	if whole {
		who = "全部"
	}
	subject := fmt.Sprintf("每日工单盘点 %s：%s未完成 %d 张，超时 %d 张，回访逾期 %d 张 / Daily review: %d open, %d late, %d call-backs overdue",
		day, who, len(items), count["breached"], count["callback_overdue"], len(items), count["breached"], count["callback_overdue"])
	var b strings.Builder
	b.WriteString(subject)
	for i, it := range items {
		if i == maxLines {
			fmt.Fprintf(&b, "\n……另有 %d 张 (%d more)", len(items)-maxLines, len(items)-maxLines)
			break
		}
		where := it.Location
		if it.Room != "" {
			where = it.Room
		}
		fmt.Fprintf(&b, "\n#%d【%s】%s %s %s", it.ID, reviewZH[it.SLAStatus], it.Type.NameZH(), it.Category, where)
		switch it.SLAStatus {
		case "callback_overdue", "awaiting_callback":
			fmt.Fprintf(&b, "，回访期限 %s", it.CallbackDue.Format("01-02 15:04"))
		default:
			fmt.Fprintf(&b, "，完成期限 %s", it.ResolutionDue.Format("01-02 15:04"))
		}
		if whole && it.Responsible != "" {
			fmt.Fprintf(&b, "，责任人 %s", it.Responsible)
		}
	}
	return subject, b.String()
}

// Send sends today's review now; it returns how many messages went out.
func (d *DailyReview) Send(ctx context.Context) (int, error) {
	items, err := d.reports.Review(ctx)
	if err != nil {
		return 0, err
	}
	items = slices.DeleteFunc(items, func(it ReviewItem) bool { return it.SLAStatus == "done" })
	day := d.now().In(d.cal.Location()).Format("2006-01-02")
	byPerson := map[string][]ReviewItem{}
	var people []string
	for _, it := range items {
		p := it.Responsible
		if p == "" || p == rules.ByEngine {
			continue
		}
		if _, ok := byPerson[p]; !ok {
			people = append(people, p)
		}
		byPerson[p] = append(byPerson[p], it)
	}
	slices.Sort(people)
	sent := 0
	var errs []error
	for _, p := range people {
		subject, text := reviewText(day, byPerson[p], false)
		if err := d.send.SendPlain(ctx, p, subject, text); err != nil {
			errs = append(errs, err)
			continue
		}
		sent++
	}
	if len(items) > 0 {
		subject, text := reviewText(day, items, true)
		for _, lead := range d.cfg.ShiftLead {
			if err := d.send.SendPlain(ctx, lead, subject, text); err != nil {
				errs = append(errs, err)
				continue
			}
			sent++
		}
	}
	if len(errs) > 0 {
		return sent, fmt.Errorf("daily review: %w", errors.Join(errs...))
	}
	return sent, nil
}
