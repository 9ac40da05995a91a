package replication

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/cfgerr"
)

// Conn is how a replication client reaches its broker. Outside a demo a
// broker not on this machine needs a username, a password (from ${ENV})
// and TLS: the replication topics carry every record of a site.
type Conn struct {
	Broker   string `yaml:"broker"`    // tcp://127.0.0.1:1883, ssl://center.example:8883
	ClientID string `yaml:"client_id"` // the persistent session's id
	Username string `yaml:"username"`
	Password string `yaml:"password"` // from ${ENV}, never written in the file
	CAFile   string `yaml:"ca_file"`  // TLS: the broker's CA (default: the system's)
}

// SiteConfig is the replication: section of a site gateway: its changes go
// up to the center through this broker (the site's local broker, bridged to
// the center's; docs/multisite.md).
type SiteConfig struct {
	Conn      `yaml:",inline"`
	Every     time.Duration `yaml:"every"`     // how often the outbox is looked at besides each change; default 1s
	Heartbeat time.Duration `yaml:"heartbeat"` // the status (online, head seq) at least this often; default 30s
	// Retention: sent events are kept this long so the center can ask for
	// them again after a gap; past it the center gets a snapshot of the
	// current records instead (a full resync). Default 7 days.
	Retention time.Duration `yaml:"retention"`
}

// CenterConfig is the center: section: this gateway also runs the
// monitoring center's consumer into PostgreSQL and serves GET
// /api/v1/sites.
type CenterConfig struct {
	Conn         `yaml:",inline"`
	Database     string        `yaml:"database"`      // postgres://… (required)
	OfflineAfter time.Duration `yaml:"offline_after"` // a site not heard from for this long is offline; default 2m
	GapWait      time.Duration `yaml:"gap_wait"`      // a gap in a site's seq this old is asked for again (replay_from); default 10s
	Resend       time.Duration `yaml:"resend"`        // an unanswered command is sent again after this; default 30s
	CommandTTL   time.Duration `yaml:"command_ttl"`   // the site refuses a command older than this; default 10m
	Sites        []SiteInfo    `yaml:"sites"`         // what the screens call each site (optional)
	HA           *HAConfig     `yaml:"ha"`            // one instance of a group on one PostgreSQL (ha_config.go)
	// Escalate: alarms nobody acknowledged, escalated by the center to
	// receivers routed by the site's region (escalate_config.go).
	Escalate *EscalateConfig `yaml:"escalate"`
}

// Escalation is the escalation section in effect: center.escalate, or
// the older center.ha.escalate; nil when neither is set.
func (c *CenterConfig) Escalation() *EscalateConfig {
	if c.Escalate != nil {
		return c.Escalate
	}
	if c.HA != nil {
		return c.HA.Escalate
	}
	return nil
}

// SiteInfo is what the center's screens call a site.
type SiteInfo struct {
	ID     string `json:"id" yaml:"id"`
	Name   string `json:"name,omitempty" yaml:"name"`     // 玉山花园
	Region string `json:"region,omitempty" yaml:"region"` // 北区
	URL    string `json:"url,omitempty" yaml:"url"`       // the site's own wall (drill-down)
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
	if c.Heartbeat == 0 {
		c.Heartbeat = 30 * time.Second
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
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
	if c.GapWait == 0 {
		c.GapWait = 10 * time.Second
	}
	if c.Resend == 0 {
		c.Resend = 30 * time.Second
	}
	if c.CommandTTL == 0 {
		c.CommandTTL = 10 * time.Minute
	}
	if c.Escalate != nil {
		c.Escalate.SetDefaults()
	}
}

var brokerRE = regexp.MustCompile(`^(tcp|ssl|tls|ws|wss|mqtt|mqtts)://[^/\s@]+$`)

func tlsScheme(s string) bool { return s == "ssl" || s == "tls" || s == "mqtts" || s == "wss" }

// validate checks the connection; outside a demo a broker that is not on
// this machine needs credentials and TLS.
func (c *Conn) validate(demo bool, example string) error {
	if c.Broker == "" {
		return cfgerr.Errorf("broker", "is required; fix: e.g. %s (or configure mqtt.broker)", example)
	}
	u, err := url.Parse(c.Broker)
	if err == nil && u.User != nil {
		// Never echoed: it may hold a password.
		return cfgerr.Errorf("broker", "holds a user name (and perhaps a password) before @; fix: the broker's address only, credentials in username and password (from ${ENV})")
	}
	if err != nil || !brokerRE.MatchString(c.Broker) {
		return cfgerr.Errorf("broker", "%q is not a broker URL; fix: e.g. %s", c.Broker, example)
	}
	if (c.Username == "") != (c.Password == "") {
		return cfgerr.Errorf("password", "username and password go together; fix: both, the password from ${ENV}")
	}
	if c.CAFile != "" {
		if !tlsScheme(u.Scheme) {
			return cfgerr.Errorf("ca_file", "is set but %s is not TLS; fix: ssl://host:8883", c.Broker)
		}
		if _, err := os.Stat(c.CAFile); err != nil {
			return cfgerr.Errorf("ca_file", "%v", err)
		}
	}
	if demo || loopbackHost(u.Hostname()) {
		return nil
	}
	if c.Username == "" || !tlsScheme(u.Scheme) {
		return cfgerr.Errorf("broker", "%s is not on this machine: replication carries every record of a site, so it needs username, password (from ${ENV}) and TLS (ssl://…:8883); fix: set them (docs/multisite.md, Security)", c.Broker)
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Validate checks the section (demo: the config says demo: true); the site
// id must be usable in a topic.
func (c *SiteConfig) Validate(site string, demo bool) error {
	switch {
	case !siteRE.MatchString(site):
		return cfgerr.Errorf("", "the site id %q cannot name a replication topic; fix: site: letters, digits, '.', '_' or '-'", site)
	case c.Every < 0 || c.Heartbeat < 0:
		return cfgerr.Errorf("every", "every and heartbeat must not be negative")
	case c.Retention < time.Hour:
		return cfgerr.Errorf("retention", "%s is shorter than an hour: the center could not ask again for what a WAN cut lost; fix: e.g. 168h (7 days)", c.Retention)
	}
	return c.validate(demo, "tcp://127.0.0.1:1883 (the site's own broker, bridged to the center's)")
}

// Validate checks the section (the database URL itself is checked with the
// other databases).
func (c *CenterConfig) Validate(demo bool) error {
	switch {
	case c.Database == "":
		return cfgerr.Errorf("database", "is required; fix: the center's PostgreSQL, e.g. postgres://center@db:5432/center?sslmode=verify-full")
	case c.OfflineAfter < 0 || c.GapWait < 0 || c.Resend < 0 || c.CommandTTL < 0:
		return cfgerr.Errorf("offline_after", "offline_after, gap_wait, resend and command_ttl must not be negative")
	}
	for i, s := range c.Sites {
		if !siteRE.MatchString(s.ID) {
			return cfgerr.Errorf(fmt.Sprintf("sites[%d].id", i), "%q is not a site id; fix: the site's site: setting", s.ID)
		}
		if u, err := url.Parse(s.URL); s.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https")) {
			return cfgerr.Errorf(fmt.Sprintf("sites[%d].url", i), "%q is not an http(s) URL", s.URL)
		}
	}
	if c.Escalate != nil && c.HA != nil && c.HA.Escalate != nil {
		return cfgerr.Errorf("ha.escalate", "is set besides center.escalate; fix: keep center.escalate only (ha.escalate is its older place)")
	}
	if c.Escalate != nil {
		if err := c.Escalate.Validate(c.Sites); err != nil {
			return cfgerr.Prefix("escalate", err)
		}
	} else if c.HA != nil && c.HA.Escalate != nil {
		if err := c.HA.Escalate.Validate(c.Sites); err != nil {
			return cfgerr.Prefix("ha.escalate", err)
		}
	}
	return c.validate(demo, "ssl://center-broker.example:8883")
}

// ClientOptions sets the broker, client id, credentials and TLS on opts.
func (c *Conn) ClientOptions(opts *paho.ClientOptions) (*paho.ClientOptions, error) {
	opts.AddBroker(c.Broker).SetClientID(c.ClientID)
	if c.Username != "" {
		opts.SetUsername(c.Username).SetPassword(c.Password)
	}
	if u, err := url.Parse(c.Broker); err == nil && tlsScheme(u.Scheme) {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("replication: ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("replication: ca_file %s holds no PEM certificate", c.CAFile)
			}
			cfg.RootCAs = pool
		}
		opts.SetTLSConfig(cfg)
	}
	return opts, nil
}
