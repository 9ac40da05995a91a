package alerts

import (
	"context"
	"errors"
	"time"
)

// Store is what the router keeps across restarts: alerts' escalation state
// and every delivery attempt. internal/store/sqlite implements it.
type Store interface {
	SaveAlert(ctx context.Context, a *Alert) error
	OpenAlerts(ctx context.Context) ([]*Alert, error) // firing or acknowledged
	Alert(ctx context.Context, id string) (*Alert, error)
	AddAttempt(ctx context.Context, a *Attempt) error
}

// LinkLedger remembers used acknowledgement links, so each works once.
type LinkLedger interface {
	// UseLink marks key used at at; it answers ErrLinkUsed (and when) if it
	// was used before. Entries may be forgotten after expires.
	UseLink(ctx context.Context, key string, at, expires time.Time) (usedAt time.Time, err error)
	// LinkUsed says whether and when key was used.
	LinkUsed(ctx context.Context, key string) (usedAt time.Time, used bool, err error)
}

// Log is the alerts history as the console reads it.
type Log interface {
	Alerts(ctx context.Context, limit int) ([]*Alert, error)     // newest first
	Attempts(ctx context.Context, limit int) ([]*Attempt, error) // newest first
}

// Store errors, matched with errors.Is.
var (
	ErrNotFound = errors.New("no such alert")
	ErrLinkUsed = errors.New("this acknowledgement link was used already; each link works once")
)

// Auditor receives every acknowledgement made through a message link (the
// dashboard's audit log).
type Auditor interface {
	AuditLinkAck(ctx context.Context, e LinkAudit)
}

// LinkAudit is one use of an acknowledgement link.
type LinkAudit struct {
	At       time.Time `json:"at"`
	AlertID  string    `json:"alert_id"`
	AlarmID  string    `json:"alarm_id"`
	Person   string    `json:"person"` // the person id the link was made for
	Name     string    `json:"name"`
	ClientIP string    `json:"client_ip"`
	Result   string    `json:"result"` // acked, already_acked, already_closed, link_used
}
