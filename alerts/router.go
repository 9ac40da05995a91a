package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
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
	Notified   []string       `json:"notified,omitempty"` // people told so far
}

// Attempt is one delivery attempt, recorded and readable through the API.
type Attempt struct {
	ID      int64         `json:"id"`
	At      time.Time     `json:"at"`
	Kind    string        `json:"kind"` // alert, escalation, reminder, resolved, notify
	Alerts  []string      `json:"alerts,omitempty"`
	Alarms  []string      `json:"alarms,omitempty"`
	Person  string        `json:"person"`
	Channel string        `json:"channel"`
	Address string        `json:"address,omitempty"`
	Try     int           `json:"try"`
	Result  string        `json:"result"` // sent, failed, will_retry
	Error   string        `json:"error,omitempty"`
	Latency time.Duration `json:"latency_ns"`
	Drill   bool          `json:"drill"`
}

// AlarmSource is what the router needs from the rules engine.
type AlarmSource interface {
	Alarm(id string) (rules.Alarm, bool)
	Alarms(filter func(*rules.Alarm) bool) []rules.Alarm
	Ack(id, by, note string) (rules.Alarm, error)
}

// job is one message for one person, handed to the delivery workers.
type job struct {
	person *Person
	kind   string
	alerts []*Alert
	text   string
	subj   string
	drill  bool
	queued time.Time
}

// batch holds a person's alerts during the grouping window.
type batch struct {
	alerts  []*Alert
	flushAt time.Time
}

// Router routes alarm and playbook events to people.
type Router struct {
	cfg       Config
	assets    map[string]collectors.Asset
	source    AlarmSource
	store     *Store
	notifiers map[string]Notifier
	people    map[string]*Person
	teams     map[string]*Team
	policies  map[string]*Policy
	log       *slog.Logger
	now       func() time.Time
	backoff   time.Duration // first retry delay

	mu       sync.Mutex
	alerts   map[string]*Alert // open (firing or acked)
	pending  map[string]*batch // person → held alerts
	lastSent map[string]time.Time
	jobs     chan job
	wg       sync.WaitGroup
}

// NewRouter builds the router; Start launches its workers.
func NewRouter(cfg Config, assets []collectors.Asset, source AlarmSource, store *Store, pub Publisher, log *slog.Logger, now func() time.Time) *Router {
	cfg.SetDefaults()
	r := &Router{cfg: cfg, assets: map[string]collectors.Asset{}, source: source, store: store, notifiers: map[string]Notifier{},
		people: map[string]*Person{}, teams: map[string]*Team{}, policies: map[string]*Policy{}, log: log, now: now, backoff: time.Second,
		alerts: map[string]*Alert{}, pending: map[string]*batch{}, lastSent: map[string]time.Time{}, jobs: make(chan job, 1024)}
	for _, a := range assets {
		r.assets[a.ID] = a
	}
	for name, ch := range cfg.Channels {
		r.notifiers[name] = NewNotifier(ch, pub, now)
	}
	for i := range r.cfg.People {
		r.people[r.cfg.People[i].ID] = &r.cfg.People[i]
	}
	for i := range r.cfg.Teams {
		r.teams[r.cfg.Teams[i].ID] = &r.cfg.Teams[i]
	}
	for i := range r.cfg.Policies {
		r.policies[r.cfg.Policies[i].ID] = &r.cfg.Policies[i]
	}
	return r
}

// Start loads escalations in progress and starts the delivery workers.
func (r *Router) Start(ctx context.Context, workers int) error {
	open, err := r.store.OpenAlerts(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, a := range open {
		r.alerts[a.ID] = a
	}
	r.mu.Unlock()
	for i := 0; i < workers; i++ {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.worker(ctx) }()
	}
	return nil
}

// Run feeds bus events and ticks until ctx ends.
func (r *Router) Run(ctx context.Context, bus *event.Bus, every time.Duration) {
	event.Drive(ctx, bus.Subscribe(4096), every, r.OnEvent, r.Tick)
}

// Wait waits for the workers after ctx ended.
func (r *Router) Wait() { r.wg.Wait() }

// OnEvent handles one bus event.
func (r *Router) OnEvent(ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	switch ev.Type {
	case event.EventAlarm:
		t, a := ev.Transition, ev.Alarm
		switch {
		case t.To == rules.StateUnacked && (t.From == rules.StateNormal || t.From == rules.StateRTNUnacked):
			r.fire(a, now)
		case t.To == rules.StateAcked:
			r.markAcked(a.ID, t.By, now)
		case t.To == rules.StateNormal || t.To == rules.StateRTNUnacked:
			r.resolve(a.ID, now)
		}
	case event.EventNotify:
		r.notifyRoles(ev.Notify, now)
	}
}

func priorityRank(p rules.Priority) int {
	return map[rules.Priority]int{rules.Critical: 0, rules.High: 1, rules.Medium: 2, rules.Low: 3}[p]
}

func (r *Router) fire(a *rules.Alarm, now time.Time) {
	asset := r.assets[a.Asset]
	al := &Alert{ID: a.ID + "@" + strconv.FormatInt(a.ActiveSince.UnixMilli(), 10), AlarmID: a.ID, Rule: a.Rule, Asset: a.Asset, Name: a.Name, NameZH: a.NameZH,
		Priority: a.Priority, Category: a.Category, Location: locationOf(asset), Building: asset.Building, Since: a.ActiveSince, State: Firing}
	if _, dup := r.alerts[al.ID]; dup {
		return
	}
	var route *Route
	for i := range r.cfg.Routes {
		if r.cfg.Routes[i].matches(a) {
			route = &r.cfg.Routes[i]
			break
		}
	}
	switch {
	case route == nil:
		al.State, al.Reason = Inhibited, "no route matches"
	case r.inhibited(al) != "":
		al.State, al.Reason = Inhibited, r.inhibited(al)
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
		for _, src := range r.source.Alarms(func(x *rules.Alarm) bool { return x.Rule == in.SourceRule && x.Active }) {
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

// targets resolves a level's notify list to people, on call now.
func (r *Router) targets(list []string, now time.Time) []*Person {
	var out []*Person
	for _, t := range list {
		kind, id, _ := strings.Cut(t, ":")
		pid := id
		if kind == "team" {
			pid, _ = r.teams[id].OnCall(now)
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

// send queues one message for a person, unless quiet hours hold it.
func (r *Router) send(p *Person, kind string, alerts []*Alert, now time.Time) {
	subj, text := r.render(p, kind, alerts, now)
	r.lastSent[p.ID] = now
	select {
	case r.jobs <- job{person: p, kind: kind, alerts: alerts, text: text, subj: subj, queued: now}:
	default:
		r.log.Error("delivery queue full; message dropped", "person", p.ID, "kind", kind)
		r.record(&Attempt{At: now, Kind: kind, Alerts: ids(alerts), Person: p.ID, Result: "failed", Error: "delivery queue full"})
	}
}

func ids(alerts []*Alert) []string {
	out := make([]string, len(alerts))
	for i, a := range alerts {
		out[i] = a.ID
	}
	return out
}

// Tick flushes grouping windows, escalates, and re-notifies lapsed acknowledgements.
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
	for _, al := range r.alerts {
		switch {
		case al.State == Firing && !now.Before(al.NextAt):
			p := r.policies[al.Policy]
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
			if a, ok := r.source.Alarm(al.AlarmID); ok && a.Active {
				al.State, al.AckExpires = Firing, time.Time{}
				r.notifyLevel(al, now, "reminder")
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
			if p := r.policies[al.Policy]; p.AckExpiry > 0 {
				al.AckExpires = now.Add(p.AckExpiry)
			}
			r.save(al)
		}
	}
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
}

func (r *Router) notifyRoles(n *playbook.Notification, now time.Time) {
	var list []string
	for _, role := range n.Roles {
		if team, ok := r.cfg.Roles[role]; ok {
			list = append(list, "team:"+team)
		}
	}
	for _, p := range r.targets(list, now) {
		title := "Incident"
		if n.Drill {
			title = "DRILL 演练"
		}
		text := fmt.Sprintf("【%s】%s\n%s", title, n.Text, r.incidentLink(n.Incident))
		select {
		case r.jobs <- job{person: p, kind: "notify", text: text, subj: n.Text, drill: n.Drill, queued: now}:
		default:
			r.record(&Attempt{At: now, Kind: "notify", Person: p.ID, Result: "failed", Error: "delivery queue full", Drill: n.Drill})
		}
	}
}

func (r *Router) incidentLink(id int64) string {
	return fmt.Sprintf("%s/api/v1/incidents/%d/report?format=html", strings.TrimSuffix(r.cfg.BaseURL, "/"), id)
}

func (r *Router) save(al *Alert) {
	if err := r.store.SaveAlert(context.Background(), al); err != nil {
		r.log.Error("saving alert failed", "alert", al.ID, "err", err)
	}
}

func (r *Router) record(a *Attempt) {
	if err := r.store.AddAttempt(context.Background(), a); err != nil {
		r.log.Error("recording a delivery attempt failed", "err", err)
	}
}

// worker delivers jobs: contacts in order, retrying retryable failures with
// backoff, falling back to the person's next contact when one fails.
func (r *Router) worker(ctx context.Context) {
	for {
		var j job
		select {
		case <-ctx.Done():
			return
		case j = <-r.jobs:
		}
		alarms := make([]string, len(j.alerts))
		for i, a := range j.alerts {
			alarms[i] = a.AlarmID
		}
		delivered := false
		for _, c := range j.person.Contacts {
			n := r.notifiers[c.Channel]
			wait := r.backoff
			for try := 1; try <= 3 && !delivered; try++ {
				start := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				retry, err := n.Notify(cctx, &Message{To: j.person.ID, Address: c.Address, Subject: j.subj, Text: j.text, Alerts: ids(j.alerts)})
				cancel()
				at := &Attempt{At: r.now(), Kind: j.kind, Alerts: ids(j.alerts), Alarms: alarms, Person: j.person.ID, Channel: c.Channel,
					Address: c.Address, Try: try, Result: "sent", Latency: time.Since(start), Drill: j.drill}
				if err == nil {
					delivered = true
					r.record(at)
					break
				}
				at.Error = err.Error()
				at.Result = "failed"
				if retry && try < 3 {
					at.Result = "will_retry"
				}
				r.record(at)
				if !retry {
					break // final: try the next contact
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait *= 2
			}
			if delivered {
				break
			}
		}
		if !delivered {
			r.log.Error("could not reach person on any channel", "person", j.person.ID, "kind", j.kind)
		}
	}
}

// Link errors.
var (
	ErrBadSignature = errors.New("this acknowledgement link is not valid (it was changed or is not ours)")
	ErrLinkExpired  = errors.New("this acknowledgement link has expired; acknowledge in the console")
)

// AckLink makes the signed, expiring link a message carries.
func (r *Router) AckLink(alertID, person string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(r.cfg.LinkTTL).Unix(), 10)
	q := url.Values{"by": {person}, "exp": {exp}, "sig": {r.sign(alertID, person, exp)}}
	return strings.TrimSuffix(r.cfg.BaseURL, "/") + "/api/v1/alerts/" + url.PathEscape(alertID) + "/ack?" + q.Encode()
}

func (r *Router) sign(alertID, person, exp string) string {
	m := hmac.New(sha256.New, []byte(r.cfg.LinkSecret))
	m.Write([]byte(alertID + "\n" + person + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// AckByLink checks a link and acknowledges the alert's alarm as the person.
func (r *Router) AckByLink(alertID, person, exp, sig string) (*Alert, error) {
	want := r.sign(alertID, person, exp)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return nil, ErrBadSignature
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !r.now().Before(time.Unix(e, 0)) {
		return nil, ErrLinkExpired
	}
	r.mu.Lock()
	al, ok := r.alerts[alertID]
	r.mu.Unlock()
	if !ok {
		stored, err := r.store.Alert(context.Background(), alertID)
		if err != nil {
			return nil, err
		}
		return stored, nil // already resolved or acknowledged: nothing to do, say what it was
	}
	name := person
	if p := r.people[person]; p != nil && p.Name != "" {
		name = p.Name
	}
	if _, err := r.source.Ack(al.AlarmID, name, "acknowledged from the message link"); err != nil && !errors.Is(err, rules.ErrNothingToAck) {
		return nil, err
	}
	r.mu.Lock()
	r.markAcked(al.AlarmID, name, r.now()) // also when the alarm was acknowledged already
	c := *al
	r.mu.Unlock()
	return &c, nil
}

// OnCallNow lists who is on call per team.
func (r *Router) OnCallNow() []OnCall {
	now := r.now()
	var out []OnCall
	for _, t := range r.cfg.Teams {
		p, until := t.OnCall(now)
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

// Store returns the router's store.
func (r *Router) Store() *Store { return r.store }
