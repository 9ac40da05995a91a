package ha_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/replication/ha"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/testenv"
)

// TestMain doubles as a center instance: the kill test starts this test
// binary as two separate processes (so that one can be SIGKILLed).
func TestMain(m *testing.M) {
	if id := os.Getenv("HA_TEST_INSTANCE"); id != "" {
		os.Exit(runInstance(id))
	}
	os.Exit(m.Run())
}

func runInstance(id string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", id)
	center, err := postgres.OpenCenter(ctx, os.Getenv("HA_TEST_DB"))
	if err == nil {
		err = center.EnableHA(ctx)
	}
	if err != nil {
		log.Error("open", "err", err)
		return 1
	}
	defer center.Close()
	cfg := replication.HAConfig{Every: 200 * time.Millisecond, Timeout: 500 * time.Millisecond}
	cfg.SetDefaults()
	esc := replication.EscalateConfig{After: 500 * time.Millisecond, Every: 200 * time.Millisecond, Webhook: os.Getenv("HA_TEST_WEBHOOK"), SendTimeout: 5 * time.Second}
	esc.SetDefaults()
	consumer := replication.NewBatchConsumer(center, log, time.Now, 2)
	in := ha.New(cfg, id, ha.Deps{Store: center, Database: os.Getenv("HA_TEST_DB"), Consumer: consumer, Log: log,
		Broker: func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(os.Getenv("HA_TEST_BROKER")).SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond)
		},
		Escalator: ha.NewEscalator(esc, ha.EscalatorDeps{Store: center, By: id, Log: log})})
	_ = in.Run(ctx)
	return 0
}

// instance is a center instance process.
type instance struct {
	id  string
	cmd *exec.Cmd
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startInstance(t *testing.T, id, db, broker, webhook string) *instance {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HA_TEST_INSTANCE="+id, "HA_TEST_DB="+db, "HA_TEST_BROKER="+broker, "HA_TEST_WEBHOOK="+webhook)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{id: id, cmd: cmd, out: out}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("--- %s's log:\n%s", id, out.String())
		}
	})
	return in
}

// holder says which instance holds an advisory lock (by its lock
// connection's application_name), "" when none.
func holder(ctx context.Context, admin *pgx.Conn, name string) string {
	key := uint64(postgres.LockKey(name))
	var app string
	err := admin.QueryRow(ctx, `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1`,
		int64(key>>32), int64(key&0xffffffff)).Scan(&app)
	if err != nil {
		return ""
	}
	return app
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > within {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// receiver counts the notifications delivered to it, by key.
type receiver struct {
	mu       sync.Mutex
	byKey    map[string][]int // attempts as received
	failNext int              // answer 503 to this many requests first
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var n replication.Notification
	if err := json.Unmarshal(body, &n); err != nil || n.Key == "" || req.Header.Get("Idempotency-Key") != n.Key {
		http.Error(w, "bad notification", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 {
		r.failNext--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	a, _ := strconv.Atoi(req.Header.Get("X-Attempt"))
	r.byKey[n.Key] = append(r.byKey[n.Key], a)
}

func (r *receiver) keys() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byKey)
}

// Two center instances (separate processes) on one PostgreSQL and one
// Mosquitto share the sites' events; the leader is SIGKILLed while three
// sites stream: leadership moves within 10 s, the survivor empties the
// dead instance's broker session, every event is applied (no gap at any
// site), every overdue critical alarm is escalated and delivered once
// (a second delivery only as a marked re-send of one the dead leader may
// have been sending); the killed instance, restarted, takes its share
// back.
func TestCenterInstanceKilledIntegration(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	ctx := t.Context()
	recv := &receiver{byKey: map[string][]int{}, failNext: 3} // the receiver is briefly down at first: retried
	hook := httptest.NewServer(recv)
	defer hook.Close()

	admin, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	ids := []string{"center-1", "center-2"}
	procs := map[string]*instance{}
	for _, id := range ids {
		procs[id] = startInstance(t, id, db, broker.URL, hook.URL)
	}
	waitFor(t, "both instances consuming and a leader", 20*time.Second, func() bool {
		return holder(ctx, admin, "center-slot:center-1") != "" && holder(ctx, admin, "center-slot:center-2") != "" && holder(ctx, admin, "center-leader:center") != ""
	})
	// Both subscribed: the broker routes to both only once both asked.
	time.Sleep(300 * time.Millisecond)

	// Three sites stream events: every 10th a critical alarm raised and
	// left unacknowledged (each is escalated once), the rest changes of
	// other records.
	sites := []string{"north-1", "north-2", "south-1"}
	const perSite = 600
	var pubWG sync.WaitGroup
	var critical sync.Map
	streamErr := make(chan error, len(sites))
	for _, site := range sites {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("site-" + site).SetCleanSession(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("site %s: %v", site, tok.Error())
		}
		defer c.Disconnect(100)
		pubWG.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond) // 200 events/s per site
			defer tick.Stop()
			for seq := int64(1); seq <= perSite; seq++ {
				<-tick.C
				now := time.Now()
				key, state, prio := fmt.Sprintf("temp-high:ahu-%d", seq%40), "normal", "high"
				if seq%10 == 0 {
					key, state, prio = fmt.Sprintf("fire-alarm:zone-%d", seq), "unacknowledged", "critical"
					critical.Store("escalation:"+site+":"+key+":"+now.Format(time.RFC3339Nano)+"@default", true)
				}
				doc, _ := json.Marshal(map[string]any{"id": key, "name": "Fire alarm", "name_zh": "火灾报警", "state": state, "priority": prio, "since": now, "value": seq})
				b, _ := json.Marshal(replication.Event{V: 1, Site: site, Seq: seq, Kind: replication.KindAlarm, Key: key, At: now, Op: "upsert", Doc: doc, Changed: []string{"state"}})
				if tok := c.Publish(replication.EventTopic(site, replication.KindAlarm), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					streamErr <- fmt.Errorf("site %s seq %d: %v", site, seq, tok.Error())
					return
				}
			}
		})
	}

	// A second into the stream, the leader dies.
	time.Sleep(time.Second)
	leader := holder(ctx, admin, "center-leader:center")
	var killed, survivor string
	for _, id := range ids {
		if leader == "propgate-lock:"+id {
			killed = id
		} else {
			survivor = id
		}
	}
	if killed == "" {
		t.Fatalf("leader lock held by %q", leader)
	}
	if err := procs[killed].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "the survivor to lead", 10*time.Second, func() bool { return holder(ctx, admin, "center-leader:center") == "propgate-lock:"+survivor })
	t.Logf("killed %s (the leader); %s leads after %v", killed, survivor, took.Round(time.Millisecond))
	pubWG.Wait()
	close(streamErr)
	for err := range streamErr {
		t.Fatal(err)
	}

	// Every event applied, no gap at any site.
	count := func() (n int) {
		_ = admin.QueryRow(ctx, `SELECT count(*) FROM center_events`).Scan(&n)
		return n
	}
	waitFor(t, "every event applied at the center", 40*time.Second, func() bool { return count() == perSite*len(sites) })
	rows, err := admin.Query(ctx, `SELECT site, count(*), min(seq), max(seq) FROM center_events GROUP BY site ORDER BY site`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var site string
		var n, lo, hi int64
		if err := rows.Scan(&site, &n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if n != perSite || lo != 1 || hi != perSite {
			t.Errorf("site %s: %d events, seq %d..%d", site, n, lo, hi)
		}
	}
	rows.Close()
	waitFor(t, killed+"'s session recorded as emptied", 10*time.Second, func() bool {
		var drained int
		_ = admin.QueryRow(ctx, `SELECT count(*) FROM center_instances WHERE client_id = $1 AND drained IS NOT NULL`, killed).Scan(&drained)
		return drained == 1
	})

	// Every escalation delivered; a key delivered twice only as a marked
	// re-send.
	want := 0
	critical.Range(func(any, any) bool { want++; return true })
	waitFor(t, fmt.Sprintf("%d escalations delivered", want), 30*time.Second, func() bool { return recv.keys() == want })
	recv.mu.Lock()
	resent := 0
	for k, attempts := range recv.byKey {
		if _, ok := critical.Load(k); !ok {
			t.Errorf("unexpected notification %s", k)
		}
		for _, a := range attempts[1:] {
			if a < 2 {
				t.Errorf("%s delivered again as a first attempt: %v", k, attempts)
			}
			resent++
		}
	}
	recv.mu.Unlock()
	if resent > 1 {
		t.Errorf("%d re-sends: only the one the dead leader may have been sending can be", resent)
	}
	var open int
	_ = admin.QueryRow(ctx, `SELECT count(*) FROM center_notifications WHERE state <> 'sent'`).Scan(&open)
	if open != 0 {
		t.Errorf("%d notifications not recorded as sent", open)
	}
	t.Logf("%d events, %d escalations, %d re-sent", count(), want, resent)

	// The killed instance comes back and consumes its share again.
	procs[killed] = startInstance(t, killed, db, broker.URL, hook.URL)
	waitFor(t, killed+" consuming again", 20*time.Second, func() bool { return holder(ctx, admin, "center-slot:"+killed) == "propgate-lock:"+killed })
}
