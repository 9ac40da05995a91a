package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/propgate/gateway/rules/event"
)

// Recorder writes the site's changes, as the event bus carries them, into
// the outbox. It reads its own bus subscription (the bus never blocks the
// engine; a drop is counted in gateway_events_dropped_total, and the
// snapshot a site sends at start repairs it at the center).
type Recorder struct {
	site   string
	outbox Outbox
	events <-chan event.Event
	log    *slog.Logger
	kick   chan struct{}
}

// NewRecorder records events from the channel (a bus subscription) into
// outbox for site.
func NewRecorder(site string, outbox Outbox, events <-chan event.Event, log *slog.Logger) *Recorder {
	return &Recorder{site: site, outbox: outbox, events: events, log: log, kick: make(chan struct{}, 1)}
}

// Appended is signalled (non-blocking, coalesced) after each append: the
// publisher's cue.
func (r *Recorder) Appended() <-chan struct{} { return r.kick }

// Envelope turns a bus event into an envelope (ok false for events not
// replicated, such as notification requests).
func Envelope(site string, ev event.Event) (Event, bool, error) {
	e := Event{V: Version, Site: site, At: ev.At, Op: "upsert"}
	var doc any
	switch {
	case ev.Type == event.EventAlarm && ev.Alarm != nil:
		e.Kind, e.Key, doc = KindAlarm, ev.Alarm.ID, ev.Alarm
		if ev.Transition != nil {
			e.At, e.Changed = ev.Transition.At, []string{"state"}
		}
	case ev.Type == event.EventWorkOrder && ev.WorkOrder != nil:
		e.Kind, e.Key, doc = KindWorkOrder, strconv.FormatInt(ev.WorkOrder.ID, 10), ev.WorkOrder
		if ev.Change != nil && !ev.Change.At.IsZero() {
			e.At = ev.Change.At
		}
	case ev.Type == event.EventIncident && ev.Incident != nil:
		e.Kind, e.Key, doc = KindIncident, strconv.FormatInt(ev.Incident.ID, 10), ev.Incident
	case ev.Type == event.EventHandover && ev.Handover != nil:
		e.Kind, e.Key, doc = KindHandover, strconv.FormatInt(ev.Handover.ID, 10), ev.Handover
		e.Changed = []string{"status"}
	case ev.Type == event.EventSent && ev.Sent != nil:
		e.Kind, e.Key, doc = KindNotification, strconv.FormatInt(ev.Sent.ID, 10), ev.Sent
	default:
		return e, false, nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return e, false, fmt.Errorf("replication: %s %s: %w", e.Kind, e.Key, err)
	}
	e.Doc = b
	return e, true, nil
}

// Run records until ctx ends or the channel closes.
func (r *Recorder) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-r.events:
			if !ok {
				return nil
			}
			e, ok, err := Envelope(r.site, ev)
			if err != nil {
				r.log.Error("replication: not recorded", "err", err)
				continue
			}
			if !ok {
				continue
			}
			if err := r.outbox.Append(ctx, &e); err != nil {
				r.log.Error("replication: outbox append failed", "kind", e.Kind, "key", e.Key, "err", err)
				continue
			}
			r.Kick()
		}
	}
}

// Kick wakes the publisher (non-blocking, coalesced).
func (r *Recorder) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
