package monthly

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
)

// ScheduleConfig sends the previous month's report on the 1st
// (rules.monthly_report).
type ScheduleConfig struct {
	// At is the time of day on the 1st, in the calendar's time zone;
	// default 09:00.
	At string `yaml:"at"`
	// To are alerts recipients: a person id, or team:<id> for whoever is on
	// duty. None: the report is not sent (it is always in the console).
	To []string `yaml:"to"`
	// NoAttachment sends the summary and the links alone, also by e-mail.
	NoAttachment bool `yaml:"no_attachment"`
}

var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// SetDefaults fills unset values.
func (c *ScheduleConfig) SetDefaults() {
	if c.At == "" {
		c.At = "09:00"
	}
}

// Validate checks the section.
func (c *ScheduleConfig) Validate() error {
	if !hhmm.MatchString(c.At) {
		return cfgerr.Errorf("monthly_report.at", "%q is not a time of day; fix: HH:MM, e.g. 09:00", c.At)
	}
	for i, to := range c.To {
		if strings.TrimSpace(to) == "" {
			return cfgerr.Errorf(fmt.Sprintf("monthly_report.to[%d]", i), "empty; fix: a person id under alerts: people, or team:<id>")
		}
	}
	return nil
}

// Sender delivers the report (alerts.Router.SendPlainFile): the text to a
// person or a team's person on duty, with the workbook attached where the
// channel carries files (e-mail).
type Sender interface {
	SendPlainFile(ctx context.Context, to, subject, text, name string, data []byte) error
}

// Schedule sends the previous month's report at the configured time on
// the 1st: a summary in Chinese (English after it), the links to the
// printable page and the workbook in the console, and the workbook itself
// by e-mail.
type Schedule struct {
	cfg     ScheduleConfig
	b       *Builder
	send    Sender
	baseURL string
	log     *slog.Logger
	now     func() time.Time
}

// NewSchedule builds the sender; baseURL is the console's address as the
// recipients reach it (alerts.base_url; empty: no links).
func NewSchedule(cfg ScheduleConfig, b *Builder, send Sender, baseURL string, log *slog.Logger, now func() time.Time) *Schedule {
	cfg.SetDefaults()
	return &Schedule{cfg: cfg, b: b, send: send, baseURL: strings.TrimRight(baseURL, "/"), log: log, now: now}
}

// Next is the first sending time after t: the 1st of a month at At.
func (s *Schedule) Next(t time.Time) time.Time {
	var hh, mm int
	fmt.Sscanf(s.cfg.At, "%d:%d", &hh, &mm)
	loc := s.b.d.Config.Calendar.Location()
	l := t.In(loc)
	n := time.Date(l.Year(), l.Month(), 1, hh, mm, 0, 0, loc)
	if !n.After(t) {
		n = time.Date(l.Year(), l.Month()+1, 1, hh, mm, 0, 0, loc)
	}
	return n
}

// Run sends the report every month until ctx ends; with no recipients it
// only waits.
func (s *Schedule) Run(ctx context.Context) error {
	if len(s.cfg.To) == 0 {
		<-ctx.Done()
		return nil
	}
	for {
		now := s.now()
		t := time.NewTimer(s.Next(now).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		month := s.now().In(s.b.d.Config.Calendar.Location()).AddDate(0, 0, -1).Format("2006-01") // the month that just ended
		if n, err := s.Send(ctx, month); err != nil {
			s.log.Error("monthly report not sent to everyone", "month", month, "sent", n, "err", err)
		} else {
			s.log.Info("monthly report sent", "month", month, "messages", n)
		}
	}
}

// FileName is the workbook's name (as the API's download names it).
func FileName(month string) string { return "monthly-report-" + month + ".xlsx" }

// Send builds month's report and sends it to every recipient; it returns
// how many messages went out.
func (s *Schedule) Send(ctx context.Context, month string) (int, error) {
	r, err := s.b.Build(ctx, month)
	if err != nil {
		return 0, err
	}
	var xlsx []byte
	if !s.cfg.NoAttachment {
		var buf bytes.Buffer
		if err := r.XLSX(&buf); err != nil {
			return 0, err
		}
		xlsx = buf.Bytes()
	}
	subject, text := s.Summary(r)
	sent := 0
	var errs []error
	for _, to := range s.cfg.To {
		if err := s.send.SendPlainFile(ctx, to, subject, text, FileName(month), xlsx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", to, err))
			continue
		}
		sent++
	}
	if len(errs) > 0 {
		return sent, fmt.Errorf("monthly report %s: %w", month, errors.Join(errs...))
	}
	return sent, nil
}

// Summary is the message: the subject, and the text with every figure
// against its target, the month's counts and the links.
func (s *Schedule) Summary(r *Report) (string, string) {
	t, _ := time.Parse("2006-01", r.Month)
	met, of := 0, 0
	for _, k := range r.KPIRows {
		if k.Met != nil {
			of++
			if *k.Met {
				met++
			}
		}
	}
	subject := fmt.Sprintf("%s %d年%d月 物业服务月报：%d 项指标 %d 项达标 / Monthly service report %s: %d of %d figures met",
		r.Site, t.Year(), int(t.Month()), of, met, r.Month, met, of)
	var b strings.Builder
	b.WriteString(subject)
	b.WriteString("\n\n服务指标 Figures:")
	for _, k := range r.KPIRows {
		verdict := "无数据 no data"
		if k.Met != nil && *k.Met {
			verdict = "达标 met"
		} else if k.Met != nil {
			verdict = "未达标 NOT met"
		}
		fmt.Fprintf(&b, "\n· %s %s（目标 %s）%s", k.NameZH, k.Value, k.Target, verdict)
	}
	fmt.Fprintf(&b, "\n· 返修率 Re-repairs %s", pct(r.ReworkRate))
	late := 0
	for _, c := range r.BreachesByCategory {
		late += c.Late
	}
	fmt.Fprintf(&b, "\n\n工单 %d 张，超时 %d 张；投诉 %d 起，已回访 %d 起，不满意 %d 次 / %d work orders, %d late; %d complaints, %d called back, %d unsatisfied",
		r.KPIs.WorkOrders, late, r.Complaints.Total, r.Complaints.CalledBack, r.Complaints.Unsatisfied,
		r.KPIs.WorkOrders, late, r.Complaints.Total, r.Complaints.CalledBack, r.Complaints.Unsatisfied)
	if h := r.Health; h != nil {
		fmt.Fprintf(&b, "\n报警 %d 次，泛滥时段 %d 个，日均每人 %.1f 次（EEMUA 191 ≤ 144）/ %d alarms, %d floods, %.1f per operator per day",
			h.Alarms, len(h.Floods), h.PerDayPerOperator.Value, h.Alarms, len(h.Floods), h.PerDayPerOperator.Value)
	}
	drills, due := 0, 0
	for _, d := range r.Drills {
		drills += d.Held
		if d.Due {
			due++
		}
	}
	if len(r.Drills) > 0 {
		fmt.Fprintf(&b, "\n演练 %d 次，到期未演练的预案 %d 个 / %d drills held, %d plans due", drills, due, drills, due)
	}
	if s.baseURL != "" {
		q := url.Values{"month": {r.Month}}
		fmt.Fprintf(&b, "\n\n完整月报 Full report: %s/api/v1/reports/monthly?%s\nExcel: %s/api/v1/reports/monthly?%s&format=xlsx", s.baseURL, q.Encode(), s.baseURL, q.Encode())
	}
	if !s.cfg.NoAttachment {
		fmt.Fprintf(&b, "\n（电子邮件附 Excel 工作簿 %s / e-mail carries the workbook）", FileName(r.Month))
	}
	return subject, b.String()
}
