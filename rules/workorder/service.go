package workorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
)

// Config is the work-order part of the rules: section.
type Config struct {
	ReopenWindow time.Duration  `yaml:"reopen_window"` // a fault back within this reopens its work order; default 24h
	SLA          SLA            `yaml:"sla"`
	Webhook      *WebhookConfig `yaml:"webhook"`
	// The service standard (issue 12): the repair categories with their
	// time limits, the working-day calendar, call-back deadlines, the
	// site's targets and the daily review's push.
	Categories  []Category     `yaml:"categories"`
	Calendar    Calendar       `yaml:"calendar"`
	Callback    CallbackConfig `yaml:"callback"`
	Targets     Targets        `yaml:"targets"`
	DailyReview ReviewConfig   `yaml:"daily_review"`
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.ReopenWindow == 0 {
		c.ReopenWindow = 24 * time.Hour
	}
	c.SLA.SetDefaults()
	if c.Webhook != nil {
		c.Webhook.SetDefaults()
	}
	c.Calendar.SetDefaults()
	if c.Callback.WorkingDays == 0 {
		c.Callback.WorkingDays = 1
	}
	if c.Callback.AfterRework == 0 {
		c.Callback.AfterRework = 72 * time.Hour
	}
	if c.Callback.ReopenOnFail == nil {
		t := true
		c.Callback.ReopenOnFail = &t
	}
	c.Targets.SetDefaults()
	if c.DailyReview.At == "" {
		c.DailyReview.At = "08:30"
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	if err := c.SLA.Validate(); err != nil {
		return cfgerr.Prefix("sla", err)
	}
	if c.Webhook != nil {
		if err := c.Webhook.Validate(); err != nil {
			return cfgerr.Prefix("webhook", err)
		}
	}
	if err := validateCategories(c.Categories); err != nil {
		return err
	}
	if err := c.Calendar.Validate(); err != nil {
		return cfgerr.Prefix("calendar", err)
	}
	if c.Callback.WorkingDays < 0 || c.Callback.AfterRework < 0 {
		return cfgerr.Errorf("callback", "working_days and after_rework must not be negative")
	}
	if err := c.Targets.Validate(); err != nil {
		return cfgerr.Prefix("targets", err)
	}
	if !hhmmRE.MatchString(c.DailyReview.At) {
		return cfgerr.Errorf("daily_review.at", "%q is not a time of day; fix: HH:MM, e.g. 08:30", c.DailyReview.At)
	}
	return nil
}

// Filter selects work orders; zero fields match everything.
type Filter struct {
	Open          bool // only statuses still being worked on (and resolved awaiting call-back)
	Status        Status
	Asset         string
	Category      string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Limit         int
}

// ErrReasonRequired: cancelling a work order or lowering its priority
// needs a reason, recorded in its history.
var ErrReasonRequired = errors.New("a reason is required (note): cancelling a work order or lowering its priority is recorded with why")

// ErrConflict: the stored work order changed since it was read.
var ErrConflict = errors.New("the work order was changed by someone else; reload and retry")

// Store keeps work orders and their history.
type Store interface {
	// CreateWorkOrder inserts w (setting its ID) with its first history entry.
	CreateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error
	// UpdateWorkOrder saves w if its stored version is w.Version-1
	// (ErrConflict otherwise).
	UpdateWorkOrder(ctx context.Context, w *WorkOrder, h HistoryEntry) error
	// WorkOrder is one order with its history (rules.ErrNotFound if none).
	WorkOrder(ctx context.Context, id int64) (*WorkOrder, []HistoryEntry, error)
	WorkOrders(ctx context.Context, f Filter) ([]*WorkOrder, error)
	// LatestWorkOrderFor is the newest order a rule opened for an asset.
	LatestWorkOrderFor(ctx context.Context, rule, asset string) (*WorkOrder, error)
}

// Observer is told of every created or changed work order.
type Observer interface {
	WorkOrderChanged(w WorkOrder, h HistoryEntry)
}

// Service opens, moves and checks work orders. It implements
// rules.FireHandler: a rule with a workorder: block opens one through it.
type Service struct {
	cfg       Config
	store     Store
	obs       []Observer
	assets    map[string]collectors.Asset
	log       *slog.Logger
	now       func() time.Time
	mu        sync.Mutex // one change at a time (read, modify, save)
	slaPeriod time.Duration
}

var _ rules.FireHandler = (*Service)(nil)

// NewService builds the service.
func NewService(cfg Config, assets []collectors.Asset, store Store, log *slog.Logger, now func() time.Time, obs ...Observer) *Service {
	cfg.SetDefaults()
	s := &Service{cfg: cfg, store: store, obs: obs, assets: map[string]collectors.Asset{}, log: log, now: now, slaPeriod: 10 * time.Second}
	for _, a := range assets {
		s.assets[a.ID] = a
	}
	return s
}

// AlarmFired implements rules.FireHandler: it opens a work order for a
// firing rule, or appends to the open one for the same rule and asset, or
// reopens one resolved recently.
func (s *Service) AlarmFired(ctx context.Context, f rules.Fired) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	spec, now := f.Rule.WorkOrder, f.At
	latest, err := s.store.LatestWorkOrderFor(ctx, f.Rule.ID, f.Asset.ID)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%s fired again (value %s)", f.Rule.ID, f.Alarm.Value)
	switch {
	case latest != nil && latest.Status != Closed && latest.Status != Cancelled && latest.Status != Resolved && latest.Status != CallbackDone:
		latest.Occurrences++
		latest.Version++
		latest.Updated = now
		return s.save(ctx, latest, HistoryEntry{At: now, By: rules.ByEngine, Note: note})
	case latest != nil && latest.Status != Cancelled && now.Sub(latest.ResolvedAt) < s.cfg.ReopenWindow && !latest.ResolvedAt.IsZero():
		from := latest.Status
		latest.Status, latest.ResolvedAt, latest.CallbackAt, latest.ClosedAt = InProgress, time.Time{}, time.Time{}, time.Time{}
		latest.ResolutionDue, latest.ResolutionBreached = now.Add(s.cfg.resolutionTime(latest)), false
		latest.CallbackDue, latest.Reworks = time.Time{}, latest.Reworks+1
		latest.Occurrences++
		latest.Version++
		latest.Updated = now
		return s.save(ctx, latest, HistoryEntry{At: now, By: rules.ByEngine, From: from, To: InProgress,
			Note: fmt.Sprintf("reopened: the fault came back within %s of being resolved (value %s)", s.cfg.ReopenWindow, f.Alarm.Value)})
	}
	a := f.Asset
	w := &WorkOrder{Type: Fault, Channel: "gateway", Category: spec.Category, Asset: a.ID, Location: rules.Location(a), Priority: spec.Priority,
		Description: description(f.Rule.NameZH, f.Rule.Name, a.Name, f.Alarm.Value),
		Status:      Opened, Source: "rule", Rule: f.Rule.ID, AlarmID: f.Alarm.ID, Reporter: rules.ByEngine, Occurrences: 1, Version: 1}
	return s.create(ctx, w, now, rules.ByEngine, "opened by rule "+f.Rule.ID)
}

func (s *Service) create(ctx context.Context, w *WorkOrder, now time.Time, by, note string) error {
	d := s.cfg.SLA.For(w.Category, w.Priority)
	w.Created, w.Updated = now, now
	// The resolution deadline counts from acceptance (接单); until then it
	// is provisional: the response time plus the category's time limit.
	w.ResponseDue, w.ResolutionDue = now.Add(d.Response), now.Add(d.Response+s.cfg.resolutionTime(w))
	if a := s.cfg.arrivalTime(w); a > 0 {
		w.ArrivalDue = now.Add(a)
	}
	h := HistoryEntry{At: now, By: by, To: Opened, Note: note}
	if err := s.store.CreateWorkOrder(ctx, w, h); err != nil {
		return err
	}
	h.WorkOrder = w.ID
	s.tell(*w, h)
	return nil
}

func (s *Service) save(ctx context.Context, w *WorkOrder, h HistoryEntry) error {
	if err := s.store.UpdateWorkOrder(ctx, w, h); err != nil {
		return err
	}
	h.WorkOrder = w.ID
	s.tell(*w, h)
	return nil
}

func (s *Service) tell(w WorkOrder, h HistoryEntry) {
	for _, o := range s.obs {
		o.WorkOrderChanged(w, h)
	}
}

// Create opens a work order by hand (a resident's call) or for a playbook;
// by is who entered it (recorded in the history), w.Reporter who reported
// it (a resident, the front desk), the same when empty.
func (s *Service) Create(ctx context.Context, w WorkOrder, by string) (*WorkOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.Asset != "" {
		a, ok := s.assets[w.Asset]
		if !ok {
			return nil, fmt.Errorf("asset %q is not declared", w.Asset)
		}
		if w.Location == "" {
			w.Location = rules.Location(a)
		}
	}
	if w.Type == "" {
		w.Type = Repair
	}
	if !w.Type.Valid() {
		return nil, fmt.Errorf("type %q is not a work-order type; fix: repair (报修), complaint (投诉), help (求助), suggestion (建议), fault or pm", w.Type)
	}
	if w.Channel == "" {
		w.Channel = "phone"
		if !w.Type.FromResident() {
			w.Channel = "monitoring_center"
		}
	}
	if !slices.Contains(Channels, w.Channel) {
		return nil, fmt.Errorf("channel %q is not a channel; fix: one of %s", w.Channel, strings.Join(Channels, ", "))
	}
	if err := s.cfg.CheckCategory(w.Category); err != nil {
		return nil, err
	}
	w.Status, w.Source, w.Version, w.Occurrences = Opened, "manual", 1, 1
	if w.Reporter == "" {
		w.Reporter = by
	}
	if w.FirstResponsible == "" {
		w.FirstResponsible = by // 首问负责制: who took the report owns it until it is closed
	}
	note := "opened by " + by
	if w.Reporter != by {
		note += ", reported by " + w.Reporter
	}
	if err := s.create(ctx, &w, s.now(), by, note); err != nil {
		return nil, err
	}
	return &w, nil
}

// ErrUseCallback: a call-back is recorded with its outcome, not as a bare
// status change.
var ErrUseCallback = errors.New(`a call-back is recorded with its outcome: POST /api/v1/workorders/{id}/callback {"outcome": "satisfied"|"fairly_satisfied"|"unsatisfied", "note"}`)

// ErrComplaintSteps: a complaint is resolved only once its cause was
// analysed, a solution decided and the complainant told (002).
var ErrComplaintSteps = errors.New("a complaint is resolved once its analysis, solution and feedback are recorded (投诉：分析原因 → 制定解决方案 → 处理并反馈); fix: PATCH the work order with analysis, solution and feedback")

// ErrOutcome: an unknown call-back outcome.
var ErrOutcome = errors.New(`outcome must be satisfied (满意), fairly_satisfied (基本满意) or unsatisfied (不满意)`)

// Transition moves a work order to another status; an invalid move is a
// *TransitionError and changes nothing.
func (s *Service) Transition(ctx context.Context, id int64, to Status, by, note string) (*WorkOrder, error) {
	if to == CallbackDone {
		return nil, ErrUseCallback
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, _, err := s.store.WorkOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if to == Cancelled && strings.TrimSpace(note) == "" {
		return nil, ErrReasonRequired
	}
	skipping := to == Closed && w.Status == Resolved && w.Type.FromResident()
	if skipping && strings.TrimSpace(note) == "" {
		return nil, fmt.Errorf("%w: closing without the call-back (%s)", ErrReasonRequired, "未回访归档")
	}
	if to == Resolved && w.Type == Complaint && (strings.TrimSpace(w.Analysis) == "" || strings.TrimSpace(w.Solution) == "" || strings.TrimSpace(w.Feedback) == "") {
		return nil, ErrComplaintSteps
	}
	now := s.now()
	from := w.Status
	if err := w.move(to, now); err != nil {
		return nil, err
	}
	switch {
	case to == Accepted:
		w.ResolutionDue = w.AcceptedAt.Add(s.cfg.resolutionTime(w))
	case to == Resolved:
		if w.ResolutionBreached || now.After(w.ResolutionDue) {
			w.ResolvedLate = true
		}
		if w.Type.FromResident() {
			w.CallbackDue = s.cfg.callbackDue(w, now)
		}
	case to == InProgress && (from == Resolved || from == CallbackDone):
		w.Reworks++ // reopened: a re-repair (返修)
		w.ResolutionDue, w.ResolutionBreached, w.CallbackDue = now.Add(s.cfg.resolutionTime(w)), false, time.Time{}
	case skipping:
		w.CallbackSkipped = true
		note = "未回访归档 closed without a call-back: " + note
	}
	w.Version++
	w.Updated = now
	if err := s.save(ctx, w, HistoryEntry{At: now, By: by, From: from, To: to, Note: note}); err != nil {
		return nil, err
	}
	return w, nil
}

// Callback records a call-back to whoever reported a resolved order: a
// satisfied or fairly satisfied outcome completes it (callback_done); an
// unsatisfied one reopens it for a re-repair (返修), whose call-back is
// then due three days after it is resolved again.
func (s *Service) Callback(ctx context.Context, id int64, outcome, note, by string) (*WorkOrder, error) {
	if outcome != Satisfied && outcome != FairlySatisfied && outcome != Unsatisfied {
		return nil, ErrOutcome
	}
	if outcome == Unsatisfied && strings.TrimSpace(note) == "" {
		return nil, fmt.Errorf("%w: what the resident was not satisfied with", ErrReasonRequired)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, _, err := s.store.WorkOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if w.Status != Resolved {
		return nil, &TransitionError{From: w.Status, To: CallbackDone}
	}
	now := s.now()
	cb := Callback{At: now, By: by, Outcome: outcome, Note: note, Due: w.CallbackDue, Late: !w.CallbackDue.IsZero() && now.After(w.CallbackDue)}
	if len(w.Callbacks) < 50 {
		w.Callbacks = append(w.Callbacks, cb)
	}
	from, to := w.Status, CallbackDone
	label := map[string]string{Satisfied: "满意 satisfied", FairlySatisfied: "基本满意 fairly satisfied", Unsatisfied: "不满意 unsatisfied"}[outcome]
	hnote := "回访 call-back: " + label
	if note != "" {
		hnote += ": " + note
	}
	if outcome == Unsatisfied && *s.cfg.Callback.ReopenOnFail {
		to = InProgress
		w.Status, w.ResolvedAt, w.CallbackAt = InProgress, time.Time{}, time.Time{}
		w.Reworks++
		w.ResolutionDue, w.ResolutionBreached, w.CallbackDue = now.Add(s.cfg.resolutionTime(w)), false, time.Time{}
		hnote += "; reopened for a re-repair (返修)"
	} else {
		w.Status, w.CallbackAt = CallbackDone, now
	}
	w.Version++
	w.Updated = now
	if err := s.save(ctx, w, HistoryEntry{At: now, By: by, From: from, To: to, Note: hnote}); err != nil {
		return nil, err
	}
	return w, nil
}

// Update changes a work order's details; nil fields stay.
type Update struct {
	Assignee         *string         `json:"assignee"`
	Description      *string         `json:"description"`
	Priority         *rules.Priority `json:"priority"`
	Category         *string         `json:"category"`
	Type             *Type           `json:"type"`
	Room             *string         `json:"room"`
	CallerName       *string         `json:"caller_name"`
	CallerPhone      *string         `json:"caller_phone"`
	Channel          *string         `json:"channel"`
	FirstResponsible *string         `json:"first_responsible"`
	Analysis         *string         `json:"analysis"` // a complaint's cause (分析原因)
	Solution         *string         `json:"solution"` // 制定解决方案
	Feedback         *string         `json:"feedback"` // 处理并反馈
	Note             string          `json:"note"`
}

// Update applies an update, recorded in the history.
func (s *Service) Update(ctx context.Context, id int64, u Update, by string) (*WorkOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, _, err := s.store.WorkOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	var changes []string
	if u.Assignee != nil && *u.Assignee != w.Assignee {
		w.Assignee = *u.Assignee
		changes = append(changes, "assignee "+w.Assignee)
	}
	if u.Description != nil && *u.Description != w.Description {
		w.Description = *u.Description
		changes = append(changes, "description")
	}
	if u.Type != nil && *u.Type != w.Type {
		if !u.Type.Valid() {
			return nil, fmt.Errorf("type %q is not a work-order type; fix: repair, complaint, help, suggestion, fault or pm", *u.Type)
		}
		w.Type = *u.Type
		changes = append(changes, "type "+string(w.Type))
	}
	if u.Channel != nil && *u.Channel != w.Channel {
		if !slices.Contains(Channels, *u.Channel) {
			return nil, fmt.Errorf("channel %q is not a channel; fix: one of %s", *u.Channel, strings.Join(Channels, ", "))
		}
		w.Channel = *u.Channel
		changes = append(changes, "channel "+w.Channel)
	}
	for _, f := range []struct {
		v    *string
		dst  *string
		name string
	}{{u.Room, &w.Room, "room"}, {u.CallerName, &w.CallerName, "caller name"}, {u.CallerPhone, &w.CallerPhone, "caller phone"},
		{u.FirstResponsible, &w.FirstResponsible, "first responsible " + deref(u.FirstResponsible)},
		{u.Analysis, &w.Analysis, "analysis"}, {u.Solution, &w.Solution, "solution"}, {u.Feedback, &w.Feedback, "feedback"}} {
		if f.v != nil && strings.TrimSpace(*f.v) != *f.dst {
			*f.dst = strings.TrimSpace(*f.v)
			changes = append(changes, f.name)
		}
	}
	if u.Category != nil && *u.Category != w.Category {
		if err := s.cfg.CheckCategory(*u.Category); err != nil {
			return nil, err
		}
		w.Category = *u.Category
		s.deadlines(w)
		changes = append(changes, "category "+w.Category)
	}
	if u.Priority != nil && *u.Priority != w.Priority {
		if !u.Priority.Valid() {
			return nil, fmt.Errorf("%q is not a priority; fix: critical, high, medium or low", *u.Priority)
		}
		if u.Priority.Rank() > w.Priority.Rank() && strings.TrimSpace(u.Note) == "" {
			return nil, ErrReasonRequired
		}
		w.Priority = *u.Priority
		s.deadlines(w)
		changes = append(changes, "priority "+string(w.Priority))
	}
	if len(changes) == 0 && u.Note == "" {
		return w, nil
	}
	note := strings.Join(changes, ", ")
	if u.Note != "" {
		note = strings.TrimPrefix(note+"; "+u.Note, "; ")
	}
	now := s.now()
	w.Version++
	w.Updated = now
	if err := s.save(ctx, w, HistoryEntry{At: now, By: by, Note: note}); err != nil {
		return nil, err
	}
	return w, nil
}

// deadlines recomputes an order's deadlines after its priority or category
// changed.
func (s *Service) deadlines(w *WorkOrder) {
	d := s.cfg.SLA.For(w.Category, w.Priority)
	w.ResponseDue = w.Created.Add(d.Response)
	if w.AcceptedAt.IsZero() {
		w.ResolutionDue = w.Created.Add(d.Response + s.cfg.resolutionTime(w))
	} else if w.Reworks == 0 {
		w.ResolutionDue = w.AcceptedAt.Add(s.cfg.resolutionTime(w))
	}
	w.ArrivalDue = time.Time{}
	if a := s.cfg.arrivalTime(w); a > 0 {
		w.ArrivalDue = w.Created.Add(a)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Config is the service's configuration (with defaults).
func (s *Service) Config() Config { return s.cfg }

// CheckSLA records response and resolution breaches of open orders.
func (s *Service) CheckSLA(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	open, err := s.store.WorkOrders(ctx, Filter{Open: true})
	if err != nil {
		s.log.Error("SLA check failed", "err", err)
		return
	}
	for _, w := range open {
		if changed := w.breaches(now); len(changed) > 0 {
			w.Version++
			w.Updated = now
			note := "SLA breached: " + strings.Join(changed, " and ") + " deadline passed"
			if err := s.save(ctx, w, HistoryEntry{At: now, By: rules.ByEngine, Note: note}); err != nil {
				s.log.Error("recording an SLA breach failed", "workorder", w.ID, "err", err)
			}
			s.log.Warn("work order SLA breached", "workorder", w.ID, "deadline", strings.Join(changed, ","))
		}
	}
}

// Run checks SLA deadlines every ten seconds until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	collectors.Every(ctx, s.slaPeriod, func() { s.CheckSLA(ctx) })
	return nil
}

// description is an alarm's work order's text, Chinese first (the duty
// room's language) with the rule's English name after it.
func description(nameZH, name, asset, value string) string {
	if nameZH == "" || nameZH == name {
		return fmt.Sprintf("%s: %s (value %s)", name, asset, value)
	}
	return fmt.Sprintf("%s：%s（读数 %s） %s", nameZH, asset, value, name)
}
