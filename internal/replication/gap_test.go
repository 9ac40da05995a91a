package replication_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/internal/testenv"
)

// lossy is a Sender that loses the events whose seq is listed, once each,
// while telling the publisher they were acknowledged: what a WAN cut does
// to messages a bridge took but never delivered.
type lossy struct {
	replication.PahoSender
	mu   sync.Mutex
	lose map[int64]bool
}

func (l *lossy) PublishQoS1(ctx context.Context, topic string, payload []byte) error {
	var e replication.Event
	_ = json.Unmarshal(payload, &e)
	l.mu.Lock()
	drop := l.lose[e.Seq]
	delete(l.lose, e.Seq)
	l.mu.Unlock()
	if drop {
		return nil
	}
	return l.PahoSender.PublishQoS1(ctx, topic, payload)
}

func (l *lossy) loseNext(seqs ...int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range seqs {
		l.lose[s] = true
	}
}

// records is the site's current records (what its snapshot sends).
type records struct {
	mu  sync.Mutex
	doc map[string]json.RawMessage // key → doc, all alarms
}

func (r *records) Snapshot(context.Context) ([]replication.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []replication.Event
	for k, d := range r.doc {
		out = append(out, replication.Event{V: 1, Site: "north-1", Kind: replication.KindAlarm, Key: k, Op: "upsert", Doc: d, At: time.Now()})
	}
	return out, nil
}

type refuseAll struct{}

func (refuseAll) ApplyCommand(context.Context, replication.Command) error {
	return fmt.Errorf("not in this test")
}

// The center notices what it missed and the site fills it in: events sent
// before the center's session existed (a site it has never heard from
// since seq 1: the retained status names the site's head), an event lost
// in the middle (a later seq arrives), one lost at the tail (the status's
// head is ahead), and one lost past the site's retention (a resync: the
// site's current records, the center's contiguous mark moved past what
// no longer exists). Each time the center's records equal the site's.
func TestGapReplayIntegration(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	const site = "north-1"

	rdb, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gateway.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	outbox, err := sqlite.NewReplicationOutbox(rdb.DB)
	if err != nil {
		t.Fatal(err)
	}
	current := &records{doc: map[string]json.RawMessage{}}
	kick := make(chan struct{}, 1)
	wake := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	cmds := replication.NewSiteCommands(site, outbox, outbox, refuseAll{}, current, wake, quiet, time.Now)
	sopts := paho.NewClientOptions().AddBroker(broker.URL).SetClientID("site-north-1").
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond)
	sc := paho.NewClient(cmds.ClientOptions(ctx, sopts))
	if tok := sc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sc.Disconnect(100)
	send := &lossy{PahoSender: replication.PahoSender{C: sc}, lose: map[int64]bool{}}
	pub := replication.NewPublisher(outbox, send, kick, 50*time.Millisecond, quiet)
	pub.Site, pub.Heartbeat = site, time.Hour // the status goes out when the head moves
	pctx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() { pub.Run(pctx); close(pubDone) }()
	defer func() { stopPub(); <-pubDone }()

	change := func(key, state string) {
		t.Helper()
		doc := json.RawMessage(fmt.Sprintf(`{"id":%q,"state":%q,"priority":"high"}`, key, state))
		current.mu.Lock()
		current.doc[key] = doc
		current.mu.Unlock()
		e := replication.Event{V: 1, Site: site, Kind: replication.KindAlarm, Key: key, Op: "upsert", Doc: doc, At: time.Now()}
		if err := outbox.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
		wake()
	}
	sent := func() bool { u, _ := outbox.Unsent(ctx, 10); return len(u) == 0 }

	// 1. Three changes published before the center's session exists: the
	// broker keeps them for nobody.
	change("a", "unacknowledged")
	change("b", "unacknowledged")
	change("a", "acknowledged")
	waitFor(t, "published", sent)

	center, err := postgres.OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer center.Close()
	consumer := replication.NewConsumer(center, quiet, time.Now)
	cc := connect(t, broker.URL, "center", consumer)
	commander := replication.NewCommander(center, replication.PahoSender{C: cc}, replication.CommanderConfig{GapWait: time.Millisecond}, quiet, time.Now)

	siteView := func() replication.Site {
		ss, err := center.Sites(ctx, time.Now(), time.Minute)
		if err != nil || len(ss) != 1 {
			t.Fatalf("sites %+v %v", ss, err)
		}
		return ss[0]
	}
	converged := func(what string) {
		t.Helper()
		waitFor(t, what+": a gap seen", func() bool {
			gs, _ := center.Gaps(ctx, time.Now(), 0)
			return len(gs) == 1
		})
		if err := commander.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, what+": the center complete", func() bool {
			s := siteView()
			head, _ := outbox.Head(ctx)
			return s.Contiguous == head && s.Head == head
		})
		current.mu.Lock()
		defer current.mu.Unlock()
		for k, want := range current.doc {
			r, err := center.Record(ctx, site, replication.KindAlarm, k)
			if err != nil || string(r.Doc) != string(want) {
				t.Fatalf("%s: center has %s = %s (%v), the site %s", what, k, r.Doc, err, want)
			}
		}
	}
	// The retained status (head 3) tells the center of a site it has
	// never heard from: it asks from seq 1.
	converged("events before the center's session")
	if s := siteView(); s.Resynced != nil || !s.Online || s.LastSeq != 4 {
		t.Fatalf("after the first replay (3 events and its result): %+v", s)
	}

	// 2. One lost in the middle: the next one shows the gap.
	send.loseNext(5)
	change("b", "acknowledged") // 5, lost
	change("c", "unacknowledged")
	converged("an event lost in the middle")

	// 3. One lost at the tail: only the status's head shows it.
	head, _ := outbox.Head(ctx)
	send.loseNext(head + 1)
	change("c", "acknowledged")
	converged("an event lost at the tail")

	// 4. One lost and pruned (past the retention) before the center asks:
	// the site answers with its current records.
	head, _ = outbox.Head(ctx)
	send.loseNext(head + 1)
	change("a", "normal")
	waitFor(t, "published", sent)
	if n, err := outbox.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n == 0 {
		t.Fatalf("prune: %d %v", n, err)
	}
	converged("an event lost past the retention")
	if s := siteView(); s.Resynced == nil {
		t.Fatalf("a resync is not shown: %+v", s)
	}
	// Every replay was answered.
	if gs, _ := center.Gaps(ctx, time.Now(), 0); len(gs) != 0 {
		t.Fatalf("gaps left: %+v", gs)
	}
}
