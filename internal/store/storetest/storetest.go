// Package storetest is the behaviour suite every store backend passes: the
// SQLite backend (internal/store/sqlite, in its unit tests) and the
// PostgreSQL backend (internal/store/postgres, in its …Integration tests
// against a real server). Each function takes a factory that opens a fresh,
// empty store for one subtest (and closes it with t.Cleanup), and checks
// what the consumers rely on through their own narrow interfaces: the
// engine, the work-order service, the webhook outbox, the playbook runner,
// the alert router and the console's sessions.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/dashboard/audit"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// RulesStore is everything the rules database serves: the engine's alarms,
// the work orders and their webhook outbox, the incidents, and the alarm
// history the API reads.
type RulesStore interface {
	rules.AlarmStore
	workorder.Store
	workorder.Outbox
	playbook.Store
	rules.FaultHistory
	rules.DayRollups
	workorder.VersionedOrders
	AlarmHistory(ctx context.Context, id string) ([]rules.Transition, error)
}

// AlertsStore is everything the alerts database serves.
type AlertsStore interface {
	alerts.Store
	alerts.LinkLedger
	alerts.Log
}

// t0 is a fixed instant the tests count from (whole milliseconds: every
// backend keeps at least that).
var t0 = time.UnixMilli(1_800_000_000_000)

func at(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// Rules runs the rules-store suite; open gives a fresh store, queueing
// webhook deliveries when outbox is set.
func Rules(t *testing.T, open func(t *testing.T, outbox bool) RulesStore) {
	t.Run("AlarmsRoundTripAndUpsert", func(t *testing.T) { alarmsRoundTrip(t, open(t, false)) })
	t.Run("AlarmHistoryAndTransitionsBetween", func(t *testing.T) { transitionsBetween(t, open(t, false)) })
	t.Run("StatesAt", func(t *testing.T) { statesAt(t, open(t, false)) })
	t.Run("WorkOrderCreateReadUpdate", func(t *testing.T) { workOrderCRUD(t, open(t, false)) })
	t.Run("WorkOrderFilters", func(t *testing.T) { workOrderFilters(t, open(t, false)) })
	t.Run("WebhookOutbox", func(t *testing.T) { webhookOutbox(t, open(t, true)) })
	t.Run("NoOutboxWhenOff", func(t *testing.T) { noOutbox(t, open(t, false)) })
	t.Run("Incidents", func(t *testing.T) { incidents(t, open(t, false)) })
	t.Run("CancelledContext", func(t *testing.T) { cancelled(t, open(t, false)) })
	t.Run("NULInTextIsKept", func(t *testing.T) { nulInText(t, open(t, false)) })
	t.Run("KeptDaysDroppedByLateTransitions", func(t *testing.T) { keptDays(t, open(t, false)) })
	t.Run("WorkOrderVersions", func(t *testing.T) { workOrderVersions(t, open(t, false)) })
}

// A NUL byte in what a device or a person sent (a reading, a note) never
// makes a record fail to save: the text columns keep it or mark it with
// U+FFFD (PostgreSQL text cannot hold NUL), the documents keep it exactly.
func nulInText(t *testing.T, s RulesStore) {
	ctx := t.Context()
	okText := func(got, want string) bool {
		return got == want || got == strings.ReplaceAll(want, "\x00", "\uFFFD")
	}
	a := &rules.Alarm{ID: "r:a", Rule: "r", Asset: "a", State: rules.StateUnacked, Value: "on\x00"}
	if err := s.SaveAlarm(ctx, a, []rules.Transition{{AlarmID: a.ID, From: rules.StateNormal, To: rules.StateUnacked, At: at(1), By: "eng\x00", Note: "水\x00浸", Value: "on\x00"}}); err != nil {
		t.Fatalf("save: %v", err)
	}
	h, err := s.AlarmHistory(ctx, a.ID)
	if err != nil || len(h) != 1 || !okText(h[0].Note, "水\x00浸") || !okText(h[0].Value, "on\x00") || !okText(h[0].By, "eng\x00") {
		t.Fatalf("history %+v %v", h, err)
	}
	if as, _ := s.LoadAlarms(ctx); len(as) != 1 || as[0].Value != "on\x00" {
		t.Fatalf("the alarm document: %+v", as)
	}
	w := newOrder("a", "x", at(0))
	w.Description = "漏水\x00"
	if err := s.CreateWorkOrder(ctx, w, workorder.HistoryEntry{At: at(0), By: "x", To: workorder.Opened, Note: "n\x00"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, hist, err := s.WorkOrder(ctx, w.ID)
	if err != nil || got.Description != "漏水\x00" || len(hist) != 1 || !okText(hist[0].Note, "n\x00") {
		t.Fatalf("work order %+v %+v %v", got, hist, err)
	}
}

func alarmsRoundTrip(t *testing.T, s RulesStore) {
	ctx := t.Context()
	if as, err := s.LoadAlarms(ctx); err != nil || len(as) != 0 {
		t.Fatalf("a new store has alarms: %v %v", as, err)
	}
	a := &rules.Alarm{ID: "pump-low:水泵房-1", Rule: "pump-low", Asset: "水泵房-1", State: rules.StateUnacked, Priority: rules.High}
	if err := s.SaveAlarm(ctx, a, []rules.Transition{{AlarmID: a.ID, From: rules.StateNormal, To: rules.StateUnacked, At: at(1), By: "system", Value: "0.12"}}); err != nil {
		t.Fatal(err)
	}
	a.State = rules.StateAcked
	if err := s.SaveAlarm(ctx, a, []rules.Transition{{AlarmID: a.ID, From: rules.StateUnacked, To: rules.StateAcked, At: at(2), By: "王丽", Note: "已派人 \"查看\"\n第二行"}}); err != nil {
		t.Fatal(err)
	}
	b := &rules.Alarm{ID: "a-first:x", Rule: "a-first", Asset: "x", State: rules.StateNormal}
	if err := s.SaveAlarm(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	as, err := s.LoadAlarms(ctx)
	if err != nil || len(as) != 2 {
		t.Fatalf("load: %d %v", len(as), err)
	}
	if as[0].ID != "a-first:x" || as[1].ID != a.ID || as[1].State != rules.StateAcked || as[1].Priority != rules.High || as[1].Asset != "水泵房-1" {
		t.Fatalf("loaded (by id, the last save of each): %+v %+v", as[0], as[1])
	}
	h, err := s.AlarmHistory(ctx, a.ID)
	if err != nil || len(h) != 2 {
		t.Fatalf("history: %+v %v", h, err)
	}
	if h[1].By != "王丽" || h[1].Note != "已派人 \"查看\"\n第二行" || h[1].From != rules.StateUnacked || h[1].To != rules.StateAcked || !h[1].At.Equal(at(2)) || h[0].Value != "0.12" {
		t.Fatalf("history entry: %+v", h[1])
	}
	if h, err := s.AlarmHistory(ctx, "nope"); err != nil || len(h) != 0 {
		t.Fatalf("history of an unknown alarm: %v %v", h, err)
	}
}

func transitionsBetween(t *testing.T, s RulesStore) {
	ctx := t.Context()
	// Saved out of time order across alarms; two transitions at one instant
	// keep the order they were saved in.
	save := func(id string, trs ...rules.Transition) {
		t.Helper()
		if err := s.SaveAlarm(ctx, &rules.Alarm{ID: id, Rule: "r", Asset: id, State: trs[len(trs)-1].To}, trs); err != nil {
			t.Fatal(err)
		}
	}
	save("b", rules.Transition{AlarmID: "b", From: rules.StateNormal, To: rules.StateUnacked, At: at(30)})
	save("a", rules.Transition{AlarmID: "a", From: rules.StateNormal, To: rules.StateUnacked, At: at(10)},
		rules.Transition{AlarmID: "a", From: rules.StateUnacked, To: rules.StateRTNUnacked, At: at(20)},
		rules.Transition{AlarmID: "a", From: rules.StateRTNUnacked, To: rules.StateNormal, At: at(20)})
	got, err := s.TransitionsBetween(ctx, at(10), at(30))
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, tr := range got {
		seq = append(seq, fmt.Sprintf("%s>%s@%d", tr.AlarmID, tr.To, tr.At.Sub(t0).Milliseconds()))
	}
	want := fmt.Sprint([]string{"a>unacknowledged@10", "a>returned_unacknowledged@20", "a>normal@20"})
	if fmt.Sprint(seq) != want {
		t.Fatalf("from <= at < to, in time order: %v, want %v", seq, want)
	}
	// Of some alarms only: by alarm, then time.
	save("c", rules.Transition{AlarmID: "c", From: rules.StateNormal, To: rules.StateUnacked, At: at(5)})
	save("B", rules.Transition{AlarmID: "B", From: rules.StateNormal, To: rules.StateUnacked, At: at(15)})
	got, err = s.TransitionsOf(ctx, []string{"c", "b", "a", "B"}, at(0), at(30))
	if err != nil {
		t.Fatal(err)
	}
	seq = nil
	for _, tr := range got {
		seq = append(seq, fmt.Sprintf("%s>%s@%d", tr.AlarmID, tr.To, tr.At.Sub(t0).Milliseconds()))
	}
	want = fmt.Sprint([]string{"B>unacknowledged@15", "a>unacknowledged@10", "a>returned_unacknowledged@20", "a>normal@20", "c>unacknowledged@5"})
	if fmt.Sprint(seq) != want {
		t.Fatalf("transitions of c, b, a, B in [0, 30): %v, want %v", seq, want)
	}
	if got, err := s.TransitionsOf(ctx, nil, at(0), at(30)); err != nil || len(got) != 0 {
		t.Fatalf("of no alarms: %v %v", got, err)
	}
}

func statesAt(t *testing.T, s RulesStore) {
	ctx := t.Context()
	save := func(id string, ms int64, from, to rules.AlarmState) {
		t.Helper()
		a := &rules.Alarm{ID: id, Rule: "r", Asset: id, State: to}
		if err := s.SaveAlarm(ctx, a, []rules.Transition{{AlarmID: id, From: from, To: to, At: at(ms)}}); err != nil {
			t.Fatal(err)
		}
	}
	save("a", 10, rules.StateNormal, rules.StateUnacked)
	save("a", 20, rules.StateUnacked, rules.StateAcked)
	save("a", 30, rules.StateAcked, rules.StateNormal)
	save("b", 40, rules.StateNormal, rules.StateUnacked)
	got, err := s.StatesAt(ctx, at(25))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["a"] != rules.StateAcked {
		t.Fatalf("states at 25: %v", got)
	}
	got, _ = s.StatesAt(ctx, at(41))
	if len(got) != 2 || got["a"] != rules.StateNormal || got["b"] != rules.StateUnacked {
		t.Fatalf("states at 41: %v", got)
	}
	if got, _ = s.StatesAt(ctx, at(10)); len(got) != 0 { // strictly before
		t.Fatalf("states at 10: %v", got)
	}
}

// keptDays: a day's figures are kept once computed, read back by kind,
// dropped when a transition dated in the day is written later, and not
// kept when one was written while the day was read.
func keptDays(t *testing.T, s RulesStore) {
	ctx := t.Context()
	day, next := t0, t0.Add(24*time.Hour)
	write := func(ms int64) {
		t.Helper()
		if err := s.SaveAlarm(ctx, &rules.Alarm{ID: "a", Rule: "r", Asset: "x", State: rules.StateUnacked},
			[]rules.Transition{{AlarmID: "a", From: rules.StateNormal, To: rules.StateUnacked, At: at(ms)}}); err != nil {
			t.Fatal(err)
		}
	}
	keep := func(kind, doc string) {
		t.Helper()
		mark, err := s.RollupMark(ctx, day, next)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveRollup(ctx, kind, day, next, mark, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(kind string) string {
		t.Helper()
		got, err := s.Rollups(ctx, kind, day, next.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		r, ok := got[day.UnixMilli()]
		if len(got) > 1 || ok && !r.End.Equal(next) {
			t.Fatalf("kept days of %s: %v", kind, got)
		}
		return string(r.Doc)
	}
	write(3_600_000) // 01:00 on the day
	keep("k1", "first")
	keep("k2", "other")
	if got := kept("k1"); got != "first" {
		t.Fatalf("kept k1 = %q, want first", got)
	}
	write(25 * 3_600_000) // the next day: the kept day stands
	if got := kept("k1"); got != "first" {
		t.Fatalf("after a transition the next day: %q", got)
	}
	write(2 * 3_600_000) // late, in the kept day: dropped, of every kind
	if got, other := kept("k1"), kept("k2"); got != "" || other != "" {
		t.Fatalf("after a late transition in the day: k1 %q, k2 %q, want both dropped", got, other)
	}
	mark, err := s.RollupMark(ctx, day, next)
	if err != nil {
		t.Fatal(err)
	}
	write(4 * 3_600_000) // written while the day is read
	if err := s.SaveRollup(ctx, "k1", day, next, mark, []byte("stale")); err != nil {
		t.Fatal(err)
	}
	if got := kept("k1"); got != "" {
		t.Fatalf("a day read while a transition landed in it was kept: %q", got)
	}
	keep("k1", "second")
	if got := kept("k1"); got != "second" {
		t.Fatalf("kept k1 = %q, want second", got)
	}
}

// workOrderVersions: the ids and versions of the orders created in a
// period, and the orders by id.
func workOrderVersions(t *testing.T, s RulesStore) {
	ctx := t.Context()
	var ws []*workorder.WorkOrder
	for i := range 3 {
		w := newOrder("pump-1", "plumbing", at(int64(i)*1000))
		if err := s.CreateWorkOrder(ctx, w, workorder.HistoryEntry{At: w.Created, By: "chen.jing", To: workorder.Opened}); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	w := *ws[1]
	w.Version, w.Status = 2, workorder.Accepted
	if err := s.UpdateWorkOrder(ctx, &w, workorder.HistoryEntry{At: at(1500), By: "wang.li", From: workorder.Opened, To: workorder.Accepted}); err != nil {
		t.Fatal(err)
	}
	vs, err := s.WorkOrderVersions(ctx, at(1000), at(3000))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int64]int{ws[1].ID: 2, ws[2].ID: 1}; fmt.Sprint(vs) != fmt.Sprint(want) {
		t.Fatalf("versions of the orders created in [1000, 3000): %v, want %v", vs, want)
	}
	got, err := s.WorkOrdersByID(ctx, []int64{ws[2].ID, ws[1].ID, 999999})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("orders by id: %d, want 2", len(got))
	}
	for _, g := range got {
		if g.ID == ws[1].ID && (g.Version != 2 || g.Status != workorder.Accepted) {
			t.Fatalf("order %d: version %d status %s", g.ID, g.Version, g.Status)
		}
	}
}

func newOrder(asset, category string, created time.Time) *workorder.WorkOrder {
	return &workorder.WorkOrder{Category: category, Asset: asset, Priority: rules.High, Description: "水泵房 1# 泵 压力低",
		Status: workorder.Opened, Source: "rule", Rule: "pump-low", Created: created, Version: 1, Updated: created}
}

func workOrderCRUD(t *testing.T, s RulesStore) {
	ctx := t.Context()
	w := newOrder("pump-1", "plumbing", at(0))
	w.Reporter = "张先生 138-0000-0000"
	if err := s.CreateWorkOrder(ctx, w, workorder.HistoryEntry{At: at(0), By: "system", To: workorder.Opened, Note: "规则触发"}); err != nil {
		t.Fatal(err)
	}
	if w.ID <= 0 {
		t.Fatalf("no id set: %d", w.ID)
	}
	w2 := newOrder("pump-2", "plumbing", at(1))
	if err := s.CreateWorkOrder(ctx, w2, workorder.HistoryEntry{At: at(1), By: "system", To: workorder.Opened}); err != nil {
		t.Fatal(err)
	}
	if w2.ID <= w.ID {
		t.Fatalf("ids must grow: %d then %d", w.ID, w2.ID)
	}
	got, hist, err := s.WorkOrder(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != w.ID || got.Reporter != w.Reporter || got.Description != w.Description || !got.Created.Equal(w.Created) || got.Version != 1 {
		t.Fatalf("read back: %+v", got)
	}
	if len(hist) != 1 || hist[0].WorkOrder != w.ID || hist[0].To != workorder.Opened || hist[0].Note != "规则触发" || !hist[0].At.Equal(at(0)) {
		t.Fatalf("history: %+v", hist)
	}

	// An update at the next version is saved with its history entry.
	w.Status, w.Assignee, w.Version = workorder.Dispatched, "zhang.wei", 2
	if err := s.UpdateWorkOrder(ctx, w, workorder.HistoryEntry{At: at(5), By: "王丽", From: workorder.Opened, To: workorder.Dispatched, Note: "派给张伟"}); err != nil {
		t.Fatal(err)
	}
	// A stale writer (read version 1, writes 2 again) is refused and
	// changes nothing.
	stale := *w
	stale.Status, stale.Assignee = workorder.Cancelled, "someone"
	err = s.UpdateWorkOrder(ctx, &stale, workorder.HistoryEntry{At: at(6), By: "x", From: workorder.Opened, To: workorder.Cancelled})
	if !errors.Is(err, workorder.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	got, hist, _ = s.WorkOrder(ctx, w.ID)
	if got.Status != workorder.Dispatched || got.Assignee != "zhang.wei" || got.Version != 2 || len(hist) != 2 || hist[1].By != "王丽" || hist[1].From != workorder.Opened {
		t.Fatalf("after a refused stale update: %+v %+v", got, hist)
	}
	// Unknown orders: ErrNotFound for a read, ErrConflict for an update.
	if _, _, err := s.WorkOrder(ctx, 99999); !errors.Is(err, rules.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
	ghost := newOrder("x", "x", at(0))
	ghost.ID, ghost.Version = 99999, 2
	if err := s.UpdateWorkOrder(ctx, ghost, workorder.HistoryEntry{At: at(0)}); !errors.Is(err, workorder.ErrConflict) {
		t.Fatalf("update of an unknown order: %v", err)
	}
	// The newest a rule opened for an asset; nil when none.
	w3 := newOrder("pump-1", "plumbing", at(9))
	if err := s.CreateWorkOrder(ctx, w3, workorder.HistoryEntry{At: at(9), To: workorder.Opened}); err != nil {
		t.Fatal(err)
	}
	if l, err := s.LatestWorkOrderFor(ctx, "pump-low", "pump-1"); err != nil || l == nil || l.ID != w3.ID {
		t.Fatalf("latest: %+v %v", l, err)
	}
	if l, err := s.LatestWorkOrderFor(ctx, "pump-low", "nothing"); err != nil || l != nil {
		t.Fatalf("latest of none: %+v %v", l, err)
	}
}

func ids(ws []*workorder.WorkOrder) []int64 {
	out := []int64{}
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

func workOrderFilters(t *testing.T, s RulesStore) {
	ctx := t.Context()
	var made []*workorder.WorkOrder
	for i, c := range []struct {
		asset, cat string
		st         workorder.Status
	}{{"a", "plumbing", workorder.Opened}, {"b", "electrical", workorder.Closed}, {"a", "electrical", workorder.Cancelled},
		{"b", "plumbing", workorder.Resolved}, {"a", "plumbing", workorder.InProgress}} {
		w := newOrder(c.asset, c.cat, at(int64(i)*1000))
		w.Status = c.st
		if err := s.CreateWorkOrder(ctx, w, workorder.HistoryEntry{At: w.Created, To: c.st}); err != nil {
			t.Fatal(err)
		}
		made = append(made, w)
	}
	id := func(i int) int64 { return made[i].ID }
	for _, c := range []struct {
		name string
		f    workorder.Filter
		want []int64
	}{
		{"all, newest first", workorder.Filter{}, []int64{id(4), id(3), id(2), id(1), id(0)}},
		{"open", workorder.Filter{Open: true}, []int64{id(4), id(3), id(0)}},
		{"status", workorder.Filter{Status: workorder.Closed}, []int64{id(1)}},
		{"asset and category", workorder.Filter{Asset: "a", Category: "plumbing"}, []int64{id(4), id(0)}},
		{"created in [1s, 3s)", workorder.Filter{CreatedAfter: at(1000), CreatedBefore: at(3000)}, []int64{id(2), id(1)}},
		{"limit", workorder.Filter{Limit: 2}, []int64{id(4), id(3)}},
		{"nothing", workorder.Filter{Asset: "zzz"}, []int64{}},
	} {
		got, err := s.WorkOrders(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if fmt.Sprint(ids(got)) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.name, ids(got), c.want)
		}
	}
}

func webhookOutbox(t *testing.T, s RulesStore) {
	ctx := t.Context()
	w := newOrder("pump-1", "plumbing", at(0))
	if err := s.CreateWorkOrder(ctx, w, workorder.HistoryEntry{At: at(0), By: "system", To: workorder.Opened}); err != nil {
		t.Fatal(err)
	}
	w.Status, w.Version = workorder.Dispatched, 2
	if err := s.UpdateWorkOrder(ctx, w, workorder.HistoryEntry{At: at(1), By: "王丽", From: workorder.Opened, To: workorder.Dispatched}); err != nil {
		t.Fatal(err)
	}
	items, err := s.PendingOutbox(ctx, 10)
	if err != nil || len(items) != 2 {
		t.Fatalf("pending: %+v %v", items, err)
	}
	if items[0].Key != fmt.Sprintf("wo-%d-v1", w.ID) || items[1].Key != fmt.Sprintf("wo-%d-v2", w.ID) || items[0].Attempts != 0 {
		t.Fatalf("keys in order: %+v", items)
	}
	var p workorder.WebhookPayload
	if err := json.Unmarshal(items[1].Payload, &p); err != nil || p.WorkOrder.ID != w.ID || p.WorkOrder.Status != workorder.Dispatched || p.Change.By != "王丽" {
		t.Fatalf("payload %s: %v", items[1].Payload, err)
	}
	// A failed attempt keeps it first in line, counted; delivered and
	// refused leave the queue.
	if err := s.OutboxAttempt(ctx, items[0].ID, workorder.OutboxPending, "503"); err != nil {
		t.Fatal(err)
	}
	if items, _ = s.PendingOutbox(ctx, 1); len(items) != 1 || items[0].Attempts != 1 || items[0].Key != fmt.Sprintf("wo-%d-v1", w.ID) {
		t.Fatalf("after a failed attempt: %+v", items)
	}
	if err := s.OutboxAttempt(ctx, items[0].ID, workorder.OutboxDelivered, ""); err != nil {
		t.Fatal(err)
	}
	items, _ = s.PendingOutbox(ctx, 10)
	if len(items) != 1 || items[0].Key != fmt.Sprintf("wo-%d-v2", w.ID) {
		t.Fatalf("after delivery: %+v", items)
	}
	if err := s.OutboxAttempt(ctx, items[0].ID, workorder.OutboxRefused, "400 bad request"); err != nil {
		t.Fatal(err)
	}
	if items, _ = s.PendingOutbox(ctx, 10); len(items) != 0 {
		t.Fatalf("after a refusal: %+v", items)
	}
}

func noOutbox(t *testing.T, s RulesStore) {
	ctx := t.Context()
	w := newOrder("pump-1", "plumbing", at(0))
	if err := s.CreateWorkOrder(ctx, w, workorder.HistoryEntry{At: at(0), To: workorder.Opened}); err != nil {
		t.Fatal(err)
	}
	if items, err := s.PendingOutbox(ctx, 10); err != nil || len(items) != 0 {
		t.Fatalf("queued with no webhook: %+v %v", items, err)
	}
}

func incidents(t *testing.T, s RulesStore) {
	ctx := t.Context()
	if _, err := s.Incident(ctx, 12345); !errors.Is(err, rules.ErrNotFound) {
		t.Fatalf("unknown incident: %v", err)
	}
	mk := func(pb string, drill bool, started time.Time) *playbook.Incident {
		return &playbook.Incident{Playbook: pb, Name: "水浸 flooding", Drill: drill, Status: "open", Asset: "B2-sump", Building: "2号楼",
			Trigger: "leak-b2", Started: started, Version: 1,
			Steps:    []playbook.StepState{{ID: "cut-power", Title: "Cut power", TitleZH: "切断电源", Role: "engineer", Status: "pending"}},
			Record:   map[string]playbook.RecordValue{},
			Timeline: []playbook.Entry{{At: started, By: "system", Kind: "started", Text: "水浸报警"}}}
	}
	a := mk("flooding", false, at(0))
	if err := s.CreateIncident(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := mk("power-outage", true, at(1000))
	if err := s.CreateIncident(ctx, b); err != nil {
		t.Fatal(err)
	}
	if a.ID <= 0 || b.ID <= a.ID {
		t.Fatalf("ids %d %d", a.ID, b.ID)
	}
	got, err := s.Incident(ctx, a.ID)
	if err != nil || got.ID != a.ID || got.Steps[0].TitleZH != "切断电源" || got.Building != "2号楼" || !got.Started.Equal(at(0)) || len(got.Timeline) != 1 {
		t.Fatalf("read back: %+v %v", got, err)
	}
	// A person's record entry and closing are saved whole.
	a.Record["power_cut_at"] = playbook.RecordValue{At: at(60_000), By: "张伟", Note: "配电房已断电\x01", Value: "yes", Source: "person"}
	a.Status, a.Closed, a.Version = "closed", at(120_000), 2
	if err := s.SaveIncident(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Incident(ctx, a.ID)
	if got.Status != "closed" || !got.Closed.Equal(at(120_000)) || got.Record["power_cut_at"].Note != "配电房已断电\x01" || got.Record["power_cut_at"].By != "张伟" {
		t.Fatalf("after save: %+v", got)
	}
	all, err := s.Incidents(ctx, false, 0)
	if err != nil || len(all) != 2 || all[0].ID != b.ID || all[1].ID != a.ID {
		t.Fatalf("all, newest first: %v %v", all, err)
	}
	open, _ := s.Incidents(ctx, true, 0)
	if len(open) != 1 || open[0].ID != b.ID || !open[0].Drill {
		t.Fatalf("open: %+v", open)
	}
	if one, _ := s.Incidents(ctx, false, 1); len(one) != 1 || one[0].ID != b.ID {
		t.Fatalf("limit 1: %+v", one)
	}
}

func cancelled(t *testing.T, s RulesStore) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.SaveAlarm(ctx, &rules.Alarm{ID: "r:a", Rule: "r", Asset: "a", State: rules.StateUnacked},
		[]rules.Transition{{AlarmID: "r:a", From: rules.StateNormal, To: rules.StateUnacked, At: at(1)}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled save: %v", err)
	}
	if as, err := s.LoadAlarms(t.Context()); err != nil || len(as) != 0 {
		t.Fatalf("a cancelled save left %d alarms (%v)", len(as), err)
	}
}

// Alerts runs the alerts-store suite.
func Alerts(t *testing.T, open func(t *testing.T) AlertsStore) {
	t.Run("AlertsAndAttempts", func(t *testing.T) { alertsAndAttempts(t, open(t)) })
	t.Run("LinksWorkOnce", func(t *testing.T) { linksOnce(t, open(t)) })
}

func alertsAndAttempts(t *testing.T, s AlertsStore) {
	ctx := t.Context()
	a := &alerts.Alert{ID: "r:a@1", AlarmID: "r:a", Name: "水泵压力低", State: alerts.Firing, Level: 1, Since: at(0)}
	if err := s.SaveAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := &alerts.Alert{ID: "r:b@1", AlarmID: "r:b", State: alerts.Acked, AckedBy: "wang.li"}
	if err := s.SaveAlert(ctx, b); err != nil {
		t.Fatal(err)
	}
	if open, err := s.OpenAlerts(ctx); err != nil || len(open) != 2 {
		t.Fatalf("open: %+v %v", open, err)
	}
	a.State = alerts.Resolved
	if err := s.SaveAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenAlerts(ctx); len(open) != 1 || open[0].ID != "r:b@1" || open[0].AckedBy != "wang.li" {
		t.Fatalf("a resolved alert is open: %+v", open)
	}
	if got, err := s.Alert(ctx, "r:a@1"); err != nil || got.State != alerts.Resolved || got.Name != "水泵压力低" || !got.Since.Equal(at(0)) {
		t.Fatalf("alert %+v %v", got, err)
	}
	if _, err := s.Alert(ctx, "nope"); !errors.Is(err, alerts.ErrNotFound) {
		t.Fatalf("unknown alert: %v", err)
	}
	// Newest first, by when each was first saved (an update keeps its place).
	if log, err := s.Alerts(ctx, 10); err != nil || len(log) != 2 || log[0].ID != "r:b@1" || log[1].ID != "r:a@1" {
		t.Fatalf("log: %+v %v", log, err)
	}
	var made []int64
	for i := range 3 {
		at := &alerts.Attempt{Person: "wang", Channel: "sms", Try: i + 1}
		if err := s.AddAttempt(ctx, at); err != nil {
			t.Fatal(err)
		}
		made = append(made, at.ID)
	}
	if made[0] <= 0 || made[1] <= made[0] || made[2] <= made[1] {
		t.Fatalf("attempt ids: %v", made)
	}
	atts, err := s.Attempts(ctx, 2)
	if err != nil || len(atts) != 2 || atts[0].Try != 3 || atts[0].ID != made[2] || atts[1].Try != 2 || atts[0].Channel != "sms" {
		t.Fatalf("attempts %+v %v", atts, err)
	}
}

func linksOnce(t *testing.T, s AlertsStore) {
	ctx := t.Context()
	t1 := at(1_000_000)
	if _, err := s.UseLink(ctx, "sig-1", t1, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if at, err := s.UseLink(ctx, "sig-1", t1.Add(time.Minute), t1.Add(time.Hour)); !errors.Is(err, alerts.ErrLinkUsed) || !at.Equal(t1) {
		t.Fatalf("second use: %v %v", at, err)
	}
	if at, used, err := s.LinkUsed(ctx, "sig-1"); err != nil || !used || !at.Equal(t1) {
		t.Fatalf("used: %v %v %v", at, used, err)
	}
	if _, used, _ := s.LinkUsed(ctx, "sig-2"); used {
		t.Fatal("an unused link is used")
	}
	if _, err := s.UseLink(ctx, "sig-2", t1.Add(2*time.Hour), t1.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, used, _ := s.LinkUsed(ctx, "sig-1"); used {
		t.Fatal("an expired link entry was kept")
	}
}

// Audit runs the audit-store suite; open gives a fresh store keeping
// maxRows log rows.
func Audit(t *testing.T, open func(t *testing.T, maxRows int) audit.Store) {
	t.Run("LogIsCapped", func(t *testing.T) { auditCapped(t, open(t, 100)) })
	t.Run("Sessions", func(t *testing.T) { sessions(t, open(t, 100)) })
}

// The audit log keeps its newest maxRows rows: 30 requests with a 1 MiB
// username once grew it by 31 MB, and nothing ever pruned it.
func auditCapped(t *testing.T, a audit.Store) {
	for i := range 250 {
		if err := a.Record(t.Context(), audit.Entry{At: t0.Add(time.Duration(i) * time.Second), Username: fmt.Sprint("u", i), Role: "none",
			Method: "POST", Path: "/login", Remote: "10.0.0.1", Status: 401}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := a.Recent(t.Context(), 500)
	if err != nil || len(es) != 100 || es[0].Username != "u249" || es[99].Username != "u150" || !es[0].At.Equal(t0.Add(249*time.Second)) ||
		es[0].Remote != "10.0.0.1" || es[0].Status != 401 || es[0].Method != "POST" {
		t.Fatalf("recent: %d %v %+v", len(es), err, es)
	}
}

func sessions(t *testing.T, a audit.Store) {
	ctx := t.Context()
	for i := range 5 {
		if err := a.SaveSession(ctx, audit.Session{Key: fmt.Sprint("k", i), Username: "wang.li", Expires: t0.Add(time.Duration(i) * time.Hour)}, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SaveSession(ctx, audit.Session{Key: "z", Username: "admin", Expires: t0.Add(time.Hour)}, 3); err != nil {
		t.Fatal(err)
	}
	// The two oldest of wang.li's five went.
	for i, want := range []bool{false, false, true, true, true} {
		_, err := a.Session(ctx, fmt.Sprint("k", i))
		if got := err == nil; got != want || (err != nil && !errors.Is(err, audit.ErrNoSession)) {
			t.Fatalf("k%d: %v", i, err)
		}
	}
	s, err := a.Session(ctx, "k4")
	if err != nil || s.Username != "wang.li" || !s.Expires.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("%+v %v", s, err)
	}
	if n, err := a.PruneSessions(ctx, t0.Add(150*time.Minute)); err != nil || n != 2 { // k2 and z
		t.Fatalf("pruned %d %v", n, err)
	}
	if err := a.DeleteSession(ctx, "k4"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, "k4"); !errors.Is(err, audit.ErrNoSession) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := a.Session(ctx, "k3"); err != nil {
		t.Fatalf("k3: %v", err)
	}
}
