package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/testenv"
)

// One gateway as a site publishing its changes and as the center consuming
// them into PostgreSQL (one broker stands in for the bridge): a pump fault
// shows on GET /api/v1/sites; acknowledging it at the site reaches the
// center's record; the site's work order is there too.
func TestSiteReplicatesToCenterIntegration(t *testing.T) {
	testenv.Integration(t)
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	root := testenv.RepoRoot(t)
	raw := demoYAML(t)
	raw = []byte(strings.Replace(string(raw), "  dir: playbooks", "  dir: "+filepath.Join(root, "configs", "playbooks"), 1))
	// The center alone escalates what nobody acknowledged (after 1 s
	// here), routed by the site's region.
	var hooked sync.Map // escalation key → body
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooked.Store(r.Header.Get("Idempotency-Key"), string(b))
	}))
	defer hook.Close()
	raw = append(raw, []byte("\nreplication: {every: 200ms}\ncenter:\n  database: "+url+"\n  offline_after: 1m\n"+
		"  sites: [{id: yushan-garden, name: 玉山花园, region: 北区}]\n"+
		"  escalate: {after: 1s, every: 200ms, priorities: [high], routes: [{id: north, regions: [北区], webhook: \""+hook.URL+"\"}]}\n")...)
	s.config = t.TempDir() + "/multisite.yaml"
	if err := os.WriteFile(s.config, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()

	type site struct {
		Site          string
		Online        bool
		LastSeen      time.Time      `json:"last_seen"`
		ActiveAlarms  map[string]int `json:"active_alarms"`
		OpenIncidents int            `json:"open_incidents"`
	}
	sites := func() []site {
		var out []site
		s.getJSON("/api/v1/sites", &out)
		return out
	}
	if code, body := s.postJSON("/api/v1/simulator/scenarios/pump-fault", `{"target": "b3-pump-room"}`); code != 200 {
		t.Fatalf("inject: %d %s", code, body)
	}
	s.waitFor("low-pressure alarm", 30*time.Second, func() bool { return s.alarm(lowPressure).State == "unacknowledged" })
	s.waitFor("the center sees an active alarm", 10*time.Second, func() bool {
		ss := sites()
		n := 0
		if len(ss) == 1 {
			for _, c := range ss[0].ActiveAlarms {
				n += c
			}
		}
		return n > 0 && ss[0].Site == "yushan-garden" && ss[0].Online
	})
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	centerState := func(kind, key string) string {
		var st string
		_ = c.QueryRow(ctx, `SELECT state FROM center_records WHERE site = 'yushan-garden' AND kind = $1 AND key = $2`, kind, key).Scan(&st)
		return st
	}
	s.waitFor("the escalation of the unacknowledged alarm", 10*time.Second, func() bool {
		n := 0
		hooked.Range(func(k, v any) bool {
			if strings.HasPrefix(k.(string), "escalation:yushan-garden:"+lowPressure+":") && strings.HasSuffix(k.(string), "@north") &&
				strings.Contains(v.(string), `"text":"【升级报警】北区 玉山花园 · `) {
				n++
			}
			return true
		})
		return n == 1
	})
	if code, body := s.postJSON("/api/v1/alarms/"+lowPressure+"/ack", `{"note": "已派人"}`); code != 200 {
		t.Fatalf("ack: %d %s", code, body)
	}
	s.waitFor("the acknowledgement at the center", 5*time.Second, func() bool { return centerState("alarm", lowPressure) == "acknowledged" })
	ws := s.workOrdersFor("pump-low-pressure", "b3-pump-room")
	if len(ws) != 1 {
		t.Fatalf("work orders %+v", ws)
	}
	s.waitFor("the work order at the center", 5*time.Second, func() bool { return centerState("workorder", strconv.FormatInt(ws[0].ID, 10)) == ws[0].Status })
	// The site's equipment in good order, today's, sent at start (the
	// center sums the days: docs/multisite.md, Cross-site KPIs).
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	s.waitFor("today's equipment in good order at the center", 5*time.Second, func() bool {
		var assetSeconds float64
		_ = c.QueryRow(ctx, `SELECT (doc->>'asset_seconds')::float8 FROM center_records WHERE site = 'yushan-garden' AND kind = 'good_order' AND key = $1`, today).Scan(&assetSeconds)
		return assetSeconds > 0
	})
	// Every event once, in order, gap-free.
	var n, maxSeq int64
	if err := c.QueryRow(ctx, `SELECT count(*), max(seq) FROM center_events WHERE site = 'yushan-garden'`).Scan(&n, &maxSeq); err != nil || n != maxSeq || n < 3 {
		t.Fatalf("center events: %d rows, max seq %d (%v)", n, maxSeq, err)
	}
	s.stop(syscall.SIGTERM)
}
