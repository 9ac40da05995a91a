package alerts

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/propgate/gateway/rules"
)

// digestListed is how many alarms a digest lists; the rest are counted and
// linked (a robot message stays within its 4 KB, an SMS readable).
const digestListed = 10

// renderDigest writes one message for several: Chinese first, counts by
// priority and by building, the most urgent alarms listed, the rest
// summarised with a link; playbook notices and resolved alarms counted.
// A digest to one person (SMS, e-mail) carries acknowledgement links for
// the alarms it lists; one to a group robot links the console instead.
func (r *Router) renderDigest(m *message, now time.Time) (subject, text string) {
	loc, err := time.LoadLocation(r.cfg.TimeZone)
	if err != nil {
		loc = time.Local
	}
	base := strings.TrimSuffix(r.cfg.BaseURL, "/")
	var firing, resolved []*Alert
	var notes []string
	seen := map[string]bool{}
	for _, p := range m.parts {
		if !p.live() {
			continue
		}
		switch p.kind {
		case "notify":
			notes = append(notes, p.subj)
		case "resolved":
			for _, a := range p.alerts {
				if !seen["r"+a.ID] {
					seen["r"+a.ID] = true
					resolved = append(resolved, a)
				}
			}
		default:
			for _, a := range p.alerts {
				if !seen[a.ID] {
					seen[a.ID] = true
					firing = append(firing, a)
				}
			}
		}
	}
	slices.SortStableFunc(firing, func(a, b *Alert) int {
		if d := priorityRank(a.Priority) - priorityRank(b.Priority); d != 0 {
			return d
		}
		return a.Since.Compare(b.Since)
	})
	personal := !m.ep.grouped
	byPrio := map[rules.Priority]int{}
	byBuilding := map[string]int{}
	for _, a := range firing {
		byPrio[a.Priority]++
		b := a.Building
		if b == "" {
			b = "—"
		}
		byBuilding[b]++
	}
	flood, inWindow, _ := r.flood(now)
	var zh, en strings.Builder
	fmt.Fprintf(&zh, "【报警汇总】%d 条报警", len(firing))
	fmt.Fprintf(&en, "[ALARM DIGEST] %d alarms", len(firing))
	if len(resolved) > 0 {
		fmt.Fprintf(&zh, "，%d 条已恢复", len(resolved))
		fmt.Fprintf(&en, ", %d resolved", len(resolved))
	}
	if len(notes) > 0 {
		fmt.Fprintf(&zh, "，%d 条预案通知", len(notes))
		fmt.Fprintf(&en, ", %d playbook notices", len(notes))
	}
	zh.WriteString("\n")
	en.WriteString("\n")
	if flood {
		fmt.Fprintf(&zh, "报警泛滥：%s 内 %d 条报警，消息已合并\n", r.cfg.Flood.Window, inWindow)
		fmt.Fprintf(&en, "Alarm flood: %d alarms within %s; messages merged\n", inWindow, r.cfg.Flood.Window)
	} else {
		fmt.Fprintf(&zh, "%s 发送额度不足，消息已合并\n", m.ep.name)
		fmt.Fprintf(&en, "%s is near its message limit; messages merged\n", m.ep.name)
	}
	if len(firing) > 0 {
		var pz, pe []string
		for _, p := range []rules.Priority{rules.Critical, rules.High, rules.Medium, rules.Low} {
			if n := byPrio[p]; n > 0 {
				pz = append(pz, fmt.Sprintf("%s %d", priorityZH(p), n))
				pe = append(pe, fmt.Sprintf("%s %d", p, n))
			}
		}
		fmt.Fprintf(&zh, "按优先级：%s\n", strings.Join(pz, "｜"))
		fmt.Fprintf(&en, "By priority: %s\n", strings.Join(pe, " | "))
		buildings := make([]string, 0, len(byBuilding))
		for b := range byBuilding {
			buildings = append(buildings, b)
		}
		sort.Slice(buildings, func(i, j int) bool {
			if byBuilding[buildings[i]] != byBuilding[buildings[j]] {
				return byBuilding[buildings[i]] > byBuilding[buildings[j]]
			}
			return buildings[i] < buildings[j]
		})
		var bz, be []string
		for _, b := range buildings {
			bz = append(bz, fmt.Sprintf("%s %d", b, byBuilding[b]))
			be = append(be, fmt.Sprintf("%s %d", b, byBuilding[b]))
		}
		fmt.Fprintf(&zh, "按楼栋：%s\n", strings.Join(bz, "｜"))
		fmt.Fprintf(&en, "By building: %s\n", strings.Join(be, " | "))
	}
	shown := firing
	if len(shown) > digestListed {
		shown = shown[:digestListed]
	}
	for i, a := range shown {
		since := a.Since.In(loc).Format("15:04:05")
		fmt.Fprintf(&zh, "%d. 【%s】%s — %s（%s起）", i+1, priorityZH(a.Priority), a.nameZH(), a.Location, since)
		fmt.Fprintf(&en, "%d. [%s] %s — %s (since %s)", i+1, strings.ToUpper(string(a.Priority)), a.Name, a.Location, since)
		if personal {
			link := r.AckLink(a, m.person.ID, now)
			fmt.Fprintf(&zh, " 确认：%s", link)
			fmt.Fprintf(&en, " ack: %s", link)
		}
		zh.WriteString("\n")
		en.WriteString("\n")
	}
	list := base + "/console" // the operator console: every active alarm, acknowledged there
	if more := len(firing) - len(shown); more > 0 {
		fmt.Fprintf(&zh, "……另有 %d 条，全部报警：%s\n", more, list)
		fmt.Fprintf(&en, "... and %d more, all alarms: %s\n", more, list)
	} else if !personal {
		fmt.Fprintf(&zh, "确认与处理：%s\n", list)
		fmt.Fprintf(&en, "Acknowledge and follow up: %s\n", list)
	}
	for i, a := range resolved {
		if i == 3 {
			fmt.Fprintf(&zh, "已恢复另有 %d 条\n", len(resolved)-3)
			fmt.Fprintf(&en, "%d more resolved\n", len(resolved)-3)
			break
		}
		fmt.Fprintf(&zh, "已恢复：%s — %s\n", a.nameZH(), a.Location)
		fmt.Fprintf(&en, "Resolved: %s — %s\n", a.Name, a.Location)
	}
	for i, n := range notes {
		if i == 3 {
			fmt.Fprintf(&zh, "预案通知另有 %d 条\n", len(notes)-3)
			fmt.Fprintf(&en, "%d more playbook notices\n", len(notes)-3)
			break
		}
		fmt.Fprintf(&zh, "预案通知：%s\n", n)
		fmt.Fprintf(&en, "Playbook: %s\n", n)
	}
	subject = fmt.Sprintf("[%d alarms] 报警汇总", len(firing))
	if len(firing) > 0 {
		subject = fmt.Sprintf("[%d alarms, %s first] 报警汇总 %s", len(firing), firing[0].Priority, firing[0].Location)
	}
	if personal && m.person.Language == "en" {
		return subject, strings.TrimSpace(en.String() + "\n" + zh.String())
	}
	return subject, strings.TrimSpace(zh.String() + "\n" + en.String())
}
