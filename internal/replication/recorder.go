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
// the outbox. It reads its own bus subscription: the bus never blocks the
// engine, so a burst can overflow it (counted in
// gateway_events_dropped_total), and a record's change is committed before
// the bus carries it, so a crash between the two loses that change. With
// Repair set, both are repaired: at start and whenever the subscription
// has dropped events, the recorder appends a snapshot of the site's
// current records (after the events already queued, so that no older
// change follows it), and the center converges on the current state.
type Recorder struct {
	site   string
	outbox Outbox
	events <-chan event.Event
	log    *slog.Logger
	kick   chan struct{}

	// Repair, when set, lists the current records (the full resync's
	// snapshot); Dropped says how many events the subscription lost.
	Repair  Snapshotter
	Dropped func() uint64
	// Repaired, when set, is told of each snapshot appended (tests).
	Repaired func(records int)
}

// appendAll appends evs in one transaction when the outbox can.
func appendAll(ctx context.Context, o Outbox, evs []Event) error {
	if b, ok := o.(interface {
		AppendAll(ctx context.Context, evs []Event) error
	}); ok {
		return b.AppendAll(ctx, evs)
	}
	for i := range evs {
		if err := o.Append(ctx, &evs[i]); err != nil {
			return err
		}
	}
	return nil
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
	var dropped uint64
	repair := r.Repair != nil // at start: what a crash may have lost
	for {
		if repair {
			if !r.drain(ctx) {
				return nil
			}
			if r.Dropped != nil {
				dropped = r.Dropped()
			}
			r.repair(ctx)
			repair = false
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-r.events:
			if !ok {
				return nil
			}
			r.record(ctx, ev)
			if r.Repair != nil && r.Dropped != nil && r.Dropped() != dropped {
				r.log.Warn("replication: the event bus dropped changes; sending a snapshot of the current records", "dropped", r.Dropped()-dropped)
				repair = true
			}
		}
	}
}

// drain records every event already queued (false: the channel closed or
// ctx ended).
func (r *Recorder) drain(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-r.events:
			if !ok {
				return false
			}
			r.record(ctx, ev)
		default:
			return true
		}
	}
}

// repair appends a snapshot of the current records.
func (r *Recorder) repair(ctx context.Context) {
	evs, err := r.Repair.Snapshot(ctx)
	if err == nil {
		err = appendAll(ctx, r.outbox, evs)
	}
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("replication: snapshot of the current records not recorded", "err", err)
		}
		return
	}
	r.Kick()
	if r.Repaired != nil {
		r.Repaired(len(evs))
	}
}

func (r *Recorder) record(ctx context.Context, ev event.Event) {
	e, ok, err := Envelope(r.site, ev)
	if err != nil {
		r.log.Error("replication: not recorded", "err", err)
		return
	}
	if !ok {
		return
	}
	if err := r.outbox.Append(ctx, &e); err != nil {
		r.log.Error("replication: outbox append failed", "kind", e.Kind, "key", e.Key, "err", err)
		return
	}
	r.Kick()
}

// Kick wakes the publisher (non-blocking, coalesced).
func (r *Recorder) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
