package rules

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// EventType says what an Event carries.
type EventType string

// Event types.
const (
	EventAlarm     EventType = "alarm"
	EventWorkOrder EventType = "workorder"
	EventIncident  EventType = "incident"
	EventNotify    EventType = "notify" // a playbook asks for people in roles to be told
)

// Event is one change, published on the Bus for the dashboard and alerting.
type Event struct {
	Type       EventType     `json:"type"`
	At         time.Time     `json:"at"`
	Alarm      *Alarm        `json:"alarm,omitempty"`
	Transition *Transition   `json:"transition,omitempty"`
	WorkOrder  *WorkOrder    `json:"workorder,omitempty"`
	Change     *HistoryEntry `json:"change,omitempty"`
	Incident   *Incident     `json:"incident,omitempty"`
	Notify     *Notification `json:"notify,omitempty"`
}

// Bus fans events out to subscribers without ever blocking the publisher:
// a subscriber whose buffer is full loses the event, counted in Dropped
// (everything is also in the store, to resynchronise from).
type Bus struct {
	mu   sync.RWMutex
	subs map[*Sub]struct{}
}

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

// NewBus builds a bus.
func NewBus() *Bus { return &Bus{subs: map[*Sub]struct{}{}} }

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
