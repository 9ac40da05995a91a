package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/testenv"
)

// term is one instance's period of leadership as its work saw it: from
// the moment lead was called to the moment its context ended.
type term struct {
	who        int
	start, end time.Time
}

type terms struct {
	mu  sync.Mutex
	all []term
	now []bool // who is inside lead now
}

func (ts *terms) lead(who int) func(ctx context.Context, _ Term) {
	return func(ctx context.Context, _ Term) {
		ts.mu.Lock()
		ts.now[who] = true
		i := len(ts.all)
		ts.all = append(ts.all, term{who: who, start: time.Now()})
		ts.mu.Unlock()
		<-ctx.Done()
		ts.mu.Lock()
		ts.all[i].end = time.Now()
		ts.now[who] = false
		ts.mu.Unlock()
	}
}

// leaders lists who is inside lead now.
func (ts *terms) leaders() []int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []int
	for i, in := range ts.now {
		if in {
			out = append(out, i)
		}
	}
	return out
}

// Leadership moves when the holder's connection dies (terminated by the
// server, as when its process or machine is gone) within 10 s, again and
// again; at no moment do two instances run the leader's work (terms never
// overlap, checked over every handover); a database outage ends every
// term and one instance leads again once it is back.
func TestLeaderFailoverIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	const n = 3
	ts := &terms{now: make([]bool, n)}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	leaders := make([]*Leader, n)
	for i := range n {
		s := NewLockSession(url, LockOptions{Name: fmt.Sprintf("center-%d", i), Every: 200 * time.Millisecond, Timeout: 500 * time.Millisecond})
		leaders[i] = NewLeader(s, "center-leader:test")
		wg.Go(func() { _ = s.Run(ctx) })
		wg.Go(func() { _ = leaders[i].Run(ctx, ts.lead(i)) })
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	// waitLeader waits for one leader in a term that started after since:
	// usually another instance; the instance whose connection was killed
	// may win the lock again once it has reconnected (it is alive), which
	// is a new term all the same.
	waitLeader := func(since time.Time) (int, time.Duration) {
		t.Helper()
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			ts.mu.Lock()
			who := -1
			if len(ts.all) > 0 {
				last := ts.all[len(ts.all)-1]
				if last.start.After(since) && last.end.IsZero() {
					who = last.who
				}
			}
			ts.mu.Unlock()
			if l := ts.leaders(); who >= 0 && len(l) == 1 && l[0] == who {
				return who, time.Since(start)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no new leader within 10 s (leading now: %v)", ts.leaders())
		return 0, 0
	}
	holder, _ := waitLeader(time.Time{})
	var worst time.Duration
	for round := range 8 {
		// The holder's lock connection dies.
		killedAt := time.Now()
		var killed bool
		if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
			fmt.Sprintf("propgate-lock:center-%d", holder)).Scan(&killed); err != nil || !killed {
			t.Fatalf("round %d: terminating center-%d's connection: %v %v", round, holder, killed, err)
		}
		next, took := waitLeader(killedAt)
		worst = max(worst, took)
		if !leaders[next].Leading() {
			t.Fatalf("round %d: Leading() disagrees: center-%d leads but says %v", round, next, leaders[next].Leading())
		}
		for i := range leaders {
			if i != next && leaders[i].Leading() {
				t.Fatalf("round %d: center-%d says it leads while center-%d does", round, i, next)
			}
		}
		holder = next
	}
	t.Logf("worst failover %v", worst)

	// The database goes away: nobody leads; back, one does.
	pg.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for len(ts.leaders()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still leading with the database down: %v", ts.leaders())
		}
		time.Sleep(10 * time.Millisecond)
	}
	back := time.Now()
	pg.Start()
	waitLeader(back)

	cancel()
	wg.Wait()
	// Terms never overlap: each starts after the previous one ended.
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.all) < 10 {
		t.Fatalf("only %d terms", len(ts.all))
	}
	for i := 1; i < len(ts.all); i++ {
		prev, cur := ts.all[i-1], ts.all[i]
		if prev.end.IsZero() || !cur.start.After(prev.end) {
			t.Fatalf("terms overlap: center-%d %v–%v, center-%d from %v", prev.who, prev.start, prev.end, cur.who, cur.start)
		}
	}
}

// Only the epoch holding the lock can do fenced work: once its connection
// is gone, With refuses at once, even before the session noticed.
func TestLockSessionFencingIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	s := NewLockSession(url, LockOptions{Name: "fenced", Every: time.Hour, Timeout: time.Second}) // no checks: only the fence notices
	wg.Go(func() { _ = s.Run(ctx) })
	ep, err := s.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TryLock(ctx, ep, LockKey("x")); !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	other := NewLockSession(url, LockOptions{Name: "other", Every: time.Hour})
	wg.Go(func() { _ = other.Run(ctx) })
	oep, err := other.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := other.TryLock(ctx, oep, LockKey("x")); ok {
		t.Fatal("two sessions hold the lock")
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'propgate-lock:fenced'`); err != nil {
		t.Fatal(err)
	}
	err = s.With(ctx, ep, func(ctx context.Context, c *pgx.Conn) error { _, err := c.Exec(ctx, "SELECT 1"); return err })
	if err == nil {
		t.Fatal("fenced work ran on a dead connection")
	}
	select {
	case <-ep.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the epoch did not end when its connection failed")
	}
	// The server releases the lock when the terminated backend has exited
	// (asynchronously, after pg_terminate_backend returned).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, _ := other.TryLock(ctx, oep, LockKey("x")); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock was not released with the connection within 5 s")
		}
	}
}
