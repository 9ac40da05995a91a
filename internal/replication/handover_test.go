package replication

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/event"
)

// A handover signed, then accepted, goes up as kind handover keyed by its
// id, at the time of each signature, the whole record as doc.
func TestHandoverEnvelope(t *testing.T) {
	bus := event.NewBus(prometheus.NewRegistry())
	sub := bus.Subscribe(4)
	defer sub.Close()
	signed := time.Date(2026, 12, 5, 7, 58, 0, 0, time.UTC)
	h := duty.Handover{ID: 12, Team: "engineering", Status: duty.Signed, Remarks: "2号泵异响", Outgoing: duty.Signature{By: "zhang.wei", At: signed}}
	bus.HandoverChanged(h)
	h.Status, h.Incoming = duty.Accepted, &duty.Signature{By: "wang.li", At: signed.Add(5 * time.Minute)}
	bus.HandoverChanged(h)
	for i, want := range []struct {
		status string
		at     time.Time
	}{{duty.Signed, signed}, {duty.Accepted, signed.Add(5 * time.Minute)}} {
		e, ok, err := Envelope("north-1", <-sub.C)
		if err != nil || !ok {
			t.Fatalf("#%d: not an envelope: %v", i, err)
		}
		var doc duty.Handover
		_ = json.Unmarshal(e.Doc, &doc)
		if e.Kind != KindHandover || e.Key != "12" || !e.At.Equal(want.at) || doc.Status != want.status || doc.Remarks != "2号泵异响" || len(e.Changed) != 1 {
			t.Errorf("#%d: %+v (doc %+v), want %s at %v", i, e, doc, want.status, want.at)
		}
	}
}

// A message the site's alerting sent goes up as kind notification keyed
// by its delivery attempt's id, at when it was sent.
func TestNotificationEnvelope(t *testing.T) {
	at := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	e, ok, err := Envelope("north-1", event.Event{Type: event.EventSent, At: at, Sent: &event.Sent{ID: 41, At: at, Kind: "alert",
		Alarms: []string{"pump-low-pressure:b3"}, Person: "wang", Channel: "sms", Try: 1, Status: "sent"}})
	if err != nil || !ok {
		t.Fatalf("not an envelope: %v", err)
	}
	var doc event.Sent
	_ = json.Unmarshal(e.Doc, &doc)
	if e.Kind != KindNotification || e.Key != "41" || !e.At.Equal(at) || doc.Person != "wang" || doc.Channel != "sms" || doc.Alarms[0] != "pump-low-pressure:b3" {
		t.Errorf("%+v (doc %+v)", e, doc)
	}
}
