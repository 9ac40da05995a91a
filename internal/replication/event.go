// Package replication carries a site's changes to the monitoring center
// (docs/multisite.md): a versioned envelope per change, a durable outbox at
// the site, a publisher sending it in order over MQTT QoS 1, and the
// center's consumer applying each (site, seq) once.
package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the envelope schema this gateway writes and reads.
const Version = 1

// Record kinds.
const (
	KindAlarm     = "alarm"
	KindWorkOrder = "workorder"
	KindIncident  = "incident"
	// KindHandover is a shift handover (交接班), signed or accepted: key
	// is its id, doc as the site's API returns it.
	KindHandover = "handover"
	// KindNotification is a message the site's alerting sent (event.Sent):
	// key is the delivery attempt's id.
	KindNotification = "notification"
	// KindCommand carries a command's result (Result) up: key is the
	// command's id.
	KindCommand = "command"
)

// Event is one change, as published on propgate/v1/site/{site}/event/{kind}.
type Event struct {
	V    int    `json:"v"`
	Site string `json:"site"`
	Seq  int64  `json:"seq"` // the site's outbox sequence: strictly increasing, the idempotency key with Site and Epoch
	// Epoch names the site's outbox (its database): generated once when
	// the outbox is created, so that a site whose database is replaced
	// (seq from 1 again) is told apart from one repeating itself. Epochs
	// sort by when they were made (a newer one sorts after). Absent (an
	// older site gateway): the old behaviour, one sequence per site.
	Epoch string `json:"epoch,omitempty"`
	// EpochFrom is the epoch's first seq when above 1: the outbox existed
	// before epochs did (the site was upgraded) and its sequence goes on,
	// so the center keeps what it has of the site.
	EpochFrom int64           `json:"epoch_from,omitempty"`
	Kind      string          `json:"kind"`
	Key       string          `json:"key"` // the record's id at the site
	At        time.Time       `json:"at"`  // when the change happened at the site
	Op        string          `json:"op"`  // upsert
	Doc       json.RawMessage `json:"doc"` // the whole record after the change
	Changed   []string        `json:"changed,omitempty"`
}

var siteRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// topicRoot is the scheme's prefix; version 1.
const topicRoot = "propgate/v1/site/"

// EventTopic is where a site publishes its changes of one kind.
func EventTopic(site, kind string) string { return topicRoot + site + "/event/" + kind }

// EventFilter is what the center subscribes to: every site's events.
const EventFilter = topicRoot + "+/event/#"

// StatusTopic is where a site says it is online (retained, with its head
// seq) and its last will says offline.
func StatusTopic(site string) string { return topicRoot + site + "/status" }

// StatusFilter is every site's status.
const StatusFilter = topicRoot + "+/status"

// CommandTopic is where the center sends a site its commands.
func CommandTopic(site string) string { return topicRoot + site + "/cmd" }

// SiteOfTopic returns the site a propgate/v1/site/{site}/… topic names.
func SiteOfTopic(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, topicRoot)
	site, _, _ := strings.Cut(rest, "/")
	return site, ok && siteRE.MatchString(site)
}

// ValidSite reports whether id can name a site in a topic.
func ValidSite(id string) bool { return siteRE.MatchString(id) }

// Status is a site's status message.
type Status struct {
	V     int    `json:"v"`
	Site  string `json:"site"`
	State string `json:"state"`          // online or offline (the last will)
	Head  int64  `json:"head,omitempty"` // the newest seq the broker acknowledged
	// Epoch and EpochFrom: the outbox's, as in Event.
	Epoch     string    `json:"epoch,omitempty"`
	EpochFrom int64     `json:"epoch_from,omitempty"`
	At        time.Time `json:"at,omitempty"` // when the site sent it (absent in the last will)
}

// ErrNewerVersion: the envelope is of a schema version this gateway does
// not know; the consumer parks it (counted), never guesses.
var ErrNewerVersion = errors.New("newer envelope version")

// Limits on what a site may send (a site's gateway is trusted with its own
// records, not with the center's resources): one envelope at most
// MaxEnvelope bytes, a key at most MaxKey bytes, a kind a short lowercase
// word (kinds unknown to this center are still stored: kinds are added
// within version 1), an epoch in the outbox's own form.
const (
	MaxEnvelope = 1 << 20
	MaxKey      = 200
)

var (
	kindRE  = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`)
	epochRE = regexp.MustCompile(`^\d{17}[0-9a-f]{8}$`)
)

// epochSkew is how far in the future an epoch's time may be (a site's
// clock a little ahead); an epoch further ahead would outrank the site's
// real one for ever.
const epochSkew = 24 * time.Hour

// CheckEpoch refuses an epoch not in the outbox's form (the UTC time to the
// millisecond, 8 hex digits) or made more than a day after now. "" (a
// site older than epochs) passes.
func CheckEpoch(epoch string, now time.Time) error {
	if epoch == "" {
		return nil
	}
	if !epochRE.MatchString(epoch) {
		return fmt.Errorf("epoch %.40q is not an outbox epoch", epoch)
	}
	t, err := time.Parse("20060102150405.000", epoch[:14]+"."+epoch[14:17])
	if err != nil {
		return fmt.Errorf("epoch %q: %w", epoch, err)
	}
	if !now.IsZero() && t.After(now.Add(epochSkew)) {
		return fmt.Errorf("epoch %q is from %s, after now", epoch, t.Format(time.RFC3339))
	}
	return nil
}

// DecodeAt parses and checks an envelope received on topic at now: the
// site in the topic and in the envelope must agree (a site can publish
// only under its own prefix, enforced by the broker's ACL; this catches
// the rest), sizes and forms within the limits above, its epoch not made
// after now plus a day (a zero now skips that check).
func DecodeAt(topic string, payload []byte, now time.Time) (Event, error) {
	var e Event
	if len(payload) > MaxEnvelope {
		return e, fmt.Errorf("replication: %s: envelope of %d bytes, more than %d", topic, len(payload), MaxEnvelope)
	}
	// PostgreSQL's json keeps "\u0000" but cannot extract it as text:
	// one such doc would fail every query reading that field.
	if bytes.Contains(payload, []byte(`\u0000`)) {
		return e, fmt.Errorf("replication: %s: the envelope contains a NUL character", topic)
	}
	if err := json.Unmarshal(payload, &e); err != nil {
		return e, fmt.Errorf("replication: %s: not an envelope: %w", topic, err)
	}
	if e.V > Version {
		return e, fmt.Errorf("replication: %s: version %d: %w", topic, e.V, ErrNewerVersion)
	}
	rest, ok := strings.CutPrefix(topic, topicRoot)
	site, kind, _ := strings.Cut(rest, "/event/")
	switch {
	case !ok || e.V < 1:
		return e, fmt.Errorf("replication: %s: not a version-1 event", topic)
	case site != e.Site || !siteRE.MatchString(site) || len(site) > MaxKey:
		return e, fmt.Errorf("replication: %s: the envelope says site %.60q", topic, e.Site)
	case kind != e.Kind || e.Key == "" || e.Seq <= 0 || len(e.Doc) == 0:
		return e, fmt.Errorf("replication: %s: incomplete envelope (kind %.40q, key %.60q, seq %d)", topic, e.Kind, e.Key, e.Seq)
	case !kindRE.MatchString(e.Kind):
		return e, fmt.Errorf("replication: %s: kind %.40q is not a kind", topic, e.Kind)
	case len(e.Key) > MaxKey || !utf8.ValidString(e.Key):
		return e, fmt.Errorf("replication: %s: key of %d bytes (at most %d, UTF-8)", topic, len(e.Key), MaxKey)
	}
	if err := CheckEpoch(e.Epoch, now); err != nil {
		return e, fmt.Errorf("replication: %s: %w", topic, err)
	}
	return e, nil
}

// Outbox is the site's durable queue of changes.
type Outbox interface {
	// Append stores e, setting e.Seq.
	Append(ctx context.Context, e *Event) error
	// Unsent lists the unsent events in seq order.
	Unsent(ctx context.Context, limit int) ([]Event, error)
	// MarkSent marks the event seq sent (only that one: a replay may
	// have made earlier ones unsent again meanwhile).
	MarkSent(ctx context.Context, seq int64) error
	// Resend makes the retained events from seq on unsent again; oldest
	// is the oldest seq still retained (the next seq when none is): when
	// it is above from, the events between were pruned.
	Resend(ctx context.Context, from int64) (oldest int64, err error)
	// Head is the newest seq sent (0 when none).
	Head(ctx context.Context) (int64, error)
	// Prune deletes the events sent before the time; it returns how many.
	Prune(ctx context.Context, sentBefore time.Time) (int64, error)
}

// Epocher is an outbox that knows its epoch (Event.Epoch): the
// publisher's status carries it.
type Epocher interface {
	Epoch() (id string, from int64)
}

// Center applies events at the center.
type Center interface {
	// Apply stores e once per (site, seq); applied is false for a
	// duplicate. A record is only replaced by a newer seq.
	Apply(ctx context.Context, e Event, received time.Time) (applied bool, err error)
	// SiteStatus records a site's status message.
	SiteStatus(ctx context.Context, st Status, received time.Time) error
}

// Site is one site as the center's overview shows it.
type Site struct {
	Site          string         `json:"site"`
	Online        bool           `json:"online"`
	LastSeen      time.Time      `json:"last_seen"`
	LastSeq       int64          `json:"last_seq"`
	ActiveAlarms  map[string]int `json:"active_alarms"` // by priority: unacknowledged or acknowledged
	OpenIncidents int            `json:"open_incidents"`
	// OfflineSince: when its last will said offline, or when it was last
	// heard from once silent for longer than offline_after.
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	Contiguous   int64      `json:"complete_to"` // every event up to this seq is at the center
	Head         int64      `json:"head_seq"`    // the newest seq known to exist at the site
	Resynced     *time.Time `json:"resynced_at,omitempty"`
	// Epoch is the site's current outbox epoch ("" before epochs), since
	// when the center follows it (a replaced database starts a new one).
	Epoch      string     `json:"epoch,omitempty"`
	EpochSince *time.Time `json:"epoch_since,omitempty"`
}

// Record is one site record as the center holds it.
type Record struct {
	Site     string          `json:"site"`
	Kind     string          `json:"kind"`
	Key      string          `json:"key"`
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	State    string          `json:"state"`
	Priority string          `json:"priority"`
	Doc      json.RawMessage `json:"doc"`
}

// CommandStatus is a command as the center knows it.
type CommandStatus struct {
	Command
	Status   string     `json:"status"` // pending, applied, refused, expired
	Reason   string     `json:"reason,omitempty"`
	ResultAt *time.Time `json:"result_at,omitempty"`
	Sends    int        `json:"sends"`
}
