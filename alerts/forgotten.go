package alerts

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// The forgotten acknowledgement: an alarm acknowledged and then neither
// resolved nor progressed (its work order accepted or worked on, an
// incident step done on its asset) within the policy's ack_expiry returns
// to unacknowledged — in the engine too — and is paged again to everyone
// told so far and the first level, on every contact they have. Progress
// restarts the clock.

// progress restarts the acknowledgement clock of the acknowledged alerts
// matching. Under r.mu.
func (r *Router) progress(match func(*Alert) bool, what string, now time.Time) {
	for _, al := range r.alerts {
		if al.State != Acked || !match(al) {
			continue
		}
		if p := r.policies[al.Policy]; p != nil && p.AckExpiry > 0 {
			al.AckExpires = now.Add(p.AckExpiry)
			al.Progress, al.ProgressAt = what, now
			r.save(al)
		}
	}
}

// workOrderProgress: a work order for the alarm was accepted, started,
// resolved or closed (anything but opening or dispatching it).
func (r *Router) workOrderProgress(w *workorder.WorkOrder, h *workorder.HistoryEntry, now time.Time) {
	if w.AlarmID == "" || h == nil {
		return
	}
	switch h.To {
	case workorder.Accepted, workorder.InProgress, workorder.Resolved, workorder.CallbackDone, workorder.Closed:
	default:
		return
	}
	r.progress(func(a *Alert) bool { return a.AlarmID == w.AlarmID }, fmt.Sprintf("工单 %d %s (work order %d %s)", w.ID, h.To, w.ID, h.To), now)
}

// incidentProgress: a step of an open incident on the alarm's asset was
// completed (an arrival, a rescue step). It also remembers the incident's
// playbook, for urgent notifications.
func (r *Router) incidentProgress(in *playbook.Incident, now time.Time) {
	if in.Status != "open" {
		delete(r.playbookOf, in.ID)
		return
	}
	if _, ok := r.playbookOf[in.ID]; ok || len(r.playbookOf) < maxIncidents {
		r.playbookOf[in.ID] = in.Playbook
	}
	if n := len(in.Timeline); n == 0 || in.Asset == "" || in.Timeline[n-1].Kind != "step_done" {
		return
	}
	r.progress(func(a *Alert) bool { return a.Asset == in.Asset }, fmt.Sprintf("预案 %s 步骤完成 (incident %d step done)", in.Playbook, in.ID), now)
}

// maxIncidents bounds the open incidents remembered.
const maxIncidents = 10000

// forgotten reverts a forgotten acknowledgement and pages again.
func (r *Router) forgotten(al *Alert, now time.Time) {
	note := fmt.Sprintf("%s 确认后 %s 内无进展，恢复为未确认并重新通知 (acknowledged by %s, no progress within the ack expiry: unacknowledged and paged again)",
		now.Format(time.RFC3339), r.policies[al.Policy].AckExpiry, al.AckedBy)
	if r.d.Unack != nil {
		if _, err := r.d.Unack.Unack(al.AlarmID, "alerts", "确认后无进展 acknowledged, no progress"); err != nil && !errors.Is(err, rules.ErrNothingToUnack) {
			r.log.Error("returning a forgotten acknowledgement to unacknowledged failed", "alarm", al.AlarmID, "err", err)
		}
	}
	al.Notes = append(al.Notes, note)
	al.State, al.AckExpires, al.AckedBy, al.AckedAt = Firing, time.Time{}, "", time.Time{}
	al.Level, al.Round = 0, 0
	r.d.Metrics.reconciled("forgotten_ack")
	people := slices.Clone(al.Notified)
	if p := r.policies[al.Policy]; p != nil {
		for _, x := range r.targets(p.Levels[0].Notify, now) {
			if !slices.Contains(people, x.ID) {
				people = append(people, x.ID)
			}
		}
		al.NextAt = now.Add(p.Levels[0].Wait)
	}
	for _, id := range people {
		if p := r.people[id]; p != nil {
			r.post(&message{person: p, kind: "repage", alerts: []*Alert{al}, urgent: true, first: al.Immediate, every: true, rank: priorityRank(al.Priority)}, now)
			if !slices.Contains(al.Notified, id) {
				al.Notified = append(al.Notified, id)
			}
		}
	}
	r.save(al)
}
