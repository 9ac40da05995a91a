package alerts

import (
	"testing"
	"time"
)

// Test hooks for the external tests (package alerts_test, which can use
// the real SQLite store without an import cycle).

// WaitStarted waits until Run has loaded the open alerts.
func (r *Router) WaitStarted(t testing.TB) {
	t.Helper()
	select {
	case <-r.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the router did not start")
	}
}

// Settle waits until every queued message was delivered (or given up).
func (r *Router) Settle(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); r.inflight.Load() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still in flight", r.inflight.Load())
		}
	}
}

// SetNotifier replaces a channel's notifier (before Run).
func (r *Router) SetNotifier(channel string, n Notifier) { r.notifiers[channel] = n }

// Render renders a message for a person.
func (r *Router) Render(person, kind string, alerts []*Alert, now time.Time) (string, string) {
	return r.render(r.people[person], kind, alerts, now, true)
}

// RenderDigest renders a digest of alerts for a person on the first
// contact's endpoint.
func (r *Router) RenderDigest(person string, as []*Alert, now time.Time) (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.people[person]
	parts := []*message{{person: p, kind: "alert", alerts: as}}
	m := &message{person: p, kind: "digest", parts: parts, ep: r.endpointOf[p.Contacts[0].Channel]}
	return r.renderDigest(m, now)
}
