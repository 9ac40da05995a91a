package rules

import (
	"time"

	"github.com/propgate/gateway/collectors"
)

// RetiredNote is the note on the transition that closes an alarm whose rule
// (or asset) a reload removed: it never stays active with nothing to clear it.
const RetiredNote = "规则已从配置中删除，报警关闭 (the rule was removed from the config: alarm closed)"

// Reloaded says what SetRules did.
type Reloaded struct {
	Kept    int      // alarms (rule × asset) whose state carried over
	Added   int      // new rule × asset instances, starting normal
	Retired []string // alarms of instances no longer configured, closed with RetiredNote if they were not normal
}

// SetRules replaces the rules on a config reload, under the engine's lock,
// between two points. An alarm is identified by its rule id and asset id:
// an instance still configured keeps its alarm (state, acknowledgement,
// shelving, delays running) and its memory (rates, no-data clock) unless
// its field changed; its name, priority and instructions follow the new
// rule. A rule whose id changed is a removed rule and a new one. Alarms of
// instances no longer configured are closed (returned to normal and
// acknowledged, RetiredNote, saved and told to the observers through the
// ordered writer, so alert escalations resolve) and dropped. cfg must have
// been validated (its conditions compiled); assets are the running ones.
func (e *Engine) SetRules(cfg Config, assets []collectors.Asset) Reloaded {
	// The new set is compiled without the lock.
	cfg.SetDefaults()
	next := compile(cfg, assets, e.log)
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.set
	now := e.now()
	var out Reloaded
	for id, in := range next.byAlarm {
		prev, ok := old.byAlarm[id]
		if !ok {
			in.mem.LastSeen = now // as at Load: a silent sensor alarms no_data that long from now
			out.Added++
		} else {
			in.alarm = prev.sync()
			in.mem = prev.mem
			if prev.rule.Field != in.rule.Field {
				in.mem = Memory{LastSeen: now}
			}
			out.Kept++
		}
		r, a := in.rule, in.alarm
		a.Name, a.NameZH, a.Priority, a.Category, a.Instructions, a.InstructionsZH = r.Name, r.NameZH, r.Priority, r.Category, r.Instructions, r.InstructionsZH
		in.settled()
		if in.active {
			next.activeByRule[in.ruleN]++
		}
	}
	for i := range old.insts {
		in := &old.insts[i]
		if _, kept := next.byAlarm[in.alarm.ID]; kept {
			continue
		}
		out.Retired = append(out.Retired, in.alarm.ID)
		a := in.sync()
		before := factsOf(a)
		tr := a.retire(now)
		e.commit(old, in, before, tr, now) // queued in order behind the alarm's earlier changes
		e.log.Warn("alarm closed: its rule or asset is no longer configured", "alarm", a.ID)
	}
	e.set = next
	return out
}

// retire returns the alarm to normal, acknowledged and unmasked: its rule
// is gone, so nothing would ever clear or annunciate it again.
func (a *Alarm) retire(now time.Time) []Transition {
	a.Active, a.Acked = false, true
	a.PendingSince, a.ClearSince, a.ShelvedUntil = time.Time{}, time.Time{}, time.Time{}
	a.OutOfService, a.Suppressed, a.Chattering, a.activations = false, false, false, nil
	return a.settle(now, ByEngine, RetiredNote)
}
