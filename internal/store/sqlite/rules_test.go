package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/propgate/gateway/rules"
)

// A long read (a report scanning the history, a slow screen) must not hold
// up an alarm write on the ingest path: reads have their own connections.
// With one shared connection the write below waited for the read to end.
func TestReadsDoNotBlockAlarmWrites(t *testing.T) {
	s, err := OpenRules(filepath.Join(t.TempDir(), "gw.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a := &rules.Alarm{ID: "r:a", Rule: "r", Asset: "a", State: rules.StateNormal}
	var tr []rules.Transition
	for i := range 100 {
		tr = append(tr, rules.Transition{AlarmID: a.ID, From: rules.StateNormal, To: rules.StateUnacked, At: time.UnixMilli(int64(i + 1))})
	}
	if err := s.SaveAlarm(ctx, a, tr); err != nil {
		t.Fatal(err)
	}
	// A reader in the middle of a result set: its connection is busy.
	rows, err := s.r.QueryContext(ctx, `SELECT seq FROM alarm_transitions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("no rows")
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.SaveAlarm(wctx, a, []rules.Transition{{AlarmID: a.ID, From: rules.StateUnacked, To: rules.StateNormal, At: time.UnixMilli(1000)}}); err != nil {
		t.Fatalf("alarm write while a read is open: %v", err)
	}
}
