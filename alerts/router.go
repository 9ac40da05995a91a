package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/propgate/gateway/internal/i18n"

	"github.com/propgate/gateway/alerts/notify"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/delivery"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	"github.com/propgate/gateway/rules/playbook"
)

// AlertState is where an alert's escalation stands.
type AlertState string

// Alert states.
const (
	Firing    AlertState = "firing"    // escalating until someone acknowledges
	Acked     AlertState = "acked"     // someone is on it
	Resolved  AlertState = "resolved"  // the alarm cleared; a resolved notice went out
	Inhibited AlertState = "inhibited" // not sent: explained by another alarm, in maintenance, or no route
	Closed    AlertState = "closed"    // closed at start: the config no longer routes it (see notes)
)

// Alert is one alarm activation being routed to people.
type Alert struct {
	ID         string         `json:"id"`
	AlarmID    string         `json:"alarm_id"`
	Rule       string         `json:"rule"`
	Asset      string         `json:"asset"`
	Name       string         `json:"name"`
	NameZH     string         `json:"name_zh,omitempty"`
	Priority   rules.Priority `json:"priority"`
	Category   string         `json:"category,omitempty"`
	Location   string         `json:"location,omitempty"`
	Building   string         `json:"building,omitempty"`
	Since      time.Time      `json:"since"`
	Policy     string         `json:"policy,omitempty"`
	Immediate  bool           `json:"immediate"`
	State      AlertState     `json:"state"`
	Reason     string         `json:"reason,omitempty"` // why inhibited
	Level      int            `json:"level"`
	Round      int            `json:"round"`
	NextAt     time.Time      `json:"next_at,omitempty"`
	AckedBy    string         `json:"acked_by,omitempty"`
	AckedAt    time.Time      `json:"acked_at,omitempty"`
	AckExpires time.Time      `json:"ack_expires,omitempty"`
	Progress   string         `json:"progress,omitempty"`    // the latest progress after the acknowledgement
	ProgressAt time.Time      `json:"progress_at,omitempty"` // when it was seen
	Notified   []string       `json:"notified,omitempty"`    // people told so far
	Notes      []string       `json:"notes,omitempty"`       // what reconciliation with the config changed
}

// Attempt is one delivery attempt (or one use of an acknowledgement link,
// kind "link_ack"), recorded and readable through the API.
type Attempt struct {
	ID       int64         `json:"id"`
	At       time.Time     `json:"at"`
	Kind     string        `json:"kind"` // alert, escalation, reminder, resolved, notify, link_ack
	Alerts   []string      `json:"alerts,omitempty"`
	Alarms   []string      `json:"alarms,omitempty"`
	Person   string        `json:"person"`
	Channel  string        `json:"channel"`
	Address  string        `json:"address,omitempty"`
	ClientIP string        `json:"client_ip,omitempty"` // link_ack: who opened the link
	Endpoint string        `json:"endpoint,omitempty"`  // the budget it went through (a configured name, never the URL)
	Try      int           `json:"try"`
	Result   string        `json:"result"` // sent, failed, will_retry, throttled, diverted (went to the next contact); link_ack: acked, already_acked, already_closed, link_used
	Error    string        `json:"error,omitempty"`
	Latency  time.Duration `json:"latency_ns"`
	Drill    bool          `json:"drill"`
}

// AlarmSource is what the router needs from the rules engine.
type AlarmSource interface {
	Alarm(id string) (rules.Alarm, bool)
	Alarms(filter func(*rules.Alarm) bool) []rules.Alarm
	Ack(id, by, note string) (rules.Alarm, error)
}

// AlarmUnacker returns an acknowledged alarm to unacknowledged: an
// acknowledgement nobody followed up (rules.Engine.Unack).
type AlarmUnacker interface {
	Unack(id, by, note string) (rules.Alarm, error)
}

// Deps are the router's collaborators and knobs.
type Deps struct {
	Assets    []collectors.Asset
	Alarms    AlarmSource
	Unack     AlarmUnacker       // optional: forgotten acknowledgements also revert in the engine
	Events    <-chan event.Event // alarm and notify events (a bus subscription); nil: ticks only
	Store     Store
	Links     LinkLedger // used acknowledgement links
	Auditor   Auditor    // optional: told of every link acknowledgement
	Publisher Publisher  // optional: the MQTT channel's broker
	Metrics   *Metrics   // optional
	Log       *slog.Logger
	Now       func() time.Time // default time.Now
	Workers   int              // delivery workers; default 4
	Queue     int              // messages waiting per endpoint for its budget; default 1024 (beyond: the least urgent dropped, counted)
	Tick      time.Duration    // escalation and reconciliation period; default 1s
	Grace     time.Duration    // how long in-flight deliveries may run on after Run's ctx ends; default 5s
	Backoff   delivery.Backoff // per contact; default 1s doubling, 3 attempts
	Sleep     delivery.Sleep   // waits between attempts; default delivery.WallSleep
	Roster    Roster           // optional: the stored duty roster; nil: the config's teams: rotations
	// Sent, when set, is told of each message sent (a delivery attempt
	// recorded with result sent), without the address it went to: the
	// event bus, for replication to the center. It must not block.
	Sent SentObserver
}

// SentObserver is told of each message the router sent (see Deps.Sent).
type SentObserver interface {
	NotificationSent(a Attempt)
}

// Roster says who is on call for a team: the duty roster admins edit in the
// console (rules/duty), seeded from the config's teams:. ok false (a team
// it does not know): the config's rotation is used.
type Roster interface {
	OnCall(team string, now time.Time) (person string, until time.Time, ok bool)
}

// onCall is who is on call for a team: the roster's answer, else the
// config's rotation.
func (r *Router) onCall(t *Team, now time.Time) (string, time.Time) {
	if r.d.Roster != nil {
		if p, until, ok := r.d.Roster.OnCall(t.ID, now); ok {
			return p, until
		}
	}
	return t.OnCall(now)
}

// batch holds a person's alerts during the grouping window.
type batch struct {
	alerts  []*Alert
	flushAt time.Time
}

// Router routes alarm and playbook events to people.
type Router struct {
	cfg       Config
	d         Deps
	assets    map[string]collectors.Asset
	notifiers map[string]Notifier
	people    map[string]*Person
	teams     map[string]*Team
	policies  map[string]*Policy
	log       *slog.Logger
	now       func() time.Time
	since     time.Time // when Run started

	// conf guards the config-derived fields above (cfg, assets, notifiers,
	// people, teams, policies) for readers outside mu (links, the phone
	// pages, the daily review, delivery workers): Reload takes mu, then
	// conf; a reader under conf never takes mu.
	conf sync.RWMutex

	running  atomic.Bool
	started  chan struct{} // closed once open alerts are loaded
	inflight atomic.Int64  // messages queued or being delivered

	mu       sync.Mutex
	alerts   map[string]*Alert   // open (firing or acked)
	seen     map[activation]bool // activations routed (any state) whose alarm may still be active
	pruned   time.Time           // when seen was last pruned
	pending  map[string]*batch   // person → held alerts
	lastSent map[string]time.Time
	jobs     chan *message // handed to the workers, within the endpoints' budgets

	endpoints  []*endpoint          // by name
	endpointOf map[string]*endpoint // channel → its endpoint
	floods     []time.Time          // the latest alarm activations, for flood detection
	playbookOf map[int64]string     // open incidents' playbooks (urgent notifications)
	nudge      chan struct{}        // tells the loop a message waits for a budget
}

// NewRouter compiles the config's channels and builds the router; Run
// starts it. It has no side effects.
func NewRouter(cfg Config, d Deps) (*Router, error) {
	cfg.SetDefaults()
	if d.Store == nil || d.Links == nil || d.Alarms == nil {
		return nil, errors.New("alerts: the router needs a store, a link ledger and an alarm source")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Workers <= 0 {
		d.Workers = 4
	}
	if d.Queue <= 0 {
		d.Queue = 1024
	}
	if d.Tick <= 0 {
		d.Tick = time.Second
	}
	if d.Grace <= 0 {
		d.Grace = 5 * time.Second
	}
	if d.Backoff.Initial <= 0 {
		d.Backoff = delivery.Backoff{Initial: time.Second, Max: 30 * time.Second, Attempts: 3}
	}
	if d.Sleep == nil {
		d.Sleep = delivery.WallSleep
	}
	r := &Router{cfg: cfg, d: d, assets: map[string]collectors.Asset{}, notifiers: map[string]Notifier{},
		people: map[string]*Person{}, teams: map[string]*Team{}, policies: map[string]*Policy{}, log: d.Log, now: d.Now,
		started: make(chan struct{}), alerts: map[string]*Alert{}, seen: map[activation]bool{}, pending: map[string]*batch{},
		lastSent: map[string]time.Time{}, jobs: make(chan *message, d.Workers), endpointOf: map[string]*endpoint{}, playbookOf: map[int64]string{}, nudge: make(chan struct{}, 1)}
	for _, a := range d.Assets {
		r.assets[a.ID] = a
	}
	for name, ch := range cfg.Channels {
		n, err := notify.New(ch, d.Publisher, d.Now)
		if err != nil {
			return nil, fmt.Errorf("alerts: channels.%s: %w", name, err)
		}
		r.notifiers[name] = n
	}
	r.buildEndpoints()
	for i := range r.cfg.People {
		r.people[r.cfg.People[i].ID] = &r.cfg.People[i]
	}
	for i := range r.cfg.Teams {
		r.teams[r.cfg.Teams[i].ID] = &r.cfg.Teams[i]
	}
	for i := range r.cfg.Policies {
		r.policies[r.cfg.Policies[i].ID] = &r.cfg.Policies[i]
	}
	return r, nil
}

// Run loads the escalations in progress (reconciled with the config),
// starts the delivery workers and feeds events and ticks until ctx ends.
// It returns after the workers finished their deliveries in flight (each
// bounded by Deps.Grace after ctx ended), so the store can be closed then.
// Messages still queued at that point are dropped and counted.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("alerts: the router is running already")
	}
	if err := r.load(ctx); err != nil {
		return fmt.Errorf("alerts: loading open alerts: %w", err)
	}
	close(r.started)
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var workers sync.WaitGroup
	for range r.d.Workers {
		workers.Go(func() { r.worker(ctx, dctx) })
	}
	r.loop(ctx)
	stop := time.AfterFunc(r.d.Grace, cancel)
	workers.Wait()
	stop.Stop()
	r.mu.Lock()
	n := len(r.jobs)
	for _, e := range r.endpoints {
		n += len(e.queue)
	}
	r.mu.Unlock()
	if n > 0 {
		r.d.Metrics.dropped("shutdown", n)
		r.log.Warn("messages not sent: the gateway is stopping", "count", n)
	}
	return nil
}

func (r *Router) loop(ctx context.Context) {
	t := time.NewTicker(r.d.Tick)
	defer t.Stop()
	// wake sends what waited for a budget as soon as the budget allows (a
	// robot's next message, a pause's end), between ticks.
	wake := time.NewTimer(r.d.Tick)
	defer wake.Stop()
	events := r.d.Events
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // the bus closed: ticks (and reconciliation) go on
				continue
			}
			r.safely("event", func() { r.OnEvent(ev) })
		case <-t.C:
			r.safely("tick", r.Tick)
			r.d.Metrics.ticked()
		case <-wake.C:
			r.safely("dispatch", r.Dispatch)
		case <-r.nudge: // something waits for a budget: when may it go?
		}
		wake.Reset(r.nextDue())
	}
}

// safely runs fn, turning a panic into a log line and a metric instead of
// a crash (and a crash loop, since the state is persisted).
func (r *Router) safely(what string, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			r.d.Metrics.panicked(what)
			r.log.Error("alert routing failed; continuing", "in", what, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// OnEvent handles one bus event.
func (r *Router) OnEvent(ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	switch ev.Type {
	case event.EventAlarm:
		t, a := ev.Transition, ev.Alarm
		if t == nil || a == nil {
			return
		}
		switch {
		case t.To == rules.StateUnacked && (t.From == rules.StateNormal || t.From == rules.StateRTNUnacked):
			r.fire(a, now)
		case t.To == rules.StateAcked:
			r.markAcked(a.ID, t.By, now)
		case t.To == rules.StateNormal || t.To == rules.StateRTNUnacked:
			r.resolve(a.ID, now)
		}
	case event.EventNotify:
		if ev.Notify != nil {
			r.notifyRoles(ev.Notify, now)
		}
	case event.EventWorkOrder:
		if ev.WorkOrder != nil {
			r.workOrderProgress(ev.WorkOrder, ev.Change, now)
		}
	case event.EventIncident:
		if ev.Incident != nil {
			r.incidentProgress(ev.Incident, now)
		}
	}
}

func priorityRank(p rules.Priority) int {
	return map[rules.Priority]int{rules.Critical: 0, rules.High: 1, rules.Medium: 2, rules.Low: 3}[p]
}

func alertID(a *rules.Alarm) string {
	return a.ID + "@" + strconv.FormatInt(a.ActiveSince.UnixMilli(), 10)
}

func (r *Router) route(rule string, p rules.Priority, category string) *Route {
	a := &rules.Alarm{Rule: rule, Priority: p, Category: category}
	for i := range r.cfg.Routes {
		if r.cfg.Routes[i].matches(a) {
			return &r.cfg.Routes[i]
		}
	}
	return nil
}

func (r *Router) fire(a *rules.Alarm, now time.Time) {
	asset := r.assets[a.Asset]
	al := &Alert{ID: alertID(a), AlarmID: a.ID, Rule: a.Rule, Asset: a.Asset, Name: a.Name, NameZH: a.NameZH,
		Priority: a.Priority, Category: a.Category, Location: locationOf(asset), Building: asset.Building, Since: a.ActiveSince, State: Firing}
	if _, dup := r.alerts[al.ID]; dup {
		return
	}
	r.seen[activationOf(a)] = true
	r.noteActivation(now)
	route := r.route(a.Rule, a.Priority, a.Category)
	switch {
	case route == nil:
		al.State, al.Reason = Inhibited, "no route matches"
	case r.inhibited(al) != "":
		al.State, al.Reason = Inhibited, r.inhibited(al)
	case a.Planned != nil: // planned work (rules/planned): shown on the screens, nobody paged
		al.State, al.Reason = Inhibited, fmt.Sprintf("planned work %d: %s", a.Planned.Work, a.Planned.Title)
	case r.inMaintenance(al, now) != "":
		al.State, al.Reason = Inhibited, r.inMaintenance(al, now)
	}
	if al.State == Inhibited {
		r.save(al)
		r.log.Info("alert not sent", "alert", al.ID, "reason", al.Reason)
		return
	}
	al.Policy, al.Immediate = route.Policy, route.Immediate
	r.alerts[al.ID] = al
	r.notifyLevel(al, now, "alert")
}

func locationOf(a collectors.Asset) string {
	var parts []string
	for _, s := range []string{a.Building, a.Floor, a.Location} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func (r *Router) inhibited(al *Alert) string {
	for _, in := range r.cfg.Inhibit {
		if !slices.Contains(in.Categories, al.Category) || slices.Contains(in.Except, al.Rule) || in.SourceRule == al.Rule {
			continue
		}
		for _, src := range r.d.Alarms.Alarms(func(x *rules.Alarm) bool { return x.Rule == in.SourceRule && x.Active }) {
			if in.Scope == "site" || r.assets[src.Asset].Building == al.Building {
				return "inhibited by " + src.ID
			}
		}
	}
	return ""
}

func (r *Router) inMaintenance(al *Alert, now time.Time) string {
	for _, m := range r.cfg.Maintenance {
		if now.Before(m.From) || !now.Before(m.To) {
			continue
		}
		if slices.Contains(m.Assets, al.Asset) || slices.Contains(m.Buildings, al.Building) {
			return "maintenance window: " + m.Reason
		}
	}
	return ""
}

// targets resolves a level's notify list to people, on call now; unknown
// teams and people are skipped.
func (r *Router) targets(list []string, now time.Time) []*Person {
	var out []*Person
	for _, t := range list {
		kind, id, _ := strings.Cut(t, ":")
		pid := id
		if kind == "team" {
			team := r.teams[id]
			if team == nil {
				continue
			}
			pid, _ = r.onCall(team, now)
		}
		if p := r.people[pid]; p != nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// notifyLevel tells the current level's people and schedules the next level.
func (r *Router) notifyLevel(al *Alert, now time.Time, kind string) {
	p := r.policies[al.Policy]
	if p == nil || al.Level < 0 || al.Level >= len(p.Levels) {
		return // reconciled at load; never reached
	}
	lvl := p.Levels[al.Level]
	for _, person := range r.targets(lvl.Notify, now) {
		if !slices.Contains(al.Notified, person.ID) {
			al.Notified = append(al.Notified, person.ID)
		}
		if kind == "alert" && !al.Immediate {
			r.hold(person, al, now)
			continue
		}
		r.send(person, kind, []*Alert{al}, now)
	}
	al.NextAt = now.Add(lvl.Wait)
	r.save(al)
}

// hold puts an alert in the person's grouping window.
func (r *Router) hold(p *Person, al *Alert, now time.Time) {
	b := r.pending[p.ID]
	if b == nil {
		b = &batch{flushAt: now.Add(r.cfg.GroupWindow)}
		if next := r.lastSent[p.ID].Add(r.cfg.MinInterval); next.After(b.flushAt) {
			b.flushAt = next // rate limit: group more rather than send more
		}
		r.pending[p.ID] = b
	}
	b.alerts = append(b.alerts, al)
}

// send queues one message for a person: urgent (never merged, ahead of
// the queue) when it carries a critical alarm or an immediate route's.
func (r *Router) send(p *Person, kind string, alerts []*Alert, now time.Time) {
	if p == nil {
		return
	}
	r.lastSent[p.ID] = now
	m := &message{person: p, kind: kind, alerts: alerts, rank: rankOf(alerts, 3)}
	for _, a := range alerts {
		m.urgent = m.urgent || kind != "resolved" && (a.Priority == rules.Critical || a.Immediate)
		m.first = m.first || kind != "resolved" && a.Immediate
	}
	r.post(m, now)
}

func ids(alerts []*Alert) []string {
	out := make([]string, len(alerts))
	for i, a := range alerts {
		out[i] = a.ID
	}
	return out
}

// Tick flushes grouping windows, routes activations the bus dropped,
// escalates, and re-notifies lapsed acknowledgements.
func (r *Router) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	people := make([]string, 0, len(r.pending))
	for id := range r.pending {
		people = append(people, id)
	}
	sort.Strings(people)
	for _, id := range people {
		b := r.pending[id]
		if now.Before(b.flushAt) {
			continue
		}
		var due []*Alert
		var later []*Alert
		var until time.Time
		for _, al := range b.alerts {
			if al.State != Firing {
				continue // acknowledged or resolved while held
			}
			if hold, end := r.quiet(al.Priority, now); hold {
				later, until = append(later, al), end
				continue
			}
			due = append(due, al)
		}
		delete(r.pending, id)
		if len(due) > 0 {
			r.send(r.people[id], "alert", due, now)
		}
		if len(later) > 0 {
			r.pending[id] = &batch{alerts: later, flushAt: until}
		}
	}
	defer r.dispatch(now) // budgets refilled, pauses over, acknowledged messages cancelled
	r.reconcileAlarms(now)
	for _, al := range r.alerts {
		switch {
		case al.State == Firing && !now.Before(al.NextAt):
			p := r.policies[al.Policy]
			if p == nil {
				continue // reconciled at load; never reached
			}
			if al.Level+1 < len(p.Levels) {
				al.Level++
			} else if al.Round < p.Repeat {
				al.Round, al.Level = al.Round+1, 0
			} else {
				al.NextAt = time.Time{}.Add(1<<63 - 1) // exhausted: nobody left to tell
				r.save(al)
				continue
			}
			r.notifyLevel(al, now, "escalation")
		case al.State == Acked && !al.AckExpires.IsZero() && !now.Before(al.AckExpires):
			if a, ok := r.d.Alarms.Alarm(al.AlarmID); ok && a.Active {
				r.forgotten(al, now)
			}
		}
	}
}

func (r *Router) quiet(p rules.Priority, now time.Time) (bool, time.Time) {
	for i := range r.cfg.QuietHours {
		if hold, end := r.cfg.QuietHours[i].quiet(p, now); hold {
			return true, end
		}
	}
	return false, time.Time{}
}

func (r *Router) markAcked(alarmID, by string, now time.Time) {
	for _, al := range r.alerts {
		if al.AlarmID == alarmID && al.State == Firing {
			al.State, al.AckedBy, al.AckedAt = Acked, by, now
			if p := r.policies[al.Policy]; p != nil && p.AckExpiry > 0 {
				al.AckExpires = now.Add(p.AckExpiry)
			}
			r.save(al)
		}
	}
	r.dispatch(now) // every scheduled message for it, on every channel, is cancelled
}

func (r *Router) resolve(alarmID string, now time.Time) {
	for id, al := range r.alerts {
		if al.AlarmID != alarmID {
			continue
		}
		al.State = Resolved
		for _, pid := range al.Notified {
			r.send(r.people[pid], "resolved", []*Alert{al}, now)
		}
		r.save(al)
		delete(r.alerts, id)
	}
	r.dispatch(now)
}

func (r *Router) notifyRoles(n *playbook.Notification, now time.Time) {
	var list []string
	for _, role := range n.Roles {
		if team, ok := r.cfg.Roles[role]; ok {
			list = append(list, "team:"+team)
		}
	}
	for _, p := range r.targets(list, now) {
		title := i18n.Both("msg.incident")
		if n.Drill {
			title = i18n.Both("msg.drill")
		}
		text := fmt.Sprintf("【%s】%s", title, n.Text)
		urgent := slices.Contains(r.cfg.UrgentPlaybooks, r.playbookOf[n.Incident])
		r.post(&message{person: p, kind: "notify", text: text, link: r.IncidentLink(n.Incident, p.ID, now), subj: n.Text, drill: n.Drill, urgent: urgent, first: urgent, rank: 1}, now)
	}
}

// save and record run under the router's lock, from ticks and events that
// have no request context; they stop at shutdown through the store closing
// last (Run returns first).
func (r *Router) save(al *Alert) {
	if err := r.d.Store.SaveAlert(context.Background(), al); err != nil {
		r.log.Error("saving alert failed", "alert", al.ID, "err", err)
	}
}

func (r *Router) record(a *Attempt) {
	if err := r.d.Store.AddAttempt(context.Background(), a); err != nil {
		r.log.Error("recording a delivery attempt failed", "err", err)
		return
	}
	if r.d.Sent != nil && a.Result == "sent" && a.Kind != "link_ack" && a.ID != 0 {
		c := *a
		c.Address, c.ClientIP, c.Error = "", "", "" // contact details stay at the site
		r.d.Sent.NotificationSent(c)
	}
}

// OnCallNow lists who is on call per team.
func (r *Router) OnCallNow() []OnCall {
	r.conf.RLock()
	defer r.conf.RUnlock()
	now := r.now()
	var out []OnCall
	for i := range r.cfg.Teams {
		t := &r.cfg.Teams[i]
		p, until := r.onCall(t, now)
		name := p
		if r.people[p] != nil {
			name = r.people[p].Name
		}
		out = append(out, OnCall{Team: t.ID, TeamName: t.Name, Person: p, Name: name, Until: until})
	}
	return out
}

// OnCall is one team's on-call person.
type OnCall struct {
	Team     string    `json:"team"`
	TeamName string    `json:"team_name"`
	Person   string    `json:"person"`
	Name     string    `json:"name"`
	Until    time.Time `json:"until"`
}
