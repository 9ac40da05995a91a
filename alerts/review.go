package alerts

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"path"
	"strings"

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
	return r.sendPlain(ctx, to, notify.Message{Subject: subject, Text: text})
}

// SendPlainFile is SendPlain with a file (the monthly report's workbook):
// attached where the channel carries files (e-mail); the robots and SMS get
// the text alone, which must say where to find the file.
func (r *Router) SendPlainFile(ctx context.Context, to, subject, text, name string, data []byte) error {
	if len(data) == 0 {
		return r.sendPlain(ctx, to, notify.Message{Subject: subject, Text: text})
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if path.Ext(name) == ".xlsx" { // not in every system's table
		ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return r.sendPlain(ctx, to, notify.Message{Subject: subject, Text: text, Files: []notify.File{{Name: name, ContentType: ct, Data: data}}})
}

func (r *Router) sendPlain(ctx context.Context, to string, m notify.Message) error {
	if !strings.Contains(to, ":") { // a person's id, as work orders name people
		to = "person:" + to
	}
	r.conf.RLock()
	people := r.targets([]string{to}, r.now())
	notifiers := r.notifiers // replaced whole on a reload, never changed in place
	r.conf.RUnlock()
	if len(people) == 0 {
		return fmt.Errorf("%w: %s", ErrNoRecipient, to)
	}
	var errs []error
	for _, p := range people {
		var tried []error
		sent := false
		for _, c := range p.Contacts {
			n := notifiers[c.Channel]
			if n == nil {
				continue
			}
			msg := m
			msg.To, msg.Address = p.ID, c.Address
			if _, err := n.Notify(ctx, &msg); err != nil {
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
