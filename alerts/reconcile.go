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
		r.seen[a.ID] = true
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
			note("policy", "升级策略 %q 已不存在且无路由匹配，告警关闭 (escalation policy %q no longer exists and no route matches: closed)", a.Policy, a.Policy)
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

// reconcileAlarms routes active, unacknowledged alarms that have no alert:
// their activation event was dropped by the bus (a slow subscriber) or
// lost in a restart. Called from Tick, under r.mu.
func (r *Router) reconcileAlarms(now time.Time) {
	active := r.d.Alarms.Alarms(func(a *rules.Alarm) bool { return a.Active })
	live := make(map[string]bool, len(active))
	for i := range active {
		a := &active[i]
		id := alertID(a)
		live[id] = true
		if r.seen[id] || a.State != rules.StateUnacked {
			continue
		}
		if a.ActiveSince.Before(r.since) {
			// Activated before this start: the previous run may have routed it.
			if _, err := r.d.Store.Alert(context.Background(), id); err == nil {
				r.seen[id] = true
				continue
			}
		}
		r.d.Metrics.reconciled("missed_activation")
		r.log.Warn("alarm activation routed by reconciliation: its event never arrived", "alarm", a.ID)
		r.fire(a, now)
	}
	for id := range r.seen {
		if !live[id] && r.alerts[id] == nil {
			delete(r.seen, id) // bounded by the alarms active now
		}
	}
}
