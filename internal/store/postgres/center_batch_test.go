package postgres

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/testenv"
)

// A burst applies like one Apply per event: each (site, seq) once (a
// redelivery within the burst or of an earlier burst is a duplicate), a
// record takes the newest seq of the burst and is never replaced by an
// older one arriving later, the site's last seq only moves forward.
func TestCenterApplyBatchIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	c, err := OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev := func(site string, seq int64, key, state string) replication.Received {
		e := replication.Event{V: 1, Site: site, Seq: seq, Kind: "alarm", Key: key, Op: "upsert", At: time.Unix(1700000000+seq, 0),
			Doc: json.RawMessage(fmt.Sprintf(`{"state":%q,"priority":"critical"}`, state))}
		raw, _ := json.Marshal(e)
		return replication.Received{Event: e, Raw: raw}
	}
	applied, err := c.ApplyBatch(ctx, []replication.Received{
		ev("a", 1, "x", "unacknowledged"), ev("a", 2, "x", "acknowledged"), ev("a", 2, "x", "acknowledged"), // a redelivery inside the burst
		ev("b", 7, "y", "unacknowledged"), ev("a", 4, "z", "unacknowledged"),
	}, time.Now())
	if err != nil || fmt.Sprint(applied) != "[true true false true true]" {
		t.Fatalf("first burst: %v %v", applied, err)
	}
	// Later: a redelivery of seq 1, a late seq 3 for z (older than its 4:
	// it must not win), a newer seq 5 for x.
	applied, err = c.ApplyBatch(ctx, []replication.Received{ev("a", 1, "x", "unacknowledged"), ev("a", 3, "z", "normal"), ev("a", 5, "x", "normal")}, time.Now())
	if err != nil || fmt.Sprint(applied) != "[false true true]" {
		t.Fatalf("second burst: %v %v", applied, err)
	}
	for _, w := range []struct {
		site, key, state string
		seq              int64
	}{{"a", "x", "normal", 5}, {"a", "z", "unacknowledged", 4}, {"b", "y", "unacknowledged", 7}} {
		r, err := c.Record(ctx, w.site, "alarm", w.key)
		if err != nil || r.State != w.state || r.Seq != w.seq {
			t.Errorf("%s/%s: %+v %v, want %s at seq %d", w.site, w.key, r, err, w.state, w.seq)
		}
	}
	sites, err := c.Sites(ctx, time.Now(), time.Minute)
	if err != nil || len(sites) != 2 || sites[0].LastSeq != 5 || sites[1].LastSeq != 7 || sites[0].ActiveAlarms["critical"] != 1 {
		t.Fatalf("sites: %+v %v", sites, err)
	}
	var n int
	if err := c.pool.QueryRow(ctx, `SELECT count(*) FROM center_events`).Scan(&n); err != nil || n != 6 {
		t.Fatalf("%d events stored (%v), want 6", n, err)
	}
}

// What the center does alone it does in bursts too (an HA instance applies
// only bursts): a hole in a site's seqs is a gap until filled, a command's
// result coming up as an event settles the command, the site is online,
// and a status message (its head) shows a gap past the last event.
func TestCenterApplyBatchGapsAndResultsIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	c, err := OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ev := func(seq int64, kind, key string, doc any) replication.Received {
		d, _ := json.Marshal(doc)
		e := replication.Event{V: 1, Site: "a", Seq: seq, Kind: kind, Key: key, Op: "upsert", At: t0, Doc: d}
		raw, _ := json.Marshal(e)
		return replication.Received{Event: e, Raw: raw}
	}
	alarm := map[string]string{"state": "unacknowledged", "priority": "high"}
	if err := c.AddCommand(ctx, replication.Command{V: 1, ID: "c-1", Site: "a", By: "zhao", Role: "operator", At: t0, Expires: t0.Add(time.Hour),
		Action: replication.ActionAckAlarm, Key: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyBatch(ctx, []replication.Received{ev(1, "alarm", "x", alarm), ev(3, "alarm", "y", alarm)}, t0); err != nil {
		t.Fatal(err)
	}
	// The commander's tick sees the hole (bursts leave the marks to it),
	// and asks for it once it has lasted the wait.
	if gaps, err := c.Gaps(ctx, t0, 10*time.Second); err != nil || len(gaps) != 0 {
		t.Fatalf("a hole just seen: gaps %+v %v, want none yet", gaps, err)
	}
	gaps, err := c.Gaps(ctx, t0.Add(time.Minute), 10*time.Second)
	if err != nil || len(gaps) != 1 || gaps[0].Site != "a" || gaps[0].From != 2 || gaps[0].Head != 3 {
		t.Fatalf("after seqs 1 and 3: gaps %+v %v, want seq 2 missing from a", gaps, err)
	}
	result := replication.Result{ID: "c-1", Action: replication.ActionAckAlarm, By: "zhao", Status: replication.ResultApplied, At: t0.Add(time.Second)}
	if _, err := c.ApplyBatch(ctx, []replication.Received{ev(2, "alarm", "z", alarm), ev(4, replication.KindCommand, "c-1", result)}, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if gaps, err := c.Gaps(ctx, t0.Add(time.Minute), 10*time.Second); err != nil || len(gaps) != 0 {
		t.Fatalf("seq 2 arrived: gaps %+v %v, want none", gaps, err)
	}
	st, err := c.Command(ctx, "c-1")
	if err != nil || st.Status != replication.ResultApplied {
		t.Fatalf("command c-1 after its result came up in a burst: %+v %v, want applied", st, err)
	}
	// The site says its head is 6: seqs 5 and 6 are missing.
	if err := c.SiteStatus(ctx, replication.Status{V: 1, Site: "a", State: "online", Head: 6}, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Gaps(ctx, t0.Add(time.Minute), 10*time.Second)
	gaps, err = c.Gaps(ctx, t0.Add(2*time.Minute), 10*time.Second)
	if err != nil || len(gaps) != 1 || gaps[0].From != 5 || gaps[0].Head != 6 {
		t.Fatalf("head 6 after seq 4: gaps %+v %v, want 5..6 missing", gaps, err)
	}
	sites, err := c.Sites(ctx, t0.Add(4*time.Second), time.Minute)
	if err != nil || len(sites) != 1 || !sites[0].Online {
		t.Fatalf("sites %+v %v, want a online", sites, err)
	}
}
