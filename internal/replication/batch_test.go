package replication

import (
	"fmt"
	"testing"
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
