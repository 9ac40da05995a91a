package ha_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/replication/ha"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/testenv"
)

// hook records every request it gets: body and headers.
type hook struct {
	mu   sync.Mutex
	got  []delivery
	srv  *httptest.Server
	name string
}

type delivery struct {
	body    []byte
	key     string
	attempt string
}

func newHook(t *testing.T, name string) *hook {
	h := &hook{name: name}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, delivery{body: b, key: r.Header.Get("Idempotency-Key"), attempt: r.Header.Get("X-Attempt")})
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) deliveries() []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]delivery(nil), h.got...)
}

// countingStore counts the escalator's looks for overdue alarms, so the
// test can wait for more of them instead of sleeping.
type countingStore struct {
	*postgres.Center
	looks atomic.Int64
}

func (s *countingStore) OverdueAlarms(ctx context.Context, priorities []string, before time.Time, limit int) ([]postgres.Overdue, error) {
	defer s.looks.Add(1)
	return s.Center.OverdueAlarms(ctx, priorities, before, limit)
}

// A single center (no group: it takes the leader lock alone) escalates an
// unacknowledged critical alarm at a 北区 site to the 北区 route's
// receiver, once, with the exact payload — not to the default route's,
// which gets the 南区 site's alarm; acknowledged alarms and other
// priorities are not escalated; a second term (a restart) sends nothing
// again.
func TestEscalationByRegionIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	db := pg.NewDatabase(t)
	center, err := postgres.OpenCenter(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer center.Close()
	if err := center.EnableHA(ctx); err != nil {
		t.Fatal(err)
	}
	cst := time.FixedZone("CST", 8*3600)
	since := time.Date(2026, 12, 5, 14, 0, 0, 0, cst)
	now := since.Add(12*time.Minute + 30*time.Second)
	seq := map[string]int64{}
	alarm := func(site, id, state, prio string) {
		seq[site]++
		doc := fmt.Sprintf(`{"id":%q,"name":"Pump low pressure","name_zh":"水泵低压","priority":%q,"state":%q,"since":%q,"value":"0.12 MPa"}`,
			id, prio, state, since.Format(time.RFC3339Nano))
		if _, err := center.Apply(ctx, replication.Event{V: 1, Site: site, Seq: seq[site], Kind: replication.KindAlarm, Key: id, Op: "upsert",
			At: since, Doc: json.RawMessage(doc)}, now); err != nil {
			t.Fatal(err)
		}
	}
	alarm("north-1", "pump-low:b3", "unacknowledged", "critical")
	alarm("north-1", "pump-low:b4", "acknowledged", "critical")
	alarm("north-1", "door-open:b3", "unacknowledged", "high")
	alarm("south-1", "pump-low:b1", "unacknowledged", "critical")

	north, hq := newHook(t, "north"), newHook(t, "hq")
	cfg := replication.EscalateConfig{After: 10 * time.Minute, Every: 100 * time.Millisecond, Routes: []replication.EscalationRoute{
		{ID: "north", Regions: []string{"北区"}, Webhook: north.srv.URL + "/hook?token=x"},
		{Webhook: hq.srv.URL},
	}}
	cfg.SetDefaults()
	sites := []replication.SiteInfo{{ID: "north-1", Name: "玉山花园", Region: "北区"}, {ID: "south-1", Name: "滨江小区", Region: "南区"}}
	if err := cfg.Validate(sites); err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Center: center}
	term := func() (stop func()) {
		esc := ha.NewEscalator(cfg, ha.EscalatorDeps{Store: store, Sites: sites, By: "center", Now: func() time.Time { return now }, Loc: cst})
		s := postgres.NewLockSession(db, postgres.LockOptions{Name: "center", Every: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
		l := postgres.NewLeader(s, ha.LeaderLock(replication.DefaultGroup))
		tctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = s.Run(tctx) })
		wg.Go(func() { _ = l.Run(tctx, func(ctx context.Context, t postgres.Term) { esc.Run(ctx, s, t) }) })
		return func() { cancel(); wg.Wait() }
	}
	stop := term()
	waitFor(t, "both receivers reached", 15*time.Second, func() bool { return len(north.deliveries()) >= 1 && len(hq.deliveries()) >= 1 })

	key := "escalation:north-1:pump-low:b3:" + since.Format(time.RFC3339Nano)
	payload := `{"site":"north-1","site_name":"玉山花园","region":"北区","alarm":"pump-low:b3","name":"Pump low pressure","name_zh":"水泵低压",` +
		`"priority":"critical","since":"2026-12-05T06:00:00Z","value":"0.12 MPa","minutes":12,` +
		`"text":"【升级报警】北区 玉山花园 · 水泵低压（紧急）开始 12-05 14:00，已 12 分钟无人确认",` +
		`"text_en":"【ESCALATED】北区 玉山花园 · Pump low pressure（Critical）Since 12-05 14:00，unacknowledged for 12 min"}`
	want := `{"key":"` + key + `@north","site":"north-1","kind":"escalation","route":"north","created":"2026-12-05T06:12:30Z","payload":` + payload + `,"attempt":1}`
	d := north.deliveries()[0]
	if string(d.body) != want {
		t.Errorf("the 北区 receiver got\n%s\nwant\n%s", d.body, want)
	}
	if d.key != key+"@north" || d.attempt != "1" {
		t.Errorf("headers: Idempotency-Key %q, X-Attempt %q", d.key, d.attempt)
	}
	var n replication.Notification
	if err := json.Unmarshal(hq.deliveries()[0].body, &n); err != nil || n.Site != "south-1" || n.Route != replication.DefaultRoute ||
		n.Key != "escalation:south-1:pump-low:b1:"+since.Format(time.RFC3339Nano)+"@default" {
		t.Errorf("the default receiver got %+v (%v), want the 南区 site's alarm", n, err)
	}

	// Looked again several times, and again after a restart (a new
	// term): nothing more is sent.
	looks := store.looks.Load()
	waitFor(t, "more looks", 10*time.Second, func() bool { return store.looks.Load() >= looks+3 })
	stop()
	looks = store.looks.Load()
	stop = term()
	defer stop()
	waitFor(t, "looks after the restart", 15*time.Second, func() bool { return store.looks.Load() >= looks+3 })
	if len(north.deliveries()) != 1 || len(hq.deliveries()) != 1 {
		t.Errorf("deliveries: 北区 %d, default %d; want 1 each", len(north.deliveries()), len(hq.deliveries()))
	}
	counts, err := center.NotificationCounts(ctx)
	if err != nil || counts["sent"] != 2 || len(counts) != 1 {
		t.Errorf("notifications by state: %v %v; want 2 sent", counts, err)
	}
}

// A notification goes to its route's receiver; one recorded before routes
// existed (route "") to the default route's; an unknown route is an
// error the escalator gives up on at once.
func TestRoutesSend(t *testing.T) {
	a, def := newHook(t, "a"), newHook(t, "default")
	r := ha.NewRoutes([]replication.EscalationRoute{{ID: "a", Regions: []string{"北区"}, Webhook: a.srv.URL}, {ID: "hq", Webhook: def.srv.URL}}, nil)
	for _, c := range []struct{ route, want string }{{"a", "a"}, {"hq", "default"}, {"", "default"}} {
		if err := r.Send(t.Context(), replication.Notification{Key: "k-" + c.route, Route: c.route, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		h := map[string]*hook{"a": a, "default": def}[c.want]
		if d := h.deliveries(); len(d) == 0 || d[len(d)-1].key != "k-"+c.route {
			t.Errorf("route %q: not at %s's receiver", c.route, c.want)
		}
	}
	if err := r.Send(t.Context(), replication.Notification{Key: "k", Route: "gone"}); !errors.Is(err, ha.ErrNoRoute) {
		t.Errorf("unknown route: %v", err)
	}
	if len(a.deliveries())+len(def.deliveries()) != 3 {
		t.Errorf("deliveries: %d + %d", len(a.deliveries()), len(def.deliveries()))
	}
}
