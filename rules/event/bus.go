// Package event is the bus that carries every alarm, work-order and
// incident change, and every request to notify people, to the dashboard
// and alert routing. It never blocks a publisher; drops are counted.
package event

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// EventType says what an Event carries.
type EventType string

// Event types.
const (
	EventAlarm     EventType = "alarm"
	EventWorkOrder EventType = "workorder"
	EventIncident  EventType = "incident"
	EventNotify    EventType = "notify"   // a playbook asks for people in roles to be told
	EventHandover  EventType = "handover" // a shift handover signed or accepted
	EventSent      EventType = "sent"     // a message the site's alerting sent
)

// Event is one change, published on the Bus for the dashboard and alerting.
type Event struct {
	Type       EventType               `json:"type"`
	At         time.Time               `json:"at"`
	Alarm      *rules.Alarm            `json:"alarm,omitempty"`
	Transition *rules.Transition       `json:"transition,omitempty"`
	WorkOrder  *workorder.WorkOrder    `json:"workorder,omitempty"`
	Change     *workorder.HistoryEntry `json:"change,omitempty"`
	Incident   *playbook.Incident      `json:"incident,omitempty"`
	Notify     *playbook.Notification  `json:"notify,omitempty"`
	Handover   *duty.Handover          `json:"handover,omitempty"`
	Sent       *Sent                   `json:"sent,omitempty"`
}

// Sent is a message the site's alerting sent (alerts.Attempt with result
// sent): to whom (a person id), by which channel, about which alerts and
// alarms — never the address it went to.
type Sent struct {
	ID       int64     `json:"id"` // the delivery attempt's id at the site
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"` // alert, escalation, reminder, resolved, notify
	Alerts   []string  `json:"alerts,omitempty"`
	Alarms   []string  `json:"alarms,omitempty"`
	Person   string    `json:"person"`
	Channel  string    `json:"channel"`
	Endpoint string    `json:"endpoint,omitempty"` // the budget's name, never a URL
	Try      int       `json:"try"`
	Status   string    `json:"status"` // sent
	Drill    bool      `json:"drill"`
}

// Bus fans events out to subscribers without ever blocking the publisher:
// a subscriber whose buffer is full loses the event, counted in Dropped
// (everything is also in the store, to resynchronise from).
type Bus struct {
	mu      sync.RWMutex
	subs    map[*Sub]struct{}
	dropped prometheus.Counter
}

var (
	_ rules.Observer     = (*Bus)(nil)
	_ workorder.Observer = (*Bus)(nil)
	_ playbook.Observer  = (*Bus)(nil)
	_ duty.Observer      = (*Bus)(nil)
)

// Sub is one subscriber.
type Sub struct {
	C       <-chan Event
	c       chan Event
	dropped atomic.Uint64
	bus     *Bus
}

// Dropped counts events this subscriber missed.
func (s *Sub) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes; C is closed.
func (s *Sub) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.c)
	}
}

// NewBus builds a bus; reg (may be nil) gets the drop counter.
func NewBus(reg prometheus.Registerer) *Bus {
	b := &Bus{subs: map[*Sub]struct{}{}, dropped: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gateway_events_dropped_total",
		Help: "Events a slow subscriber missed (each subscriber resynchronises from the store or the engine)."})}
	if reg != nil {
		reg.MustRegister(b.dropped)
	}
	return b
}

// Subscribe adds a subscriber with a bounded buffer.
func (b *Bus) Subscribe(buffer int) *Sub {
	c := make(chan Event, max(buffer, 1))
	s := &Sub{C: c, c: c, bus: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish delivers ev to every subscriber that has room.
func (b *Bus) Publish(ev Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped.Add(1)
			b.dropped.Inc()
		}
	}
}

// Drive feeds a subscription's events to onEvent and calls tick every
// interval, until ctx ends; it closes the subscription.
func Drive(ctx context.Context, sub *Sub, every time.Duration, onEvent func(Event), tick func()) {
	defer sub.Close()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-sub.C:
			onEvent(ev)
		case <-t.C:
			tick()
		}
	}
}

// AlarmChanged implements rules.Observer.
func (b *Bus) AlarmChanged(a rules.Alarm, t rules.Transition) {
	b.Publish(Event{Type: EventAlarm, At: t.At, Alarm: &a, Transition: &t})
}

// WorkOrderChanged implements workorder.Observer.
func (b *Bus) WorkOrderChanged(w workorder.WorkOrder, h workorder.HistoryEntry) {
	b.Publish(Event{Type: EventWorkOrder, At: h.At, WorkOrder: &w, Change: &h})
}

// IncidentChanged implements playbook.Observer.
func (b *Bus) IncidentChanged(in *playbook.Incident) {
	at := in.Started
	if n := len(in.Timeline); n > 0 {
		at = in.Timeline[n-1].At // the change just recorded
	}
	b.Publish(Event{Type: EventIncident, At: at, Incident: in})
}

// HandoverChanged implements duty.Observer: at when it was signed, or
// accepted.
func (b *Bus) HandoverChanged(h duty.Handover) {
	at := h.Outgoing.At
	if h.Incoming != nil {
		at = h.Incoming.At
	}
	b.Publish(Event{Type: EventHandover, At: at, Handover: &h})
}

// Notify implements playbook.Observer.
func (b *Bus) Notify(n playbook.Notification) {
	b.Publish(Event{Type: EventNotify, At: n.At, Notify: &n})
}
