package config

import (
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/store/postgres"
)

// The replication: (site) and center: sections (issue #15).

func (c *Config) replicationDefaults() {
	broker := ""
	if c.MQTT != nil {
		broker = c.MQTT.Broker
	}
	if c.Replication != nil {
		c.Replication.SetDefaults(c.Site, broker)
	}
	if c.Center != nil {
		c.Center.SetDefaults(broker)
		if c.Center.HA != nil {
			c.Center.HA.SetDefaults()
		}
	}
}

func (c *Config) validateReplication(add func(string, error)) {
	if c.Replication != nil {
		add("replication", c.Replication.Validate(c.Site, c.Demo))
		if postgres.IsURL(c.Rules.Database) {
			add("rules", cfgerr.Errorf("database", "a site replicating to the center (replication:) keeps its outbox in an SQLite rules database for now; fix: an SQLite file, e.g. data/gateway.db"))
		}
	}
	if c.Center != nil {
		if err := c.Center.Validate(c.Demo); err != nil {
			add("center", err)
		} else if !postgres.IsURL(c.Center.Database) {
			add("center", cfgerr.Errorf("database", "the center keeps every site's records in PostgreSQL; fix: a postgres:// URL"))
		} else {
			add("center", checkDatabase("database", c.Center.Database))
		}
		if c.Center.HA != nil {
			if err := c.Center.HA.Validate(c.Center.ClientID); err != nil {
				add("center", cfgerr.Prefix("ha", err))
			}
		}
	}
}
