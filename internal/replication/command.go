package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Command actions (version 1).
const (
	ActionAckAlarm     = "ack_alarm"            // key: the alarm's id
	ActionTransition   = "transition_workorder" // key: the work order's id; to: the status
	ActionCompleteStep = "complete_step"        // key: the incident's id; step: the step's id
	ActionReplayFrom   = "replay_from"          // from: the first seq the center is missing
)

// Command is one request from the center to a site, as sent on
// propgate/v1/site/{site}/cmd. The site is the authority: it applies the
// command through its own services (same rules, same refusals) or refuses
// it, once per id, and its Result goes up as a KindCommand event.
type Command struct {
	V       int       `json:"v"`
	ID      string    `json:"id"` // the idempotency key: the site applies each id once
	Site    string    `json:"site"`
	By      string    `json:"by"`   // the center's user who asked
	Role    string    `json:"role"` // their role at the center (engineer, operator, admin)
	At      time.Time `json:"at"`
	Expires time.Time `json:"expires"` // the site refuses it after this
	Action  string    `json:"action"`
	Key     string    `json:"key,omitempty"`
	To      string    `json:"to,omitempty"`
	Step    string    `json:"step,omitempty"`
	Note    string    `json:"note,omitempty"`
	From    int64     `json:"from,omitempty"`
}

// Result statuses.
const (
	ResultApplied = "applied"
	ResultRefused = "refused"
)

// Result is what a site did with a command: the doc of a KindCommand
// event whose key is the command's id.
type Result struct {
	ID     string    `json:"id"`
	Action string    `json:"action"`
	By     string    `json:"by,omitempty"`
	Status string    `json:"status"`           // applied or refused
	Reason string    `json:"reason,omitempty"` // why it was refused, in the site's words
	At     time.Time `json:"at"`               // when the site applied or refused it
	// replay_from: the events from From on are sent again; when the site
	// no longer keeps them all (Oldest > From, past the retention), it
	// sends a snapshot of its current records instead (Resync).
	From   int64 `json:"from,omitempty"`
	Oldest int64 `json:"oldest,omitempty"`
	Resync bool  `json:"resync,omitempty"`
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`)

// minRole is the role each action needs at the center and at the site.
var minRole = map[string]int{ActionAckAlarm: 3, ActionTransition: 2, ActionCompleteStep: 2, ActionReplayFrom: 4}

var roleRank = map[string]int{"viewer": 1, "engineer": 2, "operator": 3, "admin": 4, "center": 4}

// RoleAllows reports whether a user of role may issue action (the same
// roles as the site's own API: acknowledging needs an operator; moving a
// work order or completing a step, an engineer; a replay is the center's).
func RoleAllows(role, action string) bool {
	need, ok := minRole[action]
	return ok && roleRank[role] >= need
}

// Check validates a command as received by site at now.
func (c Command) Check(site string, now time.Time) error {
	switch {
	case c.V < 1:
		return errors.New("not a version-1 command")
	case !idRE.MatchString(c.ID):
		return fmt.Errorf("command id %q is not 1-100 letters, digits, '.', '_', ':' or '-'", c.ID)
	case c.Site != site:
		return fmt.Errorf("command for site %q sent to %q", c.Site, site)
	case minRole[c.Action] == 0:
		return fmt.Errorf("unknown action %q", c.Action)
	case c.Action == ActionReplayFrom && c.From < 1:
		return errors.New("replay_from needs from ≥ 1")
	case c.Action != ActionReplayFrom && c.Key == "":
		return fmt.Errorf("%s needs a key", c.Action)
	case c.Action == ActionTransition && c.To == "":
		return errors.New("transition_workorder needs to")
	case c.Action == ActionCompleteStep && c.Step == "":
		return errors.New("complete_step needs step")
	}
	return nil
}

// CommandLog is the site's record of the commands it applied (the
// idempotency keys).
type CommandLog interface {
	// Begin records id as being applied; fresh is false when it was seen
	// before, with its result then (nil when applying it was interrupted).
	Begin(ctx context.Context, id string, at time.Time) (fresh bool, prev *Result, err error)
	// Finish stores id's result.
	Finish(ctx context.Context, id string, r Result) error
}

// Applier applies one command through the site's own services; an error
// is a refusal, its text the reason.
type Applier interface {
	ApplyCommand(ctx context.Context, c Command) error
}

// Snapshotter lists a site's current records as envelopes (a full resync
// when the center asks for events past the retention).
type Snapshotter interface {
	Snapshot(ctx context.Context) ([]Event, error)
}

// SiteCommands applies the center's commands at a site: each id once, the
// result appended to the outbox (so it reaches the center like any
// change, in order, replayed after a gap).
type SiteCommands struct {
	site     string
	outbox   Outbox
	log      CommandLog
	apply    Applier
	snapshot Snapshotter
	kick     func()
	logger   *slog.Logger
	now      func() time.Time
	// Handled, when set, is told of each command and whether it was
	// applied now (false: refused, a duplicate or bad).
	Handled func(c Command, r Result, fresh bool)
}

// NewSiteCommands applies commands for site; kick (may be nil) wakes the
// publisher after a result or a replay.
func NewSiteCommands(site string, outbox Outbox, log CommandLog, apply Applier, snapshot Snapshotter, kick func(), logger *slog.Logger, now func() time.Time) *SiteCommands {
	return &SiteCommands{site: site, outbox: outbox, log: log, apply: apply, snapshot: snapshot, kick: kick, logger: logger, now: now}
}

// Handle takes one message from the command topic. It returns an error
// only when the message should come again (the site's database failed).
func (s *SiteCommands) Handle(ctx context.Context, topic string, payload []byte) error {
	var c Command
	if err := json.Unmarshal(payload, &c); err != nil {
		s.logger.Warn("replication: bad command", "topic", topic, "err", err)
		return nil
	}
	if site, _ := SiteOfTopic(topic); site != s.site {
		s.logger.Warn("replication: command on another site's topic", "topic", topic)
		return nil
	}
	if c.V > Version {
		s.logger.Warn("replication: command from a newer center refused", "id", c.ID, "v", c.V)
	}
	now := s.now()
	if err := c.Check(s.site, now); err != nil || c.V > Version {
		if err == nil {
			err = fmt.Errorf("command version %d is newer than this gateway's (%d)", c.V, Version)
		}
		s.logger.Warn("replication: command refused", "id", c.ID, "err", err)
		if idRE.MatchString(c.ID) { // answerable
			return s.result(ctx, c, Result{ID: c.ID, Action: c.Action, By: c.By, Status: ResultRefused, Reason: err.Error(), At: now}, false)
		}
		return nil
	}
	if c.Action == ActionReplayFrom { // repeatable: not an idempotent change
		return s.replay(ctx, c, now)
	}
	fresh, prev, err := s.log.Begin(ctx, c.ID, now)
	if err != nil {
		return err
	}
	if !fresh {
		// A redelivery: never applied twice. Its result is already in the
		// outbox (or, interrupted, unknown).
		s.logger.Info("replication: command already handled", "id", c.ID, "known", prev != nil)
		if s.Handled != nil {
			r := Result{ID: c.ID, Action: c.Action, Status: ResultRefused, Reason: "interrupted while being applied; see the record"}
			if prev != nil {
				r = *prev
			}
			s.Handled(c, r, false)
		}
		return nil
	}
	r := Result{ID: c.ID, Action: c.Action, By: c.By, Status: ResultApplied, At: now}
	switch {
	case !c.Expires.IsZero() && now.After(c.Expires):
		r.Status, r.Reason = ResultRefused, fmt.Sprintf("expired at %s", c.Expires.Format(time.RFC3339))
	case !RoleAllows(c.Role, c.Action):
		r.Status, r.Reason = ResultRefused, fmt.Sprintf("%s needs a higher role than %q", c.Action, c.Role)
	default:
		if err := s.apply.ApplyCommand(ctx, c); err != nil {
			r.Status, r.Reason = ResultRefused, err.Error()
		}
		r.At = s.now()
	}
	if err := s.log.Finish(ctx, c.ID, r); err != nil {
		s.logger.Error("replication: command result not stored", "id", c.ID, "err", err)
	}
	return s.result(ctx, c, r, r.Status == ResultApplied)
}

func (s *SiteCommands) replay(ctx context.Context, c Command, now time.Time) error {
	oldest, err := s.outbox.Resend(ctx, c.From)
	if err != nil {
		return err
	}
	r := Result{ID: c.ID, Action: c.Action, By: c.By, Status: ResultApplied, At: now, From: c.From, Oldest: oldest}
	if oldest > c.From {
		// Past the retention: the current records instead of the history.
		r.Resync = true
		evs, err := s.snapshot.Snapshot(ctx)
		if err != nil {
			return err
		}
		if err := appendAll(ctx, s.outbox, evs); err != nil {
			return err
		}
		s.logger.Warn("replication: the center asked for events past the retention; sent a snapshot of the current records",
			"from", c.From, "oldest", oldest, "records", len(evs))
	} else {
		s.logger.Info("replication: replaying for the center", "from", c.From)
	}
	return s.result(ctx, c, r, true)
}

func (s *SiteCommands) result(ctx context.Context, c Command, r Result, fresh bool) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	e := Event{V: Version, Site: s.site, Kind: KindCommand, Key: c.ID, At: r.At, Op: "upsert", Doc: doc, Changed: []string{"status"}}
	if err := s.outbox.Append(ctx, &e); err != nil {
		return err
	}
	if s.kick != nil {
		s.kick()
	}
	if s.Handled != nil {
		s.Handled(c, r, fresh)
	}
	return nil
}
