// Package multisite holds the end-to-end tests of several site gateways
// and a monitoring center (docs/multisite.md): real gateway processes,
// each site's own Mosquitto bridged to the center's, PostgreSQL. It has
// no code of its own; it is a package so that these slow tests stay out
// of the gateway package's time budget.
package multisite
