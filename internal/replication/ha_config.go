package replication

import (
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
	// Escalate is the older place of center.escalate (kept working: a
	// config sets one or the other, see CenterConfig.Escalation).
	Escalate *EscalateConfig `yaml:"escalate"`
}

// DefaultGroup is a group's name when ha.group is not set, and the group
// whose leader lock a single center takes for its singleton work.
const DefaultGroup = "center"

// SetDefaults fills unset values.
func (c *HAConfig) SetDefaults() {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Every == 0 {
		c.Every = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Escalate != nil {
		c.Escalate.SetDefaults()
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
	return nil
}
