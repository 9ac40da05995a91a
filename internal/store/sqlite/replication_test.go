package sqlite

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/replication"
)

var epochRE = regexp.MustCompile(`^20\d{15}[0-9a-f]{8}$`)

func appendAlarm(t *testing.T, o *ReplicationOutbox, key string) replication.Event {
	t.Helper()
	e := replication.Event{V: 1, Site: "s", Kind: "alarm", Key: key, Op: "upsert", At: time.Now(), Doc: json.RawMessage(`{}`)}
	if err := o.Append(t.Context(), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// A new outbox gets an epoch (when it was made, then random digits) that
// every event and its status carry, and keeps it when reopened; another
// database (a replaced one) gets another.
func TestReplicationOutboxEpoch(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) (*DB, *ReplicationOutbox) {
		d, err := Open(filepath.Join(dir, name), "rules", rulesMigrations)
		if err != nil {
			t.Fatal(err)
		}
		o, err := NewReplicationOutbox(d)
		if err != nil {
			t.Fatal(err)
		}
		return d, o
	}
	d, o := open("a.db")
	epoch, from := o.Epoch()
	if !epochRE.MatchString(epoch) || from != 1 {
		t.Fatalf("epoch %q from %d", epoch, from)
	}
	if e := appendAlarm(t, o, "x"); e.Seq != 1 || e.Epoch != epoch || e.EpochFrom != 0 {
		t.Fatalf("appended %+v", e)
	}
	d.Close()
	d, o = open("a.db")
	defer d.Close()
	if again, _ := o.Epoch(); again != epoch {
		t.Fatalf("reopened: epoch %q, was %q", again, epoch)
	}
	un, err := o.Unsent(t.Context(), 10)
	if err != nil || len(un) != 1 || un[0].Epoch != epoch {
		t.Fatalf("unsent %+v %v", un, err)
	}
	d2, o2 := open("b.db")
	defer d2.Close()
	if other, _ := o2.Epoch(); other == epoch || !epochRE.MatchString(other) {
		t.Fatalf("a second database's epoch %q (first %q)", other, epoch)
	}
}

// An outbox made before epochs gets one on the upgrade that continues its
// sequence (epoch_from: its next seq), also on the events it already held.
func TestReplicationOutboxEpochUpgrade(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "old.db"), "rules", rulesMigrations)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Migrate("replication", replicationMigrations[:2]); err != nil { // as an older gateway left it
		t.Fatal(err)
	}
	for _, k := range []string{"x", "y", "z"} {
		if _, err := d.w.Exec(`INSERT INTO replication_outbox (kind, key, at, envelope) VALUES ('alarm', ?, 0, ?)`, k, `{"v":1,"site":"s","kind":"alarm","key":"`+k+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	o, err := NewReplicationOutbox(d)
	if err != nil {
		t.Fatal(err)
	}
	epoch, from := o.Epoch()
	if !epochRE.MatchString(epoch) || from != 4 {
		t.Fatalf("epoch %q from %d, want from 4", epoch, from)
	}
	un, err := o.Unsent(t.Context(), 10)
	if err != nil || len(un) != 3 || un[0].Epoch != epoch || un[0].EpochFrom != 4 {
		t.Fatalf("unsent %+v %v", un, err)
	}
	if e := appendAlarm(t, o, "w"); e.Seq != 4 || e.Epoch != epoch || e.EpochFrom != 4 {
		t.Fatalf("appended %+v", e)
	}
}

// A snapshot goes into the outbox in one transaction: consecutive seqs
// after the events before it, each envelope whole and stamped with the
// epoch, all unsent in order.
func TestReplicationOutboxAppendAll(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "r.db"), "rules", rulesMigrations)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	o, err := NewReplicationOutbox(d)
	if err != nil {
		t.Fatal(err)
	}
	appendAlarm(t, o, "before")
	evs := []replication.Event{
		{V: 1, Site: "s", Kind: "alarm", Key: "a", Op: "upsert", At: time.Now(), Doc: json.RawMessage(`{"state":"normal"}`)},
		{V: 1, Site: "s", Kind: "workorder", Key: "7", Op: "upsert", At: time.Now(), Doc: json.RawMessage(`{"status":"opened"}`)},
	}
	if err := o.AppendAll(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if evs[0].Seq != 2 || evs[1].Seq != 3 || evs[1].Epoch == "" {
		t.Fatalf("seqs %d %d, epoch %q; want 2 3 and the outbox's epoch", evs[0].Seq, evs[1].Seq, evs[1].Epoch)
	}
	un, err := o.Unsent(t.Context(), 10)
	if err != nil || len(un) != 3 || un[1].Key != "a" || un[2].Key != "7" || string(un[2].Doc) != `{"status":"opened"}` || un[2].Epoch != evs[1].Epoch {
		t.Fatalf("unsent %+v %v", un, err)
	}
}
