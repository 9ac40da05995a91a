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
