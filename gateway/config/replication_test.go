package config

import "testing"

func TestReplicationSettings(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"center_sqlite.yaml", `testdata/center_sqlite.yaml:5: center.database: the center keeps every site's records in PostgreSQL; fix: a postgres:// URL`},
		{"replication_no_broker.yaml", `testdata/replication_no_broker.yaml:5: replication.broker: is required; fix: e.g. tcp://127.0.0.1:1883 (the site's own broker, bridged to the center's) (or configure mqtt.broker)`},
		{"replication_remote_plain.yaml", `testdata/replication_remote_plain.yaml:5: replication.broker: tcp://10.0.0.2:1883 is not on this machine: replication carries every record of a site, so it needs username, password (from ${ENV}) and TLS (ssl://…:8883); fix: set them (docs/multisite.md, Security)`},
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

// A broker off this machine with credentials (the password from the
// environment) and TLS is accepted; without the password it is refused.
func TestReplicationCredentials(t *testing.T) {
	if err := load(t, "center_remote_tls.yaml", map[string]string{"CENTER_MQTT_PASSWORD": "s3cret-from-env"}); err != nil {
		t.Fatal(err)
	}
	err := load(t, "center_remote_tls.yaml", map[string]string{"CENTER_MQTT_PASSWORD": ""})
	if err == nil {
		t.Fatal("a remote broker without a password was accepted")
	}
}
