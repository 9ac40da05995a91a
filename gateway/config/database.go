package config

import (
	"fmt"
	"strings"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/store/postgres"
)

// databaseFix is what a database setting may be.
const databaseFix = "fix: an SQLite file (e.g. data/gateway.db) or a PostgreSQL URL, e.g. postgres://gateway@db.example:5432/gateway?sslmode=verify-full (the password from PGPASSWORD or ~/.pgpass, not the file)"

// checkDatabase checks one database setting: an SQLite file path, or a
// postgres:// URL (the PostgreSQL backend). Nothing is opened.
func checkDatabase(key, value string) error {
	switch {
	case postgres.IsURL(value):
		if err := postgres.CheckURL(value); err != nil {
			return cfgerr.Errorf(key, "%v; %s", err, databaseFix)
		}
	case strings.Contains(value, "://"):
		scheme, _, _ := strings.Cut(value, "://")
		return cfgerr.Errorf(key, "%q databases are not supported; %s", scheme, databaseFix)
	}
	return nil
}

// checkDatabases checks the rules, alerts and audit databases.
func (c *Config) checkDatabases(add func(string, error)) {
	add("rules", checkDatabase("database", c.Rules.Database))
	if c.Alerts != nil {
		add("alerts", checkDatabase("database", c.Alerts.Database))
	}
	if c.Dashboard != nil {
		add("dashboard", checkDatabase("audit_database", c.Dashboard.AuditDatabase))
	}
}

// databaseWarnings: a PostgreSQL database reached over the network without
// TLS (its traffic, password included, readable on the way).
func (c *Config) databaseWarnings() []string {
	var out []string
	check := func(key, value string) {
		if postgres.IsURL(value) && postgres.Plaintext(value) {
			out = append(out, fmt.Sprintf("%s: PostgreSQL at %s is reached without TLS (sslmode=disable or unset); use sslmode=verify-full off this machine", key, postgres.Redact(value)))
		}
	}
	check("rules.database", c.Rules.Database)
	if c.Alerts != nil {
		check("alerts.database", c.Alerts.Database)
	}
	if c.Dashboard != nil {
		check("dashboard.audit_database", c.Dashboard.AuditDatabase)
	}
	return out
}
