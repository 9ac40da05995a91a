package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// Acknowledgements leave in arrival order whatever order the partitions
// finish in; a message given up without sending still lets the later ones
// go.
func TestAcknowledgementsInArrivalOrder(t *testing.T) {
	o := inOrder{waiting: map[uint64]func(){}}
	var sent []int
	idx := make([]uint64, 5)
	for i := range idx {
		idx[i] = o.add(func() { sent = append(sent, i) })
	}
	o.done(idx[2], true)
	o.done(idx[1], true)
	if len(sent) != 0 {
		t.Fatalf("acknowledged before the oldest: %v", sent)
	}
	o.done(idx[0], true)
	o.done(idx[4], true)
	if fmt.Sprint(sent) != "[0 1 2]" {
		t.Fatalf("sent %v", sent)
	}
	o.done(idx[3], false) // not applied: not acknowledged, but no longer holding 4 back
	if fmt.Sprint(sent) != "[0 1 2 4]" || len(o.waiting) != 0 || len(o.ready) != 0 {
		t.Fatalf("sent %v, left %v %v", sent, o.waiting, o.ready)
	}
}

type statusCenter struct {
	got  []Status
	fail bool
}

func (s *statusCenter) ApplyBatch(context.Context, []Received, time.Time) ([]bool, error) {
	return nil, errors.New("not expected")
}

func (s *statusCenter) SiteStatus(_ context.Context, st Status, _ time.Time) error {
	if s.fail {
		return errors.New("database down")
	}
	s.got = append(s.got, st)
	return nil
}

// A site's status reaches an HA instance's consumer too: recorded under
// the topic's site (not the payload's), acknowledged in turn; a status the
// store could not take is not acknowledged (the broker sends it again); a
// status naming another site is dropped.
func TestBatchConsumerRecordsSiteStatus(t *testing.T) {
	c := &statusCenter{}
	k := NewBatchConsumer(c, slog.New(slog.DiscardHandler), time.Now, 1)
	var acked []string
	ack := func(s string) func() { return func() { acked = append(acked, s) } }
	k.Offer(t.Context(), "propgate/v1/site/a/status", []byte(`{"v":1,"state":"online","head":9}`), ack("a"))
	k.Offer(t.Context(), "propgate/v1/site/b/status", []byte(`{"v":1,"site":"c","state":"online","head":1}`), ack("forged"))
	c.fail = true
	k.Offer(t.Context(), "propgate/v1/site/d/status", []byte(`{"v":1,"state":"offline"}`), ack("d"))
	if len(c.got) != 1 || c.got[0].Site != "a" || c.got[0].Head != 9 {
		t.Fatalf("recorded %+v, want a's head 9 only", c.got)
	}
	if fmt.Sprint(acked) != "[a forged]" {
		t.Fatalf("acknowledged %v, want a and the dropped forgery, not d", acked)
	}
}
