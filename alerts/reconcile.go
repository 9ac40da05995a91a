package alerts

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/propgate/gateway/rules"
)

// load reads the open alerts and reconciles each with the current config:
// an escalation persisted under an older config must never be dereferenced
// blindly (a renamed policy or a removed person crashed every tick).
func (r *Router) load(ctx context.Context) error {
	open, err := r.d.Store.OpenAlerts(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.since = now
	for _, a := range open {
		if r.adopt(a, now) {
			r.alerts[a.ID] = a
		}
		r.seen[activation{a.AlarmID, a.Since.UnixMilli()}] = true
	}
	return nil
}

// adopt fits a persisted alert to the config; false means it was closed.
// Every change is written to the alert's notes, logged and counted.
func (r *Router) adopt(a *Alert, now time.Time) bool {
	changed := false
	note := func(what, format string, args ...any) {
		text := now.Format(time.RFC3339) + " " + fmt.Sprintf(format, args...)
		a.Notes = append(a.Notes, text)
		r.d.Metrics.reconciled(what)
		r.log.Warn("open alert reconciled with the config", "alert", a.ID, "note", text)
		changed = true
	}
	if r.policies[a.Policy] == nil {
		if rt := r.route(a.Rule, a.Priority, a.Category); rt != nil && r.policies[rt.Policy] != nil {
			note("policy", "升级策略 %q 已不存在，改按 %q 升级 (escalation policy %q no longer exists; re-routed to %q)", a.Policy, rt.Policy, a.Policy, rt.Policy)
			a.Policy, a.Immediate = rt.Policy, rt.Immediate
		} else {
			note("policy", "升级策略 %q 已不存在且无路由匹配，报警关闭 (escalation policy %q no longer exists and no route matches: closed)", a.Policy, a.Policy)
			a.State, a.NextAt = Closed, time.Time{}
			r.save(a)
			return false
		}
	}
	p := r.policies[a.Policy]
	if a.Level >= len(p.Levels) || a.Level < 0 {
		last := len(p.Levels) - 1
		note("level", "升级级别 %d 已不存在，改为第 %d 级 (escalation level %d no longer exists; now at level %d)", a.Level+1, last+1, a.Level+1, last+1)
		a.Level = last
	}
	if a.Round > p.Repeat {
		a.Round = p.Repeat
	}
	var gone []string
	a.Notified = slices.DeleteFunc(a.Notified, func(id string) bool {
		if r.people[id] == nil {
			gone = append(gone, id)
			return true
		}
		return false
	})
	if len(gone) > 0 {
		note("person", "人员 %v 已不在配置中，不再通知 (people %v are no longer configured: not notified)", gone, gone)
	}
	if changed {
		r.save(a)
	}
	return true
}

// activation names one alarm activation (an alert id without formatting).
type activation struct {
	alarm string
	since int64
}

func activationOf(a *rules.Alarm) activation { return activation{a.ID, a.ActiveSince.UnixMilli()} }

// reconcileAlarms routes active, unacknowledged alarms that have no alert:
// their activation event was dropped by the bus (a slow subscriber) or
// lost in a restart. Called from Tick, under r.mu; the filter keeps the
// engine from copying alarms already routed.
func (r *Router) reconcileAlarms(now time.Time) {
	missed := r.d.Alarms.Alarms(func(a *rules.Alarm) bool {
		return a.Active && a.State == rules.StateUnacked && !r.seen[activationOf(a)]
	})
	for i := range missed {
		a := &missed[i]
		if a.ActiveSince.Before(r.since) {
			// Activated before this start: the previous run may have routed it.
			if _, err := r.d.Store.Alert(context.Background(), alertID(a)); err == nil {
				r.seen[activationOf(a)] = true
				continue
			}
		}
		r.d.Metrics.reconciled("missed_activation")
		r.log.Warn("alarm activation routed by reconciliation: its event never arrived", "alarm", a.ID)
		r.fire(a, now)
	}
	if now.Sub(r.pruned) < time.Minute {
		return
	}
	// Forget activations that ended: seen stays bounded by the alarms active now.
	r.pruned = now
	live := map[activation]bool{}
	r.d.Alarms.Alarms(func(a *rules.Alarm) bool {
		if a.Active {
			live[activationOf(a)] = true
		}
		return false
	})
	for k := range r.seen {
		if !live[k] {
			delete(r.seen, k)
		}
	}
}
