// Package alerts reaches the on-call engineers: it routes alarm and
// playbook events to people through the channels of alerts/notify,
// escalates until someone acknowledges (signed, single-use links), groups
// and inhibits noise, and records every attempt.
package alerts
