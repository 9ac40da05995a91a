package alerts

import (
	"fmt"

	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/i18n"

	"github.com/propgate/gateway/rules"
)

// maxListed is how many alarms a grouped message lists.
const maxListed = 20

func (a *Alert) nameZH() string {
	if a.NameZH != "" {
		return a.NameZH
	}
	return a.Name
}

// The words come from the message catalogue (internal/i18n).
func priorityZH(p rules.Priority) string { return i18n.T(i18n.ZH, "priority."+string(p)) }
func kindZH(kind string) string          { return i18n.T(i18n.ZH, "msg.kind."+kind) }
func kindEN(kind string) string          { return i18n.T(i18n.EN, "msg.kind."+kind) }

// render builds one bilingual message: what, where, since when, priority,
// and a link to acknowledge. Several alerts become one grouped message.
func (r *Router) render(p *Person, kind string, alerts []*Alert, now time.Time) (subject, text string) {
	loc, err := time.LoadLocation(r.cfg.TimeZone)
	if err != nil {
		loc = time.Local
	}
	var zh, en strings.Builder
	if len(alerts) == 1 {
		a := alerts[0]
		subject = fmt.Sprintf("[%s] %s — %s", strings.ToUpper(string(a.Priority)), a.Name, a.Location)
		fmt.Fprintf(&zh, "【%s·%s】%s\n位置：%s\n开始：%s\n", priorityZH(a.Priority), kindZH(kind), a.nameZH(), a.Location, a.Since.In(loc).Format("01-02 15:04:05"))
		fmt.Fprintf(&en, "[%s %s] %s\nWhere: %s\nSince: %s\n", strings.ToUpper(string(a.Priority)), kindEN(kind), a.Name, a.Location, a.Since.In(loc).Format("Jan 2 15:04:05"))
		if kind != "resolved" {
			link := r.AckLink(a, p.ID, now)
			fmt.Fprintf(&zh, "%s：%s\n", i18n.T(i18n.ZH, "msg.ack_link"), link)
			fmt.Fprintf(&en, "I'm on it: %s\n", link)
		}
	} else {
		subject = fmt.Sprintf("[%d alarms] %s", len(alerts), alerts[0].Location)
		fmt.Fprintf(&zh, "【%s】%d 条报警\n", i18n.T(i18n.ZH, "msg.summary"), len(alerts))
		fmt.Fprintf(&en, "[%d ALARMS]\n", len(alerts))
		// Most urgent first, and no more than fit a phone screen (and the
		// robots' 4 KB limit); the console has the rest.
		shown := slices.Clone(alerts)
		slices.SortStableFunc(shown, func(a, b *Alert) int { return priorityRank(a.Priority) - priorityRank(b.Priority) })
		if len(shown) > maxListed {
			shown = shown[:maxListed]
		}
		for i, a := range shown {
			link := r.AckLink(a, p.ID, now)
			fmt.Fprintf(&zh, "%d. 【%s】%s — %s（%s起）确认：%s\n", i+1, priorityZH(a.Priority), a.nameZH(), a.Location, a.Since.In(loc).Format("15:04:05"), link)
			fmt.Fprintf(&en, "%d. [%s] %s — %s (since %s) ack: %s\n", i+1, strings.ToUpper(string(a.Priority)), a.Name, a.Location, a.Since.In(loc).Format("15:04:05"), link)
		}
		if more := len(alerts) - len(shown); more > 0 {
			list := strings.TrimSuffix(r.cfg.BaseURL, "/") + "/api/v1/alarms?state=active"
			fmt.Fprintf(&zh, "……另有 %d 条：%s\n", more, list)
			fmt.Fprintf(&en, "... and %d more: %s\n", more, list)
		}
	}
	if p.Language == "en" {
		return subject, strings.TrimSpace(en.String() + "\n" + zh.String())
	}
	return subject, strings.TrimSpace(zh.String() + "\n" + en.String())
}
