package config

import "testing"

func TestReplicationSettings(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"center_sqlite.yaml", `testdata/center_sqlite.yaml:5: center.database: the center keeps every site's records in PostgreSQL; fix: a postgres:// URL`},
		{"replication_no_broker.yaml", `testdata/replication_no_broker.yaml:5: replication.broker: is required; fix: the site's broker, e.g. tcp://127.0.0.1:1883 (or configure mqtt.broker)`},
		{"replication_on_postgres.yaml", `testdata/replication_on_postgres.yaml:5: rules.database: a site replicating to the center (replication:) keeps its outbox in an SQLite rules database for now; fix: an SQLite file, e.g. data/gateway.db`},
	} {
		t.Run(c.file, func(t *testing.T) {
			err := load(t, c.file, nil)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if err.Error() != c.want {
				t.Fatalf("error:\n got %s\nwant %s", err, c.want)
			}
		})
	}
}
