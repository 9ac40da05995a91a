package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/register"
)

// The duty room's upkeep stores (issue #13): the asset register and the
// contacts directory, the inspection rounds, the PM items.

// Register runs the register-store suite; open gives a fresh store.
func Register(t *testing.T, open func(t *testing.T) register.Store) {
	t.Run("EntriesSeedAndVersions", func(t *testing.T) { registerEntries(t, open(t)) })
	t.Run("ContactsSeedVersionsAndDeletion", func(t *testing.T) { registerContacts(t, open(t)) })
}

func registerEntries(t *testing.T, s register.Store) {
	ctx := t.Context()
	lift := register.Entry{Asset: "b3-lift-1", Maker: "上海三菱", ContractorPhone: "400-820-0870", Updated: at(1),
		Certificates: []register.Certificate{{Kind: "电梯年检", Expires: "2026-11-30"}}, Documents: []register.Document{}}
	pump := register.Entry{Asset: "b3-pump-room", Maker: "格兰富", Updated: at(1)}
	if n, err := s.PutRegisterEntries(ctx, []register.Entry{lift, pump}, true); err != nil || n != 2 {
		t.Fatalf("seed: %d %v", n, err)
	}
	// An admin edits the lift (version 1 → 2).
	lift.Version, lift.Maker, lift.UpdatedBy, lift.Updated = 1, "上海三菱电梯有限公司", "admin", at(2)
	if n, err := s.PutRegisterEntries(ctx, []register.Entry{lift}, false); err != nil || n != 1 {
		t.Fatalf("edit: %d %v", n, err)
	}
	// The seed again (a restart) leaves the edit alone.
	seed := register.Entry{Asset: "b3-lift-1", Maker: "seed"}
	if n, err := s.PutRegisterEntries(ctx, []register.Entry{seed}, true); err != nil || n != 0 {
		t.Fatalf("seed again: %d %v", n, err)
	}
	// A stale copy in a batch: nothing of the batch is saved.
	pump.Version, pump.Maker = 1, "Grundfos"
	stale := lift
	stale.Version = 1
	if _, err := s.PutRegisterEntries(ctx, []register.Entry{pump, stale}, false); !errors.Is(err, register.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	es, err := s.RegisterEntries(ctx)
	if err != nil || len(es) != 2 {
		t.Fatalf("entries: %+v %v", es, err)
	}
	got := map[string]register.Entry{es[0].Asset: es[0], es[1].Asset: es[1]}
	if l := got["b3-lift-1"]; l.Version != 2 || l.Maker != "上海三菱电梯有限公司" || l.UpdatedBy != "admin" || !l.Updated.Equal(at(2)) ||
		len(l.Certificates) != 1 || l.Certificates[0].Expires != "2026-11-30" {
		t.Fatalf("lift: %+v", l)
	}
	if p := got["b3-pump-room"]; p.Version != 1 || p.Maker != "格兰富" {
		t.Fatalf("pump room after the refused batch: %+v", p)
	}
}

func registerContacts(t *testing.T, s register.Store) {
	ctx := t.Context()
	if cs, err := s.RegisterContacts(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("empty directory: %+v %v", cs, err)
	}
	seed := []register.Contact{
		{ID: "power-company", Name: "供电公司（国网客服）", Category: "utility", Phone: "95598"},
		{ID: "lift-kone", Name: "通力电梯", Category: "contractor", Phone: "400-880-5663", Assets: []string{"b5-lift-1"}},
	}
	if n, err := s.PutRegisterContacts(ctx, seed, true); err != nil || n != 2 {
		t.Fatalf("seed: %d %v", n, err)
	}
	// The admin changes the phone and deletes the lift contractor.
	p := seed[0]
	p.Version, p.Phone, p.Notes, p.UpdatedBy, p.Updated = 1, "95598-1", "户号 3100-1188-02", "admin", at(5)
	k := seed[1]
	k.Version, k.Deleted, k.UpdatedBy = 1, true, "admin"
	if n, err := s.PutRegisterContacts(ctx, []register.Contact{p, k}, false); err != nil || n != 2 {
		t.Fatalf("edit: %d %v", n, err)
	}
	if _, err := s.PutRegisterContacts(ctx, []register.Contact{p}, false); !errors.Is(err, register.ErrConflict) {
		t.Fatalf("stale contact: %v", err)
	}
	// A restart's seed brings back neither the old phone nor the deleted one.
	if n, err := s.PutRegisterContacts(ctx, seed, true); err != nil || n != 0 {
		t.Fatalf("seed again: %d %v", n, err)
	}
	cs, err := s.RegisterContacts(ctx)
	if err != nil || len(cs) != 2 {
		t.Fatalf("contacts: %+v %v", cs, err)
	}
	byID := map[string]register.Contact{cs[0].ID: cs[0], cs[1].ID: cs[1]}
	if c := byID["power-company"]; c.Version != 2 || c.Phone != "95598-1" || c.Notes != "户号 3100-1188-02" || c.UpdatedBy != "admin" || !c.Updated.Equal(at(5)) {
		t.Fatalf("edited contact: %+v", c)
	}
	if c := byID["lift-kone"]; !c.Deleted || c.Version != 2 || len(c.Assets) != 1 {
		t.Fatalf("deleted contact: %+v", c)
	}
}

// Inspections runs the inspection-store suite; open gives a fresh store.
func Inspections(t *testing.T, open func(t *testing.T) inspection.Store) {
	t.Run("RoundsVersionsAndFilters", func(t *testing.T) { inspectionRounds(t, open(t)) })
	t.Run("CursorsAndPhotos", func(t *testing.T) { inspectionCursorsPhotos(t, open(t)) })
}

func inspectionRounds(t *testing.T, s inspection.Store) {
	ctx := t.Context()
	mk := func(route string, scheduled time.Time) *inspection.Round {
		return &inspection.Round{Route: route, Name: route, Scheduled: scheduled, Due: scheduled.Add(2 * time.Hour), Status: inspection.StatusOpen,
			Results: []inspection.CheckpointResult{}, Version: 1}
	}
	a, b, c := mk("night-lighting", at(0)), mk("pump-room-weekly", at(60_000)), mk("night-lighting", at(120_000))
	for _, r := range []*inspection.Round{a, b, c} {
		if err := s.CreateRound(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if a.ID <= 0 || b.ID <= a.ID || c.ID <= b.ID {
		t.Fatalf("ids %d %d %d", a.ID, b.ID, c.ID)
	}
	// An inspector enters the first round (version 1 → 2).
	reading := 0.42
	a.Version, a.Status, a.Completed, a.Abnormal = 2, inspection.StatusDone, at(3_000), 1
	a.Results = []inspection.CheckpointResult{{Checkpoint: "b3-lobby", CheckIn: "qr", At: at(2_000), By: "wang.li",
		Items: []inspection.ItemResult{{Item: "lobby-lights", Reading: &reading}}}}
	if err := s.SaveRound(ctx, a); err != nil {
		t.Fatal(err)
	}
	// Someone else saving the same version: refused.
	if err := s.SaveRound(ctx, a); !errors.Is(err, inspection.ErrConflict) {
		t.Fatalf("stale round: %v", err)
	}
	got, err := s.Round(ctx, a.ID)
	if err != nil || got.Version != 2 || got.Status != inspection.StatusDone || !got.Completed.Equal(at(3_000)) || len(got.Results) != 1 ||
		got.Results[0].By != "wang.li" || got.Results[0].Items[0].Reading == nil || *got.Results[0].Items[0].Reading != 0.42 || !got.Scheduled.Equal(at(0)) {
		t.Fatalf("round read back: %+v %v", got, err)
	}
	if _, err := s.Round(ctx, 99999); !errors.Is(err, inspection.ErrNotFound) {
		t.Fatalf("no such round: %v", err)
	}
	list := func(f inspection.RoundFilter) string {
		t.Helper()
		rs, err := s.Rounds(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		name string
		f    inspection.RoundFilter
		want []int64
	}{
		{"all, newest first", inspection.RoundFilter{}, []int64{c.ID, b.ID, a.ID}},
		{"route", inspection.RoundFilter{Route: "night-lighting"}, []int64{c.ID, a.ID}},
		{"status", inspection.RoundFilter{Status: inspection.StatusOpen}, []int64{c.ID, b.ID}},
		{"scheduled since", inspection.RoundFilter{Since: at(60_000)}, []int64{c.ID, b.ID}},
		{"limit", inspection.RoundFilter{Limit: 1}, []int64{c.ID}},
		{"none", inspection.RoundFilter{Route: "fire-monthly"}, nil},
	} {
		if got := list(tc.f); got != fmt.Sprint(tc.want) {
			t.Errorf("%s: %s, want %v", tc.name, got, tc.want)
		}
	}
	if rs, err := s.Rounds(ctx, inspection.RoundFilter{Route: "fire-monthly"}); err != nil || rs == nil {
		t.Fatalf("no rounds is an empty list, not nil: %v %v", rs, err)
	}
}

func inspectionCursorsPhotos(t *testing.T, s inspection.Store) {
	ctx := t.Context()
	if _, ok, err := s.Cursor(ctx, "night-lighting"); err != nil || ok {
		t.Fatalf("no cursor yet: %v %v", ok, err)
	}
	for _, ms := range []int64{1_000, 86_400_000} {
		if err := s.SetCursor(ctx, "night-lighting", at(ms)); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok, err := s.Cursor(ctx, "night-lighting"); err != nil || !ok || !c.Equal(at(86_400_000)) {
		t.Fatalf("cursor: %v %v %v", c, ok, err)
	}
	r := &inspection.Round{Route: "pump-room-weekly", Scheduled: at(0), Status: inspection.StatusOpen, Results: []inspection.CheckpointResult{}, Version: 1}
	if err := s.CreateRound(ctx, r); err != nil {
		t.Fatal(err)
	}
	jpeg := []byte{0xff, 0xd8, 0xff, 0x00, 0x01, 0xff, 0xd9}
	if err := s.SavePhoto(ctx, r.ID, "b3-pump-room", "photo", "image/png", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.SavePhoto(ctx, r.ID, "b3-pump-room", "photo", "image/jpeg", jpeg); err != nil { // retaken: replaces
		t.Fatal(err)
	}
	mime, data, err := s.Photo(ctx, r.ID, "b3-pump-room", "photo")
	if err != nil || mime != "image/jpeg" || string(data) != string(jpeg) {
		t.Fatalf("photo: %q %v %v", mime, data, err)
	}
	if _, _, err := s.Photo(ctx, r.ID, "b3-pump-room", "other"); !errors.Is(err, inspection.ErrNotFound) {
		t.Fatalf("no such photo: %v", err)
	}
}

// Maintenance runs the PM-store suite; open gives a fresh store.
func Maintenance(t *testing.T, open func(t *testing.T) maintenance.Store) {
	t.Run("ItemsOncePerDue", func(t *testing.T) { pmItems(t, open(t)) })
}

func pmItems(t *testing.T, s maintenance.Store) {
	ctx := t.Context()
	if it, err := s.LatestPMItem(ctx, "lift-15-day", "b3-lift-1"); err != nil || it != nil {
		t.Fatalf("no item yet: %+v %v", it, err)
	}
	cal := &maintenance.Item{Plan: "lift-15-day", Asset: "b3-lift-1", Due: at(86_400_000), Opened: at(1_000)}
	ok, err := s.CreatePMItem(ctx, cal)
	if err != nil || !ok || cal.ID <= 0 {
		t.Fatalf("create: %v %v %d", ok, err, cal.ID)
	}
	// The same due again (a restart, two loops): not stored twice.
	again := &maintenance.Item{Plan: "lift-15-day", Asset: "b3-lift-1", Due: at(86_400_000), Opened: at(2_000)}
	if ok, err := s.CreatePMItem(ctx, again); err != nil || ok {
		t.Fatalf("same due twice: %v %v", ok, err)
	}
	// Running-hours items have no due time, only due hours.
	hrs := &maintenance.Item{Plan: "pump-service", Asset: "b3-pump-room", DueHours: 20000, Opened: at(3_000), OpenedHours: 19500.5}
	if ok, err := s.CreatePMItem(ctx, hrs); err != nil || !ok {
		t.Fatalf("run-hours item: %v %v", ok, err)
	}
	if ok, err := s.CreatePMItem(ctx, &maintenance.Item{Plan: "pump-service", Asset: "b3-pump-room", DueHours: 20000, Opened: at(4_000)}); err != nil || ok {
		t.Fatalf("same due hours twice: %v %v", ok, err)
	}
	next := &maintenance.Item{Plan: "lift-15-day", Asset: "b3-lift-1", Due: at(16 * 86_400_000), Opened: at(5_000)}
	if ok, err := s.CreatePMItem(ctx, next); err != nil || !ok {
		t.Fatalf("next due: %v %v", ok, err)
	}
	if err := s.SetPMWorkOrder(ctx, cal.ID, 42); err != nil {
		t.Fatal(err)
	}
	it, err := s.LatestPMItem(ctx, "lift-15-day", "b3-lift-1")
	if err != nil || it == nil || it.ID != next.ID || !it.Due.Equal(at(16*86_400_000)) || it.WorkOrder != 0 {
		t.Fatalf("latest: %+v %v", it, err)
	}
	h, err := s.LatestPMItem(ctx, "pump-service", "b3-pump-room")
	if err != nil || h == nil || !h.Due.IsZero() || h.DueHours != 20000 || h.OpenedHours != 19500.5 || !h.Opened.Equal(at(3_000)) {
		t.Fatalf("run-hours item read back: %+v %v", h, err)
	}
	list := func(plan string, since time.Time, limit int) string {
		t.Helper()
		its, err := s.PMItems(ctx, plan, since, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range its {
			out = append(out, fmt.Sprintf("%d/%d", it.ID, it.WorkOrder))
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		name, got, want string
	}{
		{"all, newest first", list("", at(0), 0), fmt.Sprint([]string{fmt.Sprintf("%d/0", next.ID), fmt.Sprintf("%d/0", hrs.ID), fmt.Sprintf("%d/42", cal.ID)})},
		{"one plan", list("pump-service", at(0), 0), fmt.Sprint([]string{fmt.Sprintf("%d/0", hrs.ID)})},
		{"opened since", list("", at(3_000), 0), fmt.Sprint([]string{fmt.Sprintf("%d/0", next.ID), fmt.Sprintf("%d/0", hrs.ID)})},
		{"limit", list("", at(0), 1), fmt.Sprint([]string{fmt.Sprintf("%d/0", next.ID)})},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}
