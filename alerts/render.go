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
//
// links is false for a group chat: a personal link there would let anyone
// in the group (or anyone it is forwarded to) act in that person's name on
// the phone page (accept a work order, say they are on site, complete
// steps), so the message points to the console instead.
func (r *Router) render(p *Person, kind string, alerts []*Alert, now time.Time, links bool) (subject, text string) {
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
		if kind != "resolved" && !links {
			console := r.consoleLink()
			fmt.Fprintf(&zh, "群消息不含个人链接，请在值班控制台或个人消息中确认：%s\n", console)
			fmt.Fprintf(&en, "Group message, no personal link: acknowledge in the console or your own message: %s\n", console)
		}
		if kind != "resolved" && links {
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
			if !links {
				fmt.Fprintf(&zh, "%d. 【%s】%s — %s（%s起）\n", i+1, priorityZH(a.Priority), a.nameZH(), a.Location, a.Since.In(loc).Format("15:04:05"))
				fmt.Fprintf(&en, "%d. [%s] %s — %s (since %s)\n", i+1, strings.ToUpper(string(a.Priority)), a.Name, a.Location, a.Since.In(loc).Format("15:04:05"))
				continue
			}
			link := r.AckLink(a, p.ID, now)
			fmt.Fprintf(&zh, "%d. 【%s】%s — %s（%s起）确认：%s\n", i+1, priorityZH(a.Priority), a.nameZH(), a.Location, a.Since.In(loc).Format("15:04:05"), link)
			fmt.Fprintf(&en, "%d. [%s] %s — %s (since %s) ack: %s\n", i+1, strings.ToUpper(string(a.Priority)), a.Name, a.Location, a.Since.In(loc).Format("15:04:05"), link)
		}
		if !links && kind != "resolved" {
			console := r.consoleLink()
			fmt.Fprintf(&zh, "群消息不含个人链接，请在值班控制台或个人消息中确认：%s\n", console)
			fmt.Fprintf(&en, "Group message, no personal link: acknowledge in the console or your own message: %s\n", console)
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

// consoleLink is the console's alarm list, for group chats (no personal links).
func (r *Router) consoleLink() string { return strings.TrimSuffix(r.cfg.BaseURL, "/") + "/console" }
