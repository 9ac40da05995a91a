package alerts

import (
	"fmt"
	"sort"

	"github.com/propgate/gateway/alerts/notify"
	"github.com/propgate/gateway/collectors"
)

// Prepared is an alerts config compiled for Reload: its channels built,
// nothing swapped in yet.
type Prepared struct {
	cfg       Config
	notifiers map[string]Notifier
}

// Prepare compiles cfg's channels for Reload. It has no side effects: an
// error leaves the router as it was.
func (r *Router) Prepare(cfg Config) (*Prepared, error) {
	cfg.SetDefaults()
	p := &Prepared{cfg: cfg, notifiers: map[string]Notifier{}}
	for name, ch := range cfg.Channels {
		n, err := notify.New(ch, r.d.Publisher, r.d.Now)
		if err != nil {
			return nil, fmt.Errorf("alerts: channels.%s: %w", name, err)
		}
		p.notifiers[name] = n
	}
	return p, nil
}

// Reloaded says what Reload did.
type Reloaded struct {
	Closed  []string // open alerts the new config no longer routes (closed with a note)
	Requeue int      // queued messages moved to their person's contacts under the new config
	Dropped int      // queued messages whose person is gone (counted in gateway_alert_messages_dropped_total{reason="reload"})
}

// Reload swaps in a prepared config (people, teams and rotations,
// policies, routes, channels and their budgets, quiet hours, maintenance)
// and the running assets' names and locations, under the router's lock.
// Escalations in progress go on: every open alert keeps its level, round,
// next step and acknowledgement and is reconciled with the new config as
// at start (a policy gone: re-routed or closed; a level gone: the last
// one; people gone: no longer notified; each change in the alert's notes).
// An endpoint that keeps its name keeps its budget, pause and counts;
// messages waiting for a budget are put back on their person's first
// usable contact (the person as configured now), those for people no
// longer configured are dropped and counted.
func (r *Router) Reload(p *Prepared, assets []collectors.Asset) Reloaded {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conf.Lock()
	defer r.conf.Unlock()
	now := r.now()
	var out Reloaded

	// The messages waiting for a budget, taken out of every endpoint.
	var waiting []*message
	old := map[string]*endpoint{}
	for _, e := range r.endpoints {
		old[e.name] = e
		waiting = append(waiting, e.queue...)
		e.queue = nil
	}

	r.cfg, r.notifiers = p.cfg, p.notifiers
	r.assets = make(map[string]collectors.Asset, len(assets))
	for _, a := range assets {
		r.assets[a.ID] = a
	}
	r.people, r.teams, r.policies = map[string]*Person{}, map[string]*Team{}, map[string]*Policy{}
	for i := range r.cfg.People {
		r.people[r.cfg.People[i].ID] = &r.cfg.People[i]
	}
	for i := range r.cfg.Teams {
		r.teams[r.cfg.Teams[i].ID] = &r.cfg.Teams[i]
	}
	for i := range r.cfg.Policies {
		r.policies[r.cfg.Policies[i].ID] = &r.cfg.Policies[i]
	}
	r.endpoints, r.endpointOf = nil, map[string]*endpoint{}
	r.buildEndpoints()
	for i, e := range r.endpoints {
		o := old[e.name]
		if o == nil {
			continue
		}
		// The same receiver: keep what it has spent and suffered.
		o.typ, o.grouped = e.typ, e.grouped
		if o.limit != e.limit {
			o.limit, o.minute, o.second = e.limit, e.minute, e.second
		}
		for ch, x := range r.endpointOf {
			if x == e {
				r.endpointOf[ch] = o
			}
		}
		r.endpoints[i] = o
	}

	for _, m := range waiting {
		person := r.people[m.person.ID]
		if person == nil {
			out.Dropped++
			r.log.Warn("queued message dropped: its person is no longer configured", "person", m.person.ID, "kind", m.kind)
			continue
		}
		m.person = person
		if m.every { // a re-page on every contact: keep its contact if still usable
			if m.contact < len(person.Contacts) && r.notifiers[m.channel()] != nil && r.endpointOf[m.channel()] != nil {
				r.queue(m, now)
				out.Requeue++
			} else {
				out.Dropped++
			}
			continue
		}
		m.contact = -1
		if !r.nextContact(m) {
			out.Dropped++
			r.log.Warn("queued message dropped: its person has no usable contact in the new config", "person", person.ID, "kind", m.kind)
			continue
		}
		r.queue(m, now)
		out.Requeue++
	}
	if out.Dropped > 0 {
		r.d.Metrics.dropped("reload", out.Dropped)
	}
	for id, b := range r.pending { // held for grouping: their person must still exist
		if r.people[id] == nil {
			delete(r.pending, id)
			r.log.Warn("held alerts not sent: their person is no longer configured", "person", id, "alerts", len(b.alerts))
		}
	}

	ids := make([]string, 0, len(r.alerts))
	for id := range r.alerts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !r.adopt(r.alerts[id], now) {
			delete(r.alerts, id)
			out.Closed = append(out.Closed, id)
		}
	}
	r.dispatch(now)
	return out
}
