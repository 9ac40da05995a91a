package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/delivery"
)

// message is one message for one person on one contact, on its way
// through that contact's endpoint; a digest merges several (parts).
type message struct {
	person  *Person
	kind    string // alert, escalation, reminder, resolved, notify, repage, digest
	alerts  []*Alert
	text    string // notify: fixed; the others are rendered when sent (links fresh, acknowledged alarms left out)
	body    string // notify: the text without its link
	link    string // notify: the person's signed incident link, sent only on a personal endpoint
	subj    string
	drill   bool
	urgent  bool // never merged into a digest, and sent ahead of the queue: critical, an entrapment, a configured playbook
	first   bool // ahead of the other urgent ones: an immediate route's alarm (an entrapment), a configured playbook's notice
	rank    int  // the most urgent priority it carries (0 critical .. 3 low)
	queued  time.Time
	contact int        // index into person.Contacts
	every   bool       // sent on every contact at once (a re-page): no fallback chain
	try     int        // attempts made on this contact
	held    bool       // counted as held once
	parts   []*message // merged: a digest, or the same urgent message for several people in one group chat
	ep      *endpoint  // where it is queued or being sent
}

func (m *message) channel() string { return m.person.Contacts[m.contact].Channel }

func (m *message) address() string { return m.person.Contacts[m.contact].Address }

// cancellable kinds stop when their alarms are acknowledged or resolved.
func cancellable(kind string) bool {
	return kind == "alert" || kind == "escalation" || kind == "reminder" || kind == "repage"
}

// live drops alerts that are no longer firing from a cancellable message;
// false means nothing is left to say.
func (m *message) live() bool {
	if !cancellable(m.kind) {
		return true
	}
	m.alerts = slices.DeleteFunc(m.alerts, func(a *Alert) bool { return a.State != Firing })
	return len(m.alerts) > 0
}

func rankOf(alerts []*Alert, fallback int) int {
	if len(alerts) == 0 {
		return fallback
	}
	best := 3
	for _, a := range alerts {
		best = min(best, priorityRank(a.Priority))
	}
	return best
}

// post queues a message on its person's first usable contact (every
// contact, for a re-page), then sends what the budgets allow. Under r.mu.
func (r *Router) post(m *message, now time.Time) {
	if m.person == nil {
		return
	}
	m.queued = now
	if m.every {
		for i := range m.person.Contacts {
			if r.notifiers[m.person.Contacts[i].Channel] == nil {
				continue
			}
			c := *m
			c.contact = i
			r.queue(&c, now)
		}
		return
	}
	m.contact = -1
	if !r.nextContact(m) {
		r.log.Error("person has no usable contact", "person", m.person.ID)
		return
	}
	r.queue(m, now)
}

// nextContact moves m to the person's next contact with a channel.
func (r *Router) nextContact(m *message) bool {
	for i := m.contact + 1; i < len(m.person.Contacts); i++ {
		if r.notifiers[m.person.Contacts[i].Channel] != nil && r.endpointOf[m.person.Contacts[i].Channel] != nil {
			m.contact, m.try, m.held = i, 0, false
			return true
		}
	}
	return false
}

// queue puts m in its endpoint's queue, bounded: beyond Deps.Queue the
// least urgent message is dropped, counted and recorded.
func (r *Router) queue(m *message, now time.Time) {
	e := r.endpointOf[m.channel()]
	m.ep = e
	e.queue = append(e.queue, m)
	if len(e.queue) > r.d.Queue {
		victim := len(e.queue) - 1 // the newest, unless a less urgent one waits
		for i := len(e.queue) - 1; i >= 0; i-- {
			if !e.queue[i].urgent && (e.queue[victim].urgent || e.queue[i].rank > e.queue[victim].rank) {
				victim = i
			}
		}
		d := e.queue[victim]
		e.queue = slices.Delete(e.queue, victim, victim+1)
		r.count(e, "dropped", 1)
		r.d.Metrics.dropped("queue_full", 1)
		r.log.Error("delivery queue full; message dropped", "endpoint", e.name, "person", d.person.ID, "kind", d.kind)
		r.record(&Attempt{At: now, Kind: d.kind, Alerts: ids(d.alerts), Person: d.person.ID, Channel: d.channel(), Endpoint: e.name,
			Result: "failed", Error: "delivery queue full", Drill: d.drill})
	}
	r.dispatchEndpoint(e, now)
}

func (r *Router) count(e *endpoint, outcome string, n int) {
	e.counts[outcome] += int64(n)
	r.d.Metrics.endpoint(e.name, outcome, n)
}

// dispatch sends what every endpoint's budget allows. Under r.mu.
func (r *Router) dispatch(now time.Time) {
	for _, e := range r.endpoints {
		r.dispatchEndpoint(e, now)
	}
	flood, _, _ := r.flood(now)
	r.d.Metrics.flooding(flood)
}

// dispatchEndpoint hands an endpoint's queued messages to the workers as
// far as its budget goes: urgent ones first, each on its own; the rest
// most urgent first, merged into one digest per group (or per person)
// when the budget runs low or the site is in an alarm flood. While the
// endpoint is throttled, and when a critical or high message waited longer
// than fallback_after, those go to the person's next contact.
func (r *Router) dispatchEndpoint(e *endpoint, now time.Time) {
	defer func() { r.d.Metrics.queued(e.name, len(e.queue), e.paused(now)) }()
	// Acknowledged or resolved meanwhile: nothing left to send.
	e.queue = slices.DeleteFunc(e.queue, func(m *message) bool {
		if m.live() {
			return false
		}
		r.count(e, "cancelled", 1)
		return true
	})
	paused := e.paused(now)
	var keep, moves []*message
	var why []string
	for _, m := range e.queue {
		switch {
		case m.rank <= 1 && paused && r.canDivert(m):
			moves, why = append(moves, m), append(why, fmt.Sprintf("%s 被限流至 %s (throttled until %s)", e.name, r.clock(e.pausedUntil), r.clock(e.pausedUntil)))
		case m.rank <= 1 && now.Sub(m.queued) >= r.cfg.FallbackAfter && r.canDivert(m):
			moves, why = append(moves, m), append(why, fmt.Sprintf("%s 排队超过 %s (waited longer than %s for its budget)", e.name, r.cfg.FallbackAfter, r.cfg.FallbackAfter))
		default:
			keep = append(keep, m)
		}
	}
	e.queue = keep
	for i, m := range moves {
		r.divert(m, now, why[i])
	}
	for len(e.queue) > 0 && len(r.jobs) < cap(r.jobs) {
		i := r.next(e)
		if !e.take(now) {
			break
		}
		m := e.queue[i]
		e.queue = slices.Delete(e.queue, i, i+1)
		if m.urgent {
			m = r.together(e, m)
		} else {
			m = r.merge(e, m, now)
		}
		r.prepare(m, now)
		r.inflight.Add(1)
		r.jobs <- m // room checked above; only the dispatcher (under mu) sends
	}
	for _, m := range e.queue {
		if !m.held {
			m.held = true
			r.count(e, "held", 1)
		}
	}
	if len(e.queue) > 0 {
		select {
		case r.nudge <- struct{}{}:
		default:
		}
	}
}

// class orders the queue: entrapments and urgent playbooks, then the other
// urgent messages (critical), then the rest.
func (m *message) class() int {
	switch {
	case m.urgent && m.first:
		return 0
	case m.urgent:
		return 1
	}
	return 2
}

// next picks the message to send: the oldest of the most urgent class; in
// the last class the most urgent priority.
func (r *Router) next(e *endpoint) int {
	best := 0
	for i, m := range e.queue {
		b := e.queue[best]
		if m.class() != b.class() {
			if m.class() < b.class() {
				best = i
			}
			continue
		}
		if m.class() == 2 && m.rank < b.rank {
			best = i
		}
	}
	return best
}

// together folds the same urgent message for other people into m when the
// endpoint is a group chat: one post mentioning everyone instead of one
// per person (an entrapment reaches the group at once, and costs one
// message of the budget).
func (r *Router) together(e *endpoint, m *message) *message {
	if !e.grouped {
		return m
	}
	key := m.kind + "\x00" + strings.Join(ids(m.alerts), ",") + "\x00" + m.text
	parts := []*message{m}
	e.queue = slices.DeleteFunc(e.queue, func(o *message) bool {
		if !o.urgent || o.person == m.person || o.kind+"\x00"+strings.Join(ids(o.alerts), ",")+"\x00"+o.text != key {
			return false
		}
		parts = append(parts, o)
		return true
	})
	if len(parts) == 1 {
		return m
	}
	c := *m
	c.parts = parts
	return &c
}

// digestKey: on a group robot everything may merge; elsewhere (SMS,
// e-mail) only one person's messages.
func digestKey(e *endpoint, m *message) string {
	if e.grouped {
		return ""
	}
	return m.person.ID + "\x00" + m.address()
}

// merge folds the other mergeable messages waiting for the same place into
// m, as one digest, when the budget cannot carry them one by one or the
// site is in an alarm flood.
func (r *Router) merge(e *endpoint, m *message, now time.Time) *message {
	flood, _, _ := r.flood(now)
	waiting := 0
	for _, o := range e.queue {
		if !o.urgent {
			waiting++
		}
	}
	if waiting == 0 || !flood && float64(waiting) <= e.tokens(now) {
		return m
	}
	key := digestKey(e, m)
	parts := []*message{m}
	e.queue = slices.DeleteFunc(e.queue, func(o *message) bool {
		if o.urgent || digestKey(e, o) != key {
			return false
		}
		parts = append(parts, o)
		return true
	})
	if len(parts) == 1 {
		return m
	}
	r.count(e, "merged", len(parts))
	d := &message{person: m.person, kind: "digest", contact: m.contact, queued: m.queued, rank: m.rank, parts: parts, ep: e}
	for _, p := range parts {
		d.drill = d.drill || p.drill
		d.rank = min(d.rank, p.rank)
	}
	return d
}

// canDivert: m has another contact on another endpoint.
func (r *Router) canDivert(m *message) bool {
	if m.every {
		return false
	}
	for i := m.contact + 1; i < len(m.person.Contacts); i++ {
		ch := m.person.Contacts[i].Channel
		if e := r.endpointOf[ch]; e != nil && e != m.ep && r.notifiers[ch] != nil {
			return true
		}
	}
	return false
}

// divert sends m by its person's next contact on another endpoint,
// recording where it went and why. Under r.mu.
func (r *Router) divert(m *message, now time.Time, because string) {
	from, e := m.channel(), m.ep
	for r.nextContact(m) && r.endpointOf[m.channel()] == e {
	}
	r.count(e, "fallback", 1)
	e.divert(Diversion{At: now, Person: m.person.ID, To: m.channel(), Kind: m.kind, Alerts: ids(m.alerts), Because: because})
	r.record(&Attempt{At: now, Kind: m.kind, Alerts: ids(m.alerts), Alarms: alarmIDs(m.alerts), Person: m.person.ID, Channel: from, Endpoint: e.name,
		Result: "diverted", Error: because + " → " + m.channel(), Drill: m.drill})
	m.queued = now
	r.queue(m, now)
}

func alarmIDs(alerts []*Alert) []string {
	out := make([]string, len(alerts))
	for i, a := range alerts {
		out[i] = a.AlarmID
	}
	return out
}

func (r *Router) clock(t time.Time) string {
	loc, err := time.LoadLocation(r.cfg.TimeZone)
	if err != nil {
		loc = time.Local
	}
	return t.In(loc).Format("15:04:05")
}

// prepare renders a message's text when it is sent. The same message for
// several people in one group chat carries each one's acknowledgement link.
func (r *Router) prepare(m *message, now time.Time) {
	personal := m.ep == nil || !m.ep.grouped // a group chat gets no personal links (render)
	switch m.kind {
	case "notify":
		if m.body == "" {
			m.body = m.text
		}
		m.text = m.body
		if m.link != "" && personal {
			m.text += "\n" + m.link
		} else if m.link != "" {
			m.text += "\n群消息不含个人链接，请在值班控制台处理 / group message, no personal link: " + r.consoleLink()
		}
	case "digest":
		m.subj, m.text = r.renderDigest(m, now)
	default:
		m.subj, m.text = r.render(m.person, m.kind, m.alerts, now, personal)
		if len(m.parts) > 1 && len(m.alerts) == 1 && m.kind != "resolved" {
			for _, p := range m.parts[1:] {
				if personal {
					m.text += fmt.Sprintf("\n%s 确认 (ack)：%s", p.person.Name, r.AckLink(m.alerts[0], p.person.ID, now))
				} else {
					m.text += "\n@" + p.person.Name
				}
			}
		}
	}
}

// worker delivers messages until ctx ends. dctx bounds deliveries in
// flight at shutdown.
func (r *Router) worker(ctx, dctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-r.jobs:
			r.deliver(ctx, dctx, m)
			r.inflight.Add(-1)
		}
	}
}

// deliver makes the attempts for one message on one contact: retryable
// failures again after the backoff when the budget allows (else back into
// the queue), a throttled answer pauses the endpoint, a final failure
// falls back to the next contact. Every attempt is recorded.
func (r *Router) deliver(ctx, dctx context.Context, m *message) {
	r.conf.RLock()
	n := r.notifiers[m.channel()]
	r.conf.RUnlock()
	e := m.ep
	if n == nil { // its channel was removed by a config reload while it waited for a worker
		r.settle(m, func(now time.Time) {
			r.count(e, "failed", 1)
			r.onFailure(m, now, fmt.Sprintf("%s 渠道已从配置中删除 (channel removed from the config)", m.channel()))
		})
		return
	}
	msg := &Message{To: m.person.ID, Address: m.address(), Subject: m.subj, Text: m.text, Alerts: ids(m.alerts)}
	people := []string{m.person.ID}
	var alarms []string
	if len(m.parts) > 0 {
		var as []*Alert
		for _, p := range m.parts {
			if m.kind == "digest" {
				as = append(as, p.alerts...)
			}
			if !slices.Contains(people, p.person.ID) {
				people = append(people, p.person.ID)
			}
			if a := p.address(); a != "" && !slices.Contains(msg.Mentions, a) {
				msg.Mentions = append(msg.Mentions, a)
			}
		}
		if m.kind == "digest" {
			msg.Alerts, alarms = ids(as), alarmIDs(as)
		} else {
			alarms = alarmIDs(m.alerts)
		}
	} else {
		alarms = alarmIDs(m.alerts)
	}
	for {
		m.try++
		start := time.Now()
		cctx, cancel := context.WithTimeout(dctx, 15*time.Second)
		retry, err := n.Notify(cctx, msg)
		cancel()
		last := r.d.Backoff.Attempts > 0 && m.try >= r.d.Backoff.Attempts
		at := &Attempt{At: r.now(), Kind: m.kind, Alerts: msg.Alerts, Alarms: alarms, Person: strings.Join(people, ","), Channel: m.channel(),
			Endpoint: e.name, Address: msg.Address, Try: m.try, Result: "sent", Latency: time.Since(start), Drill: m.drill}
		throttled := errors.Is(err, delivery.ErrThrottled)
		if err != nil {
			at.Error, at.Result = err.Error(), "failed"
			switch {
			case throttled:
				at.Result = "throttled"
			case retry && !last && ctx.Err() == nil:
				at.Result = "will_retry"
			}
		}
		r.d.Metrics.delivered(at.Result)
		r.record(at)
		switch {
		case err == nil:
			r.settle(m, func(now time.Time) {
				r.count(e, "sent", 1)
				e.failingSince, e.lastError = time.Time{}, ""
			})
			return
		case throttled:
			r.settle(m, func(now time.Time) { r.throttled(m, err, now) })
			return
		case at.Result == "will_retry":
			if r.d.Sleep(ctx, r.d.Backoff.Delay(m.try)) != nil {
				return
			}
			again := false
			r.settle(m, func(now time.Time) {
				switch {
				case len(m.parts) == 0 && !m.live():
					r.count(e, "cancelled", 1) // acknowledged meanwhile
				case e.take(now):
					r.prepare(m, now)
					msg.Subject, msg.Text = m.subj, m.text
					again = true
				default:
					m.try-- // not attempted: wait for the budget
					m.queued = now
					e.queue = append(e.queue, m)
				}
			})
			if !again {
				return
			}
		default:
			r.settle(m, func(now time.Time) {
				r.count(e, "failed", 1)
				if e.failingSince.IsZero() {
					e.failingSince = now
				}
				e.lastError, e.lastErrorAt = err.Error(), now
				if len(m.parts) > 0 {
					for _, p := range m.parts {
						r.onFailure(p, now, fmt.Sprintf("%s 发送失败 (failed)", e.name))
					}
					return
				}
				r.onFailure(m, now, fmt.Sprintf("%s 发送失败 (failed)", e.name))
			})
			return
		}
	}
}

// settle runs fn under the router's lock, then sends what became sendable.
func (r *Router) settle(m *message, fn func(now time.Time)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	fn(now)
	r.dispatch(now)
}

// onFailure moves a message that failed for good to the next contact.
func (r *Router) onFailure(m *message, now time.Time, because string) {
	from := m.channel()
	if m.every || !r.nextContact(m) {
		r.log.Error("could not reach person on any channel", "person", m.person.ID, "kind", m.kind, "last", from)
		return
	}
	m.ep.divert(Diversion{At: now, Person: m.person.ID, To: m.channel(), Kind: m.kind, Alerts: ids(m.alerts), Because: because})
	r.count(m.ep, "fallback", 1)
	m.queued = now
	r.queue(m, now)
}

// throttled pauses the endpoint for the platform's penalty (or what it
// asked for, if longer); the message's critical and high parts go to the
// next contact at the next dispatch, the rest wait for the pause to end.
func (r *Router) throttled(m *message, err error, now time.Time) {
	e := m.ep
	r.count(e, "throttled", 1)
	penalty := e.limit.Penalty
	if d, ok := delivery.RetryAfter(err); ok && d > penalty {
		penalty = d
	}
	if penalty <= 0 {
		penalty = time.Minute
	}
	if !e.paused(now) {
		e.pausedSince = now
	}
	e.pausedUntil, e.pauseReason = now.Add(penalty), err.Error()
	e.lastError, e.lastErrorAt = err.Error(), now
	r.log.Warn("endpoint throttled: paused", "endpoint", e.name, "until", e.pausedUntil, "answer", err.Error())
	parts := []*message{m}
	if len(m.parts) > 0 {
		parts = m.parts
	}
	for _, p := range parts {
		p.try = 0
		e.queue = append(e.queue, p)
	}
}

// Announce sends a text to people ("person:<id>") and whoever is on call
// for teams ("team:<id>") through the same endpoint budgets as the alerts:
// for other features that message the duty teams (a daily review, a
// handover reminder), so that together they never exceed a robot's limit.
// Urgent ones are never merged and go first; the rest may be merged into a
// digest in a flood. Unknown targets are an error.
func (r *Router) Announce(to []string, subject, text string, urgent bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, t := range to {
		kind, id, _ := strings.Cut(t, ":")
		if !(kind == "team" && r.teams[id] != nil) && !(kind == "person" && r.people[id] != nil) {
			return fmt.Errorf("alerts: %q is not team:<id> or person:<id> of a configured team or person", t)
		}
	}
	for _, p := range r.targets(to, now) {
		r.post(&message{person: p, kind: "notify", subj: subject, text: text, urgent: urgent, rank: 2}, now)
	}
	return nil
}
