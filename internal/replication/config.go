package replication

import (
	"regexp"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
)

// SiteConfig is the replication: section of a site gateway: its changes go
// up to the center through this broker (the site's local broker, bridged to
// the center's; docs/multisite.md).
type SiteConfig struct {
	Broker   string        `yaml:"broker"`    // tcp://127.0.0.1:1883; default: mqtt.broker
	ClientID string        `yaml:"client_id"` // default site-<site>
	Every    time.Duration `yaml:"every"`     // how often the outbox is looked at besides each change; default 1s
}

// CenterConfig is the center: section: this gateway also runs the
// monitoring center's consumer into PostgreSQL and serves GET
// /api/v1/sites.
type CenterConfig struct {
	Database     string        `yaml:"database"`      // postgres://… (required)
	Broker       string        `yaml:"broker"`        // the central broker; default: mqtt.broker
	ClientID     string        `yaml:"client_id"`     // the persistent session's id; default center
	OfflineAfter time.Duration `yaml:"offline_after"` // a site not heard from for this long is offline; default 2m
	HA           *HAConfig     `yaml:"ha"`            // one instance of a group on one PostgreSQL (ha_config.go)
}

// SetDefaults fills unset values; site and broker are the gateway's.
func (c *SiteConfig) SetDefaults(site, broker string) {
	if c.Broker == "" {
		c.Broker = broker
	}
	if c.ClientID == "" {
		c.ClientID = "site-" + site
	}
	if c.Every == 0 {
		c.Every = time.Second
	}
}

// SetDefaults fills unset values.
func (c *CenterConfig) SetDefaults(broker string) {
	if c.Broker == "" {
		c.Broker = broker
	}
	if c.ClientID == "" {
		c.ClientID = "center"
	}
	if c.OfflineAfter == 0 {
		c.OfflineAfter = 2 * time.Minute
	}
}

var brokerRE = regexp.MustCompile(`^(tcp|ssl|tls|ws|wss|mqtt|mqtts)://[^/\s]+$`)

// Validate checks the section; the site id must be usable in a topic.
func (c *SiteConfig) Validate(site string) error {
	switch {
	case !siteRE.MatchString(site):
		return cfgerr.Errorf("", "the site id %q cannot name a replication topic; fix: site: letters, digits, '.', '_' or '-'", site)
	case c.Broker == "":
		return cfgerr.Errorf("broker", "is required; fix: the site's broker, e.g. tcp://127.0.0.1:1883 (or configure mqtt.broker)")
	case !brokerRE.MatchString(c.Broker):
		return cfgerr.Errorf("broker", "%q is not a broker URL; fix: e.g. tcp://127.0.0.1:1883", c.Broker)
	case c.Every < 0:
		return cfgerr.Errorf("every", "must not be negative")
	}
	return nil
}

// Validate checks the section (the database URL itself is checked with the
// other databases).
func (c *CenterConfig) Validate() error {
	switch {
	case c.Database == "":
		return cfgerr.Errorf("database", "is required; fix: the center's PostgreSQL, e.g. postgres://center@db:5432/center?sslmode=verify-full")
	case c.Broker == "":
		return cfgerr.Errorf("broker", "is required; fix: the central broker, e.g. tcp://10.0.0.2:1883 (or configure mqtt.broker)")
	case !brokerRE.MatchString(c.Broker):
		return cfgerr.Errorf("broker", "%q is not a broker URL; fix: e.g. tcp://10.0.0.2:1883", c.Broker)
	case c.OfflineAfter < 0:
		return cfgerr.Errorf("offline_after", "must not be negative")
	}
	return nil
}
