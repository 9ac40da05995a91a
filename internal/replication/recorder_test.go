package replication

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
)

type snapshotAt struct {
	out   *sliceOutbox
	state string
	seen  []int // the outbox's length at each snapshot
}

func (s *snapshotAt) Snapshot(context.Context) ([]Event, error) {
	s.seen = append(s.seen, len(s.out.events))
	return []Event{{V: Version, Site: "north-1", Kind: KindAlarm, Key: "pump-low:b3", Op: "upsert", Doc: json.RawMessage(`{"state":"` + s.state + `"}`)}}, nil
}

// The recorder repairs what the bus or a crash lost: at start, and after
// its subscription dropped events, it appends a snapshot of the current
// records — after recording the events already queued, so that no older
// change follows the snapshot — and no snapshot otherwise.
func TestRecorderRepairsAtStartAndAfterDrops(t *testing.T) {
	alarm := func(state rules.AlarmState) event.Event {
		return event.Event{Type: event.EventAlarm, At: time.Unix(1700000000, 0), Alarm: &rules.Alarm{ID: "pump-low:b3", State: state}}
	}
	events := make(chan event.Event, 16)
	events <- alarm(rules.StateUnacked) // queued before the recorder runs
	events <- alarm(rules.StateAcked)
	out := &sliceOutbox{}
	snap := &snapshotAt{out: out, state: "acknowledged"}
	var dropped atomic.Uint64
	r := NewRecorder("north-1", out, events, slog.New(slog.NewTextHandler(io.Discard, nil)))
	repaired := make(chan int, 4)
	r.Repair, r.Dropped, r.Repaired = snap, dropped.Load, func(n int) { repaired <- n }
	done := make(chan error)
	go func() { done <- r.Run(t.Context()) }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-repaired:
		case <-time.After(5 * time.Second):
			t.Fatalf("no snapshot %s", what)
		}
	}
	wait("at start")
	dropped.Add(3) // the bus lost three changes for this subscriber
	events <- alarm(rules.StateNormal)
	wait("after the drop")
	events <- alarm(rules.StateUnacked) // nothing dropped since: no snapshot
	close(events)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the recorder did not stop when its channel closed")
	}
	if len(snap.seen) != 2 || snap.seen[0] != 2 || snap.seen[1] != 4 {
		t.Fatalf("snapshots taken with %v events recorded before them, want [2 4] (the queued ones first)", snap.seen)
	}
	var got []string
	for _, e := range out.events {
		var d struct{ State string }
		_ = json.Unmarshal(e.Doc, &d)
		got = append(got, d.State)
	}
	want := []string{"unacknowledged", "acknowledged", "acknowledged", "normal", "acknowledged", "unacknowledged"}
	if len(got) != len(want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("outbox %v, want %v", got, want)
		}
	}
}
