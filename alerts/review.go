package alerts

import (
	"context"
	"errors"
	"fmt"

	"github.com/propgate/gateway/alerts/notify"
)

// ErrNoRecipient: a plain message named nobody under people: (nor a team
// with someone on duty).
var ErrNoRecipient = errors.New("no such person or team under alerts: people/teams")

// SendPlain sends a plain message (the work orders' daily review) to a
// person, or to whoever is on duty in a team ("team:<id>"), through their
// contacts in order until one takes it. It is not an alert: nothing to
// acknowledge, no escalation, no grouping with alarms.
func (r *Router) SendPlain(ctx context.Context, to, subject, text string) error {
	people := r.targets([]string{to}, r.now())
	if len(people) == 0 {
		return fmt.Errorf("%w: %s", ErrNoRecipient, to)
	}
	var errs []error
	for _, p := range people {
		var tried []error
		sent := false
		for _, c := range p.Contacts {
			n := r.notifiers[c.Channel]
			if n == nil {
				continue
			}
			if _, err := n.Notify(ctx, &notify.Message{To: p.ID, Address: c.Address, Subject: subject, Text: text}); err != nil {
				tried = append(tried, fmt.Errorf("%s via %s: %w", p.ID, c.Channel, err))
				continue
			}
			sent = true
			break
		}
		switch {
		case sent:
		case len(tried) == 0:
			errs = append(errs, fmt.Errorf("%s: no contact on a configured channel", p.ID))
		default:
			errs = append(errs, tried...)
		}
	}
	return errors.Join(errs...)
}
