package replication_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/sqlite"
)

type countingApplier struct {
	n      map[string]int
	refuse error
}

func (a *countingApplier) ApplyCommand(_ context.Context, c replication.Command) error {
	a.n[c.ID]++
	return a.refuse
}

// A command from the center is applied once however often it arrives,
// refused (with the reason going up) when expired, beyond the user's role,
// refused by the site's own rules, or meant for another site; its result
// goes up through the outbox as an ordinary event.
func TestSiteCommandsApplyOnce(t *testing.T) {
	ctx := context.Background()
	rdb, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gateway.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	outbox, err := sqlite.NewReplicationOutbox(rdb.DB)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	apply := &countingApplier{n: map[string]int{}}
	s := replication.NewSiteCommands("north-1", outbox, outbox, apply, nil, nil, quiet, func() time.Time { return now })
	topic := replication.CommandTopic("north-1")
	send := func(topic string, c replication.Command) {
		t.Helper()
		b, _ := json.Marshal(c)
		if err := s.Handle(ctx, topic, b); err != nil {
			t.Fatal(err)
		}
	}
	results := func() map[string]replication.Result {
		t.Helper()
		evs, err := outbox.Unsent(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]replication.Result{}
		for _, e := range evs {
			var r replication.Result
			if e.Kind != replication.KindCommand || json.Unmarshal(e.Doc, &r) != nil || out[e.Key].ID != "" {
				t.Fatalf("unexpected event %+v", e)
			}
			out[e.Key] = r
		}
		return out
	}
	ack := replication.Command{V: 1, ID: "c-1", Site: "north-1", By: "li.na", Role: "operator", At: now, Expires: now.Add(time.Minute),
		Action: replication.ActionAckAlarm, Key: "pump-low:b3"}
	send(topic, ack)
	send(topic, ack) // QoS 1 redelivery
	send(topic, ack) // the center's resend
	if apply.n["c-1"] != 1 {
		t.Fatalf("applied %d times", apply.n["c-1"])
	}

	late := ack
	late.ID, late.Expires = "c-2", now.Add(-time.Second)
	send(topic, late)
	low := ack
	low.ID, low.Role = "c-3", "engineer" // acknowledging needs an operator
	send(topic, low)
	other := ack
	other.ID, other.Site = "c-4", "south-2"
	send(replication.CommandTopic("south-2"), other) // not this site's topic: ignored
	send(topic, other)                               // this site's topic, another site's command: refused
	if apply.n["c-2"]+apply.n["c-3"]+apply.n["c-4"] != 0 {
		t.Fatalf("applied %v", apply.n)
	}
	apply.refuse = errors.New("alarm pump-low:b3 is not active")
	refused := ack
	refused.ID = "c-5"
	send(topic, refused)

	// Interrupted while applying (recorded, no result): never applied again.
	if fresh, _, err := outbox.Begin(ctx, "c-6", now); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	again := ack
	again.ID = "c-6"
	send(topic, again)
	if apply.n["c-6"] != 0 {
		t.Fatal("an interrupted command was applied again")
	}

	got := results()
	for id, want := range map[string]string{"c-1": "applied", "c-2": "refused: expired at 2026-12-05T08:59:59Z",
		"c-3": `refused: ack_alarm needs a higher role than "engineer"`, "c-4": `refused: command for site "south-2" sent to "north-1"`,
		"c-5": "refused: alarm pump-low:b3 is not active"} {
		r := got[id]
		s := r.Status
		if r.Reason != "" {
			s += ": " + r.Reason
		}
		if s != want || r.ID != id {
			t.Errorf("%s: %q, want %q", id, s, want)
		}
	}
	if len(got) != 5 {
		t.Errorf("results %v: one per command, none for a redelivery or an interrupted one", got)
	}
}
