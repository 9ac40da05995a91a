package postgres

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/testenv"
)

// Epochs as a site makes them: when, then random digits; e2 is newer.
const (
	e1 = "20261201080000000a1b2c3d"
	e2 = "20261205090000000ffee0011"
)

// A site whose database is replaced starts again at seq 1 under a new
// epoch: its events are applied (not taken for duplicates), its records
// take the new epoch's changes, its seq tracking starts afresh (no gap, no
// replay of the old epoch's seqs); a late message of the old epoch is
// recorded but changes neither the records nor the tracking; a redelivery
// within an epoch is still a duplicate. The same through ApplyBatch (the
// HA consumer) and Apply (a single center).
func TestCenterSiteEpochIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	c, err := OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ev := func(site, epoch string, seq int64, key, state string) replication.Event {
		return replication.Event{V: 1, Site: site, Epoch: epoch, Seq: seq, Kind: "alarm", Key: key, Op: "upsert", At: t0.Add(time.Duration(seq) * time.Second),
			Doc: json.RawMessage(fmt.Sprintf(`{"state":%q,"priority":"critical"}`, state))}
	}
	for _, batch := range []bool{false, true} {
		site := map[bool]string{false: "single", true: "batch"}[batch]
		apply := func(es ...replication.Event) string {
			t.Helper()
			if !batch {
				var out []bool
				for _, e := range es {
					ok, err := c.Apply(ctx, e, t0)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, ok)
				}
				return fmt.Sprint(out)
			}
			in := make([]replication.Received, len(es))
			for i, e := range es {
				in[i] = replication.Received{Event: e}
			}
			out, err := c.ApplyBatch(ctx, in, t0)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(out)
		}
		check := func(what, key, state, epoch string, seq int64) {
			t.Helper()
			r, err := c.Record(ctx, site, "alarm", key)
			var got struct{ State string }
			_ = json.Unmarshal(r.Doc, &got)
			if err != nil || got.State != state || r.Seq != seq {
				t.Errorf("%s: %s %s: %s at seq %d (%v), want %s at seq %d (epoch %s)", site, what, key, got.State, r.Seq, err, state, seq, epoch)
			}
		}
		gapsOf := func() []replication.Gap {
			t.Helper()
			all, err := c.Gaps(ctx, t0.Add(time.Hour), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var out []replication.Gap
			for _, g := range all {
				if g.Site == site {
					out = append(out, g)
				}
			}
			return out
		}
		status := func(what string, lastSeq, contiguous int64, epoch string) {
			t.Helper()
			gaps := gapsOf() // the commander's tick first: bursts leave the contiguous mark to it
			sites, err := c.Sites(ctx, t0, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sites {
				if s.Site == site && (s.LastSeq != lastSeq || s.Contiguous != contiguous || s.Epoch != epoch) {
					t.Errorf("%s: %s: last seq %d, complete to %d, epoch %q; want %d, %d, %q", site, what, s.LastSeq, s.Contiguous, s.Epoch, lastSeq, contiguous, epoch)
				}
			}
			if len(gaps) != 0 {
				t.Errorf("%s: %s: gaps %+v, want none", site, what, gaps)
			}
		}
		if got := apply(ev(site, e1, 1, "x", "unacknowledged"), ev(site, e1, 2, "y", "unacknowledged"), ev(site, e1, 3, "x", "acknowledged")); got != "[true true true]" {
			t.Fatalf("%s: first epoch: %s", site, got)
		}
		status("first epoch", 3, 3, e1)
		// The database is replaced: seq 1 and 2 again, of the new epoch.
		if got := apply(ev(site, e2, 1, "x", "unacknowledged"), ev(site, e2, 2, "z", "unacknowledged")); got != "[true true]" {
			t.Fatalf("%s: the new epoch's seq 1 and 2 applied: %s, want [true true]", site, got)
		}
		check("new epoch", "x", "unacknowledged", e2, 1) // seq 1 of the new epoch replaces seq 3 of the old
		check("new epoch", "z", "unacknowledged", e2, 2)
		check("untouched", "y", "unacknowledged", e1, 2)
		status("new epoch", 2, 2, e2)
		// Late: the old epoch's seq 4 (y normal, x normal); a redelivery of
		// the new epoch's seq 2; the new epoch's seq 3.
		if got := apply(ev(site, e1, 4, "x", "normal"), ev(site, e1, 5, "y", "normal"), ev(site, e2, 2, "z", "unacknowledged"), ev(site, e2, 3, "z", "acknowledged")); got != "[true true false true]" {
			t.Fatalf("%s: late old epoch, redelivery, next: %s", site, got)
		}
		check("old epoch late", "x", "unacknowledged", e2, 1) // the new epoch's change stays
		check("old epoch late", "y", "normal", e1, 5)         // only the old epoch has it: its newer change applies
		check("next", "z", "acknowledged", e2, 3)
		status("after the late ones", 3, 3, e2)
		// The old epoch's retained status (head 5) does not make a gap.
		if err := c.SiteStatus(ctx, replication.Status{V: 1, Site: site, State: "online", Epoch: e1, Head: 5}, t0); err != nil {
			t.Fatal(err)
		}
		status("old status", 3, 3, e2)
		if err := c.SiteStatus(ctx, replication.Status{V: 1, Site: site, State: "online", Epoch: e2, Head: 4}, t0); err != nil {
			t.Fatal(err)
		}
		if gaps := gapsOf(); len(gaps) != 1 || gaps[0].From != 4 {
			t.Errorf("%s: the new epoch's head 4: gaps %+v, want from 4", site, gaps)
		}
	}
}

// Envelopes without an epoch (older site gateways) behave as before; a
// site upgraded in place continues (epoch_from above 1: nothing starts
// afresh), a site whose old database was replaced starts afresh.
func TestCenterSiteEpochUpgradeIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	c, err := OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ev := func(site, epoch string, from, seq int64, state string) replication.Event {
		return replication.Event{V: 1, Site: site, Epoch: epoch, EpochFrom: from, Seq: seq, Kind: "alarm", Key: "x", Op: "upsert", At: t0,
			Doc: json.RawMessage(fmt.Sprintf(`{"state":%q,"priority":"high"}`, state))}
	}
	for _, site := range []string{"upgraded", "replaced"} {
		for seq := int64(1); seq <= 3; seq++ {
			if ok, err := c.Apply(ctx, ev(site, "", 0, seq, "unacknowledged"), t0); err != nil || !ok {
				t.Fatalf("%s seq %d without an epoch: %v %v", site, seq, ok, err)
			}
		}
		if ok, err := c.Apply(ctx, ev(site, "", 0, 2, "unacknowledged"), t0); err != nil || ok {
			t.Fatalf("%s: a redelivery without an epoch applied: %v %v", site, ok, err)
		}
	}
	if ok, err := c.Apply(ctx, ev("upgraded", e2, 4, 4, "acknowledged"), t0); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := c.Apply(ctx, ev("replaced", e2, 0, 1, "acknowledged"), t0); err != nil || !ok {
		t.Fatalf("the replaced site's seq 1: %v %v, want applied", ok, err)
	}
	sites, err := c.Sites(ctx, t0, time.Minute)
	if err != nil || len(sites) != 2 {
		t.Fatal(sites, err)
	}
	for _, s := range sites {
		want := map[string][2]int64{"upgraded": {4, 4}, "replaced": {1, 1}}[s.Site]
		if s.LastSeq != want[0] || s.Contiguous != want[1] || s.Epoch != e2 {
			t.Errorf("%s: last seq %d, complete to %d, epoch %q; want %v, %s", s.Site, s.LastSeq, s.Contiguous, s.Epoch, want, e2)
		}
		r, err := c.Record(ctx, s.Site, "alarm", "x")
		if err != nil || r.State != "acknowledged" {
			t.Errorf("%s: x %+v %v, want the new epoch's change", s.Site, r, err)
		}
	}
}
