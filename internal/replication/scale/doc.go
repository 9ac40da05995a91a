// Package scale holds the center's scale benchmark (scale_test.go,
// docs/benchmarks.md): the site-traffic generator (sitegen) drives one
// center process, PostgreSQL and Mosquitto on this machine, and the
// numbers come from the processes (/proc) and from PostgreSQL itself
// (commit timestamps). Not part of `make test`: run it with
//
//	go test -run '^$' -bench CenterScale -benchtime 1x -timeout 60m -v ./internal/replication/scale
package scale
