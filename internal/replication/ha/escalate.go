package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/postgres"
)

// Escalation is the payload of a center escalation: a site's alarm nobody
// acknowledged within center.escalate.after.
type Escalation struct {
	Site     string    `json:"site"`
	SiteName string    `json:"site_name,omitempty"` // center.sites[].name
	Region   string    `json:"region,omitempty"`    // center.sites[].region
	Alarm    string    `json:"alarm"`
	Name     string    `json:"name,omitempty"`
	NameZH   string    `json:"name_zh,omitempty"`
	Priority string    `json:"priority"`
	Since    time.Time `json:"since"`
	Value    string    `json:"value,omitempty"`
	Minutes  int       `json:"minutes"` // unacknowledged for, when escalated
	Text     string    `json:"text"`    // Chinese first
	TextEN   string    `json:"text_en"`
}

// EscalationStore is what escalating needs of the center's database.
type EscalationStore interface {
	OverdueAlarms(ctx context.Context, priorities []string, before time.Time, limit int) ([]postgres.Overdue, error)
	Escalate(ctx context.Context, key string, ns []replication.Notification, unrouted replication.Notification) (int, error)
	Claim(ctx context.Context, s *postgres.LockSession, ep *postgres.Epoch, by string, limit int, stale time.Duration, now time.Time) ([]replication.Notification, error)
	Sent(ctx context.Context, key string, at time.Time) error
	Failed(ctx context.Context, key, why string, retry time.Time, maxAttempts int) error
}

// EscalatorDeps are an Escalator's collaborators.
type EscalatorDeps struct {
	Store EscalationStore
	// Sender delivers a notification to its route's receiver (default:
	// Routes over the config's webhooks).
	Sender Sender
	Sites  []replication.SiteInfo // center.sites: names and regions
	By     string                 // who claims (the instance's client id)
	Log    *slog.Logger
	Now    func() time.Time
	Loc    *time.Location // how times read in messages; default time.Local
}

// Escalator is the center's singleton work of escalating alarms nobody
// acknowledged and sending the notifications, routed by the site's
// region: run by whoever holds the leader lock — a group's leader, or a
// single center (alone, trivially the leader; the lock still keeps a
// second one started by mistake from sending too).
type Escalator struct {
	cfg     replication.EscalateConfig
	d       EscalatorDeps
	sites   map[string]replication.SiteInfo
	metrics *escalationMetrics
	kick    chan struct{}
}

// NewEscalator builds the work (nothing runs until Run); cfg has its
// defaults and was validated.
func NewEscalator(cfg replication.EscalateConfig, d EscalatorDeps) *Escalator {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Loc == nil {
		d.Loc = time.Local
	}
	if d.Sender == nil {
		d.Sender = NewRoutes(cfg.Receivers(), &http.Client{Timeout: cfg.SendTimeout})
	}
	sites := make(map[string]replication.SiteInfo, len(d.Sites))
	for _, s := range d.Sites {
		sites[s.ID] = s
	}
	return &Escalator{cfg: cfg, d: d, sites: sites, kick: make(chan struct{}, 1)}
}

// Run escalates and sends while the term lasts (ctx ends with it); s is
// the leader's lock session: every claim goes through it.
func (e *Escalator) Run(ctx context.Context, s *postgres.LockSession, t postgres.Term) {
	var wg sync.WaitGroup
	wg.Go(func() { e.escalateLoop(ctx) })
	wg.Go(func() { e.dispatchLoop(ctx, s, t) })
	wg.Wait()
}

// escalateLoop records the escalations of each overdue alarm (once per
// occurrence: the key is site, alarm and since; one notification per
// route covering the site) and wakes the sender.
func (e *Escalator) escalateLoop(ctx context.Context) {
	every(ctx, e.cfg.Every, nil, func() {
		now := e.d.Now()
		due, err := e.d.Store.OverdueAlarms(ctx, e.cfg.Priorities, now.Add(-e.cfg.After), 500)
		if err != nil {
			if ctx.Err() == nil {
				e.d.Log.Warn("center: looking for overdue alarms", "err", err)
			}
			return
		}
		added := 0
		for _, o := range due {
			site := e.sites[o.Site]
			routes := e.cfg.Match(o.Site, site.Region)
			ns, unrouted, err := escalations(o, site, routes, now, e.d.Loc)
			if err != nil {
				e.d.Log.Warn("center: escalation not recorded", "site", o.Site, "alarm", o.Key, "err", err)
				continue
			}
			n, err := e.d.Store.Escalate(ctx, o.Escalation, ns, unrouted)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// One alarm the store refuses must not hold up the others.
				e.d.Log.Warn("center: recording an escalation", "site", o.Site, "err", err)
				continue
			}
			if len(routes) == 0 {
				e.metrics.notification("unrouted")
				e.d.Log.Warn("center: an escalation no route covers: nobody is told; fix: a route for its region or site, or a default route (center.escalate.routes)",
					"site", o.Site, "region", site.Region, "alarm", o.Key)
				continue
			}
			if n > 0 {
				e.metrics.escalated()
			}
			added += n
		}
		if added > 0 {
			select {
			case e.kick <- struct{}{}:
			default:
			}
		}
	})
}

// escalations builds an overdue alarm's notification for each route
// (key: the escalation's key and the route's id), and the record of an
// escalation no route covers.
func escalations(o postgres.Overdue, site replication.SiteInfo, routes []replication.EscalationRoute, now time.Time, loc *time.Location) ([]replication.Notification, replication.Notification, error) {
	var a struct {
		Name   string `json:"name"`
		NameZH string `json:"name_zh"`
		Value  string `json:"value"`
	}
	_ = json.Unmarshal(o.Doc, &a) // the record came through Decode; a field it lacks stays empty
	// What the site wrote goes into a chat message: one short line each
	// (no newlines to fake another message's lines, no markup length).
	a.Name, a.NameZH, a.Value = plainLine(a.Name), plainLine(a.NameZH), plainLine(a.Value)
	min := int(now.Sub(o.Since) / time.Minute)
	p := Escalation{Site: o.Site, SiteName: site.Name, Region: site.Region, Alarm: o.Key, Name: a.Name, NameZH: a.NameZH,
		Priority: o.Priority, Since: o.Since, Value: a.Value, Minutes: min}
	name := func(lang i18n.Lang) string {
		if s := i18n.Pick(lang, a.NameZH, a.Name); s != "" {
			return s
		}
		return plainLine(o.Key)
	}
	where := o.Site
	if site.Name != "" {
		where = site.Name
	}
	if site.Region != "" {
		where = site.Region + " " + where
	}
	text := func(lang i18n.Lang) string {
		return fmt.Sprintf("【%s】%s · %s（%s）%s %s，%s", i18n.T(lang, "msg.kind.escalation"), where, name(lang), i18n.T(lang, "priority."+o.Priority),
			i18n.T(lang, "msg.since"), o.Since.In(loc).Format("01-02 15:04"), i18n.Tf(lang, "msg.center_unacked", min))
	}
	p.Text, p.TextEN = text(i18n.ZH), text(i18n.EN)
	b, err := json.Marshal(p)
	if err != nil {
		return nil, replication.Notification{}, err
	}
	base := replication.Notification{Key: o.Escalation, Site: o.Site, Kind: "escalation", Created: now, Payload: b}
	ns := make([]replication.Notification, 0, len(routes))
	for _, r := range routes {
		n := base
		n.Key, n.Route = o.Escalation+"@"+r.ID, r.ID
		ns = append(ns, n)
	}
	return ns, base, nil
}

// dispatchLoop sends what is recorded, claimed through the leader's lock
// connection: a claim succeeds only while this instance holds the lock.
// A notification whose sender died mid-send is sent again once its claim
// is older than stale (longer than a send may take), with its attempt
// number: the receiver can tell, and drops a copy by the key.
func (e *Escalator) dispatchLoop(ctx context.Context, s *postgres.LockSession, t postgres.Term) {
	stale := e.cfg.SendTimeout + s.Grace() + time.Second
	every(ctx, s.Every(), e.kick, func() {
		for ctx.Err() == nil {
			batch, err := e.d.Store.Claim(ctx, s, t.Epoch, e.d.By, claimBatch, stale, e.d.Now())
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, postgres.ErrEpochOver) {
					e.d.Log.Warn("center: claiming notifications", "err", err)
				}
				return
			}
			if len(batch) == 0 {
				return
			}
			for _, n := range batch {
				e.send(ctx, n)
			}
		}
	})
}

func (e *Escalator) send(ctx context.Context, n replication.Notification) {
	sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
	err := e.d.Sender.Send(sctx, n)
	cancel()
	// The outcome is a fact: recorded even if leadership ended meanwhile.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if err == nil {
		e.metrics.notification("sent")
		if err := e.d.Store.Sent(rctx, n.Key, e.d.Now()); err != nil {
			e.d.Log.Warn("center: recording a sent notification", "key", n.Key, "err", err)
		}
		return
	}
	result, attempts := "retry", maxAttempts
	if n.Attempt >= maxAttempts || errors.Is(err, ErrNoRoute) {
		result, attempts = "failed", 0 // a route no longer configured: given up at once
	}
	e.metrics.notification(result)
	e.d.Log.Warn("center: notification not delivered", "key", n.Key, "route", n.Route, "attempt", n.Attempt, "err", err)
	retry := e.d.Now().Add(min(time.Duration(n.Attempt)*10*time.Second, 5*time.Minute))
	if err := e.d.Store.Failed(rctx, n.Key, err.Error(), retry, attempts); err != nil {
		e.d.Log.Warn("center: recording a failed notification", "key", n.Key, "err", err)
	}
}

// ErrNoRoute: a notification's route is not (any more) configured.
var ErrNoRoute = errors.New("no such route under center.escalate.routes")

// Routes sends each notification to its route's receiver; a notification
// recorded before routes existed (route "") goes to the default route.
type Routes map[string]Sender

// NewRoutes is Routes over the routes' webhooks, posting with client.
func NewRoutes(rs []replication.EscalationRoute, client *http.Client) Routes {
	out := make(Routes, len(rs)+1)
	for _, r := range rs {
		out[r.ID] = Webhook{URL: r.Webhook, Client: client}
		if r.Default() {
			out[""] = out[r.ID]
		}
	}
	return out
}

// Send implements Sender.
func (r Routes) Send(ctx context.Context, n replication.Notification) error {
	s, ok := r[n.Route]
	if !ok {
		return fmt.Errorf("route %q: %w", n.Route, ErrNoRoute)
	}
	return s.Send(ctx, n)
}

type escalationMetrics struct {
	notifications *prometheus.CounterVec
	escalations   prometheus.Counter
}

// RegisterMetrics registers gateway_center_escalations_total and
// gateway_center_notifications_total{result} on reg (before Run).
func (e *Escalator) RegisterMetrics(reg prometheus.Registerer) {
	m := &escalationMetrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_center_notifications_total",
			Help: "Center notifications this instance tried to send as leader, by result: sent, retry (failed, tried again later), failed (given up), unrouted (an escalation no route covers: nobody told)."}, []string{"result"}),
		escalations: prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_center_escalations_total",
			Help: "Overdue alarms this instance recorded for escalation as leader (each occurrence once per center, to each route covering its site)."}),
	}
	for _, r := range []string{"sent", "retry", "failed", "unrouted"} {
		m.notifications.WithLabelValues(r)
	}
	reg.MustRegister(m.notifications, m.escalations)
	e.metrics = m
}

func (m *escalationMetrics) notification(result string) {
	if m != nil {
		m.notifications.WithLabelValues(result).Inc()
	}
}

func (m *escalationMetrics) escalated() {
	if m != nil {
		m.escalations.Inc()
	}
}

// Webhook posts each notification as JSON to a URL, with the headers
// Idempotency-Key (the notification's key) and X-Attempt.
type Webhook struct {
	URL    string
	Client *http.Client
}

// Send implements Sender; a 2xx answer is delivery. Errors never carry
// the URL (it may hold a token).
func (w Webhook) Send(ctx context.Context, n replication.Notification) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return errors.New("webhook: the URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", n.Key)
	req.Header.Set("X-Attempt", strconv.Itoa(n.Attempt))
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: answered %s", resp.Status)
	}
	return nil
}

// plainLine is site-supplied text for a message: control characters
// (newlines included) as spaces, at most 64 characters.
func plainLine(s string) string {
	r := []rune(strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' {
			return ' '
		}
		return c
	}, s))
	if len(r) > 64 {
		r = append(r[:63], '…')
	}
	return string(r)
}
