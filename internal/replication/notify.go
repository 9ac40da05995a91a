package replication

import (
	"encoding/json"
	"time"
)

// Notification is a message the center sends (an escalation of a site's
// alarm nobody acknowledged): recorded once under its Key before it is
// sent, sent by the center's leader only, so that two center instances
// never both send it (docs/multisite.md, high availability).
type Notification struct {
	Key  string `json:"key"` // the idempotency key: what it is about, once
	Site string `json:"site"`
	Kind string `json:"kind"` // escalation
	// Route is the id of the route (center.escalate.routes) whose
	// receiver it goes to; "" (recorded before routes existed): the
	// default route.
	Route   string          `json:"route,omitempty"`
	Created time.Time       `json:"created"`
	Payload json.RawMessage `json:"payload"`
	// Attempt counts the sends, from 1. Above 1 the receiver may have had
	// it already (a sender that died mid-send, a timeout): the same Key
	// lets it drop the copy.
	Attempt int `json:"attempt"`
}

// Instance is one center instance of a group, as the center's database
// knows it.
type Instance struct {
	ClientID string    `json:"client_id"`
	Group    string    `json:"group"`
	Started  time.Time `json:"started"`
	Seen     time.Time `json:"seen"`
	Drained  time.Time `json:"drained,omitzero"` // its broker session last emptied by another instance
}
