package replication

import (
	"net/url"
	"regexp"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
)

// HAConfig is the center: section's ha: — this instance is one of a group
// of center instances on one PostgreSQL (docs/multisite.md, high
// availability): each consumes its share of the sites' events (a shared
// subscription) under its own client_id, the group's leader (a PostgreSQL
// advisory lock) does the singleton work: escalations, sending
// notifications, emptying a dead instance's broker session.
type HAConfig struct {
	// Group names the group: the shared subscription's share name and the
	// leader lock's name; default center.
	Group string `yaml:"group"`
	// Every is how often the lock connection is checked and a follower
	// tries the lock; default 1s. Timeout: a check not answered within it
	// loses the lock; default 2s. Failover takes about Every + 2×(Every +
	// Timeout).
	Every   time.Duration `yaml:"every"`
	Timeout time.Duration `yaml:"timeout"`
	// Escalate, when set: an alarm of these priorities left
	// unacknowledged at its site this long is escalated by the center,
	// once per occurrence.
	Escalate *EscalateConfig `yaml:"escalate"`
}

// EscalateConfig is ha.escalate.
type EscalateConfig struct {
	After      time.Duration `yaml:"after"`      // default 10m
	Priorities []string      `yaml:"priorities"` // default [critical]
	Every      time.Duration `yaml:"every"`      // how often the leader looks; default 10s
	// Webhook receives each escalation (POST, JSON, header Idempotency-Key).
	Webhook     string        `yaml:"webhook"`
	SendTimeout time.Duration `yaml:"send_timeout"` // default 10s
}

// SetDefaults fills unset values.
func (c *HAConfig) SetDefaults() {
	if c.Group == "" {
		c.Group = "center"
	}
	if c.Every == 0 {
		c.Every = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if e := c.Escalate; e != nil {
		if e.After == 0 {
			e.After = 10 * time.Minute
		}
		if len(e.Priorities) == 0 {
			e.Priorities = []string{"critical"}
		}
		if e.Every == 0 {
			e.Every = 10 * time.Second
		}
		if e.SendTimeout == 0 {
			e.SendTimeout = 10 * time.Second
		}
	}
}

var groupRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Validate checks the section; clientID is the center's client_id (each
// instance of a group needs its own).
func (c *HAConfig) Validate(clientID string) error {
	switch {
	case !groupRE.MatchString(c.Group):
		return cfgerr.Errorf("group", "%q cannot name a shared subscription; fix: letters, digits, '.', '_' or '-'", c.Group)
	case !groupRE.MatchString(clientID):
		return cfgerr.Errorf("", "the center's client_id %q cannot be a group member's id; fix: center.client_id: letters, digits, '.', '_' or '-', different on each instance (center-1, center-2)", clientID)
	case c.Every < 100*time.Millisecond || c.Every > 10*time.Second:
		return cfgerr.Errorf("every", "%v is out of range; fix: between 100ms and 10s (default 1s)", c.Every)
	case c.Timeout < 100*time.Millisecond || c.Timeout > 30*time.Second:
		return cfgerr.Errorf("timeout", "%v is out of range; fix: between 100ms and 30s (default 2s)", c.Timeout)
	}
	if e := c.Escalate; e != nil {
		u, err := url.Parse(e.Webhook)
		switch {
		case e.Webhook == "":
			return cfgerr.Errorf("escalate.webhook", "is required; fix: the URL that receives the center's escalations")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return cfgerr.Errorf("escalate.webhook", "is not an http(s) URL; fix: e.g. https://ops.example.com/hooks/center")
		case e.After < 0 || e.Every < 0 || e.SendTimeout < 0:
			return cfgerr.Errorf("escalate", "durations must not be negative")
		}
		for i, p := range e.Priorities {
			switch p {
			case "critical", "high", "medium", "low":
			default:
				return cfgerr.Errorf("escalate.priorities", "[%d] %q is not a priority; fix: critical, high, medium or low", i, p)
			}
		}
	}
	return nil
}
