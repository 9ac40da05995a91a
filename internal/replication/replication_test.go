package replication_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/internal/testenv"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func connect(t *testing.T, broker, id string, consumer *replication.Consumer) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(id).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
	if consumer != nil {
		opts = consumer.ClientOptions(t.Context(), opts)
	}
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// applied counts what the center's consumer handled.
type applied struct {
	mu   sync.Mutex
	seqs []int64
	dups int
}

func (a *applied) note(e replication.Event, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ok {
		a.seqs = append(a.seqs, e.Seq)
	} else {
		a.dups++
	}
}

func (a *applied) count() (int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seqs), a.dups
}

// A site's changes reach the center's PostgreSQL through a real broker, in
// order, once each: while the broker is down the site keeps them in its
// outbox and sends them after; while the center is away the broker keeps
// them in its session; a redelivered event changes nothing; the site
// overview counts active alarms by priority and open incidents.
func TestSiteToCenterIntegration(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	t0 := time.Now().Truncate(time.Millisecond)

	// The site: its rules database's outbox, fed by bus events.
	rdb, err := sqlite.OpenRules(filepath.Join(t.TempDir(), "gateway.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	outbox, err := sqlite.NewReplicationOutbox(rdb.DB)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan event.Event, 16)
	rec := replication.NewRecorder("yushan-garden", outbox, events, quiet)
	rctx, stopRec := context.WithCancel(ctx)
	recDone := make(chan struct{})
	go func() { rec.Run(rctx); close(recDone) }()
	defer func() { stopRec(); <-recDone }()
	record := func(evs ...event.Event) {
		t.Helper()
		before, _ := outbox.Unsent(ctx, 1000)
		want := len(before)
		for _, ev := range evs {
			if _, ok, _ := replication.Envelope("x", ev); ok {
				want++
			}
			events <- ev
		}
		waitFor(t, "recorded", func() bool { u, _ := outbox.Unsent(ctx, 1000); return len(u) == want })
	}
	alarm := func(id string, st rules.AlarmState, p rules.Priority, at time.Time) event.Event {
		return event.Event{Type: event.EventAlarm, At: at, Alarm: &rules.Alarm{ID: id, Rule: "r", Asset: id, State: st, Priority: p},
			Transition: &rules.Transition{AlarmID: id, To: st, At: at}}
	}
	sc := connect(t, broker.URL, "site-yushan", nil)
	pub := replication.NewPublisher(outbox, replication.PahoSender{C: sc}, nil, time.Hour, quiet)

	// The center: PostgreSQL and a persistent MQTT session.
	center, err := postgres.OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer center.Close()
	var got applied
	consumer := replication.NewConsumer(center, quiet, time.Now)
	consumer.Applied = got.note
	cc := connect(t, broker.URL, "center-1", consumer)

	// 1. An alarm, acknowledged; a work order; an incident.
	record(alarm("pump-low:b3", rules.StateUnacked, rules.High, t0),
		alarm("pump-low:b3", rules.StateAcked, rules.High, t0.Add(time.Second)),
		alarm("leak:b2", rules.StateUnacked, rules.Critical, t0.Add(2*time.Second)),
		event.Event{Type: event.EventWorkOrder, At: t0, WorkOrder: &workorder.WorkOrder{ID: 41, Status: workorder.Opened, Priority: rules.High},
			Change: &workorder.HistoryEntry{WorkOrder: 41, At: t0.Add(3 * time.Second), To: workorder.Opened}},
		event.Event{Type: event.EventIncident, At: t0, Incident: &playbook.Incident{ID: 5, Playbook: "flooding", Status: "open", Started: t0}},
		event.Event{Type: event.EventNotify, At: t0}) // not replicated
	if n, err := pub.Flush(ctx); err != nil || n != 5 {
		t.Fatalf("flush: %d %v", n, err)
	}
	waitFor(t, "5 applied at the center", func() bool { n, _ := got.count(); return n == 5 })
	if u, _ := outbox.Unsent(ctx, 10); len(u) != 0 {
		t.Fatalf("still unsent after the broker's acknowledgements: %+v", u)
	}
	sites, err := center.Sites(ctx, time.Now(), time.Minute)
	if err != nil || len(sites) != 1 {
		t.Fatalf("sites %+v %v", sites, err)
	}
	s := sites[0]
	if s.Site != "yushan-garden" || !s.Online || s.LastSeq != 5 || s.OpenIncidents != 1 || fmt.Sprint(s.ActiveAlarms) != "map[critical:1 high:1]" {
		t.Fatalf("site overview: %+v", s)
	}

	// 2. The broker goes down: the site keeps its changes; back up, they go
	// out in order and the center converges.
	broker.Stop()
	record(alarm("leak:b2", rules.StateAcked, rules.Critical, t0.Add(4*time.Second)),
		alarm("pump-low:b3", rules.StateNormal, rules.High, t0.Add(5*time.Second)))
	fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if _, err := pub.Flush(fctx); err == nil {
		t.Fatal("flushed with the broker down")
	}
	cancel()
	if u, _ := outbox.Unsent(ctx, 10); len(u) != 2 || u[0].Seq != 6 {
		t.Fatalf("kept while the broker is down: %+v", u)
	}
	broker.Start()
	waitFor(t, "site and center reconnected", func() bool { return cc.IsConnectionOpen() })
	waitFor(t, "the outbox flushed", func() bool {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := pub.Flush(fctx)
		u, _ := outbox.Unsent(ctx, 10)
		return err == nil && len(u) == 0
	})
	waitFor(t, "7 applied", func() bool { n, _ := got.count(); return n == 7 })

	// 3. The center away (its session kept by the broker): changes wait
	// there and arrive when it is back.
	cc.Disconnect(100)
	record(alarm("leak:b2", rules.StateNormal, rules.Critical, t0.Add(6*time.Second)))
	if n, err := pub.Flush(ctx); err != nil || n != 1 {
		t.Fatalf("flush while the center is away: %d %v", n, err)
	}
	connect(t, broker.URL, "center-1", consumer) // the same session
	waitFor(t, "the queued event applied", func() bool { n, _ := got.count(); return n == 8 })
	got.mu.Lock()
	order := fmt.Sprint(got.seqs)
	got.mu.Unlock()
	if order != "[1 2 3 4 5 6 7 8]" {
		t.Fatalf("applied in order %s", order)
	}

	// 4. A redelivered event (QoS 1 duplicate, a bridge replay) changes
	// nothing; an old event for a record never overwrites a newer one.
	epoch, _ := outbox.Epoch() // the site's database: its events are of its epoch
	old := replication.Event{V: 1, Site: "yushan-garden", Epoch: epoch, Seq: 2, Kind: replication.KindAlarm, Key: "pump-low:b3", Op: "upsert",
		Doc: json.RawMessage(`{"id":"pump-low:b3","state":"acknowledged","priority":"high"}`)}
	b, _ := json.Marshal(old)
	if tok := sc.Publish(replication.EventTopic("yushan-garden", "alarm"), 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitFor(t, "the duplicate handled", func() bool { n, d := got.count(); _ = n; return d == 1 })
	if ok, err := center.Apply(ctx, replication.Event{V: 1, Site: "yushan-garden", Epoch: epoch, Seq: 7, Kind: "alarm", Key: "pump-low:b3", Doc: old.Doc}, time.Now()); err != nil || ok {
		t.Fatalf("seq 7 again: %v %v", ok, err)
	}
	sites, _ = center.Sites(ctx, time.Now(), time.Minute)
	if s := sites[0]; len(s.ActiveAlarms) != 0 || s.LastSeq != 8 || s.OpenIncidents != 1 {
		t.Fatalf("after convergence (both alarms back to normal): %+v", s)
	}
	// Offline: not heard from within the window.
	if sites, _ = center.Sites(ctx, time.Now().Add(2*time.Minute), time.Minute); sites[0].Online {
		t.Fatal("a site silent for two minutes is online")
	}
}

// A record is only replaced by a newer seq: an event for it arriving late
// (replayed after a gap) never overwrites what came after it.
func TestCenterKeepsTheNewestIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	center, err := postgres.OpenCenter(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer center.Close()
	ev := func(seq int64, state string) replication.Event {
		return replication.Event{V: 1, Site: "north-1", Seq: seq, Kind: "alarm", Key: "r:a", Op: "upsert",
			Doc: json.RawMessage(fmt.Sprintf(`{"state":%q,"priority":"critical"}`, state))}
	}
	for _, e := range []replication.Event{ev(10, "acknowledged"), ev(9, "unacknowledged")} {
		if ok, err := center.Apply(ctx, e, time.Now()); err != nil || !ok {
			t.Fatalf("apply %d: %v %v", e.Seq, ok, err)
		}
	}
	sites, err := center.Sites(ctx, time.Now(), time.Minute)
	if err != nil || len(sites) != 1 || sites[0].LastSeq != 10 || fmt.Sprint(sites[0].ActiveAlarms) != "map[critical:1]" {
		t.Fatalf("%+v %v", sites, err)
	}
	if r, err := center.Record(ctx, "north-1", "alarm", "r:a"); err != nil || r.State != "acknowledged" || r.Seq != 10 {
		t.Fatalf("record %+v %v: the late seq 9 overwrote seq 10", r, err)
	}
	if _, err := center.Record(ctx, "north-1", "alarm", "nope"); !errors.Is(err, rules.ErrNotFound) {
		t.Fatalf("unknown record: %v", err)
	}
}
