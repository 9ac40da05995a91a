package config

import (
	"strings"
	"testing"
)

const dbFix = "fix: an SQLite file (e.g. data/gateway.db) or a PostgreSQL URL, e.g. postgres://gateway@db.example:5432/gateway?sslmode=verify-full (the password from PGPASSWORD or ~/.pgpass, not the file)"

// A database setting is an SQLite file or a postgres:// URL; anything else
// is refused naming the key and line, and the password never shows.
func TestDatabaseSettings(t *testing.T) {
	vars := map[string]string{"DB_PASSWORD": "s3cret-db-pw"}
	for _, c := range []struct{ file, want string }{
		{"database_bad_scheme.yaml", `testdata/database_bad_scheme.yaml:5: rules.database: "mysql" databases are not supported; ` + dbFix},
		{"database_no_name.yaml", `testdata/database_no_name.yaml:5: rules.database: postgres://gw:xxxxx@db.example:5432/?sslmode=verify-full names no database; ` + dbFix},
		{"database_bad_port.yaml", `testdata/database_bad_port.yaml:9: alerts.database: postgres://… is not a valid URL (a port that is not a number, or a password with / ? # @ not percent-encoded?); ` + dbFix},
	} {
		t.Run(c.file, func(t *testing.T) {
			err := load(t, c.file, vars)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the password is in the error: %v", err)
			}
			if err.Error() != c.want {
				t.Fatalf("error:\n got %s\nwant %s", err, c.want)
			}
		})
	}
}

// postgres:// URLs load; one reaching another machine without TLS is
// warned about at start, with the password hidden.
func TestPostgresDatabaseLoads(t *testing.T) {
	raw := []byte("influxdb: {url: \"http://h:1\", bucket: b}\nassets: [{id: a, kind: k}]\n" +
		"rules: {database: \"postgres://gw:${DB_PASSWORD}@10.0.0.7:5432/gateway\"}\n" +
		"dashboard: {audit_database: \"postgresql://gw@127.0.0.1/gateway\", wall_token: \"${WALL}\", users: [{username: admin, role: admin, password: \"${PW}\"}]}\n")
	cfg, err := Parse("x.yaml", raw, env(map[string]string{"DB_PASSWORD": "s3cret-db-pw", "WALL": "w-0123456789abcdef0123456789abcdef", "PW": "p-0123456789abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rules.Database != "postgres://gw:s3cret-db-pw@10.0.0.7:5432/gateway" {
		t.Fatalf("database %q", cfg.Rules.Database)
	}
	var warned []string
	for _, w := range cfg.Warnings() {
		if strings.Contains(w, "s3cret") {
			t.Fatalf("the password is in a warning: %s", w)
		}
		if strings.Contains(w, "PostgreSQL") {
			warned = append(warned, w)
		}
	}
	want := "rules.database: PostgreSQL at postgres://gw:xxxxx@10.0.0.7:5432/gateway is reached without TLS (sslmode=disable or unset); use sslmode=verify-full off this machine"
	if len(warned) != 1 || warned[0] != want {
		t.Fatalf("warnings %q", warned)
	}
}
