package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// LockKey is the advisory-lock key of a name ("center-leader:center"):
// the first 8 bytes of its FNV-1a hash, so that features choose readable
// names and never collide by accident with the migration lock.
func LockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("propgate:" + name))
	return int64(h.Sum64())
}

// LockOptions tune a LockSession.
type LockOptions struct {
	// Name tells the connection apart in pg_stat_activity
	// (application_name) and in logs: the instance's name.
	Name string
	// Every is how often the connection is checked (and, for a Leader,
	// how often a follower tries the lock); default 1s.
	Every time.Duration
	// Timeout: a check not answered within it means the connection is
	// lost; default 2s.
	Timeout time.Duration
	Log     *slog.Logger
}

func (o *LockOptions) defaults() {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// LockSession is one dedicated PostgreSQL connection (not from a pool)
// holding session-level advisory locks (pg_try_advisory_lock): PostgreSQL
// releases them when that connection ends, whatever ends it (the process
// killed, the machine gone, the network cut once the server's TCP
// keepalives give up, pg_terminate_backend). Each connection is an Epoch;
// the session checks it every Every and ends the epoch the moment a check
// fails, so that the holder stops acting on a lock before another
// instance can have taken it (a Leader waits Every+Timeout after taking
// the lock for the same reason). Run reconnects after a loss.
type LockSession struct {
	url  string
	opts LockOptions

	mu   sync.Mutex // serialises use of the connection
	cur  *Epoch     // the live epoch, nil between connections
	wake chan struct{}
	n    int64
}

// Epoch is one connection's lifetime: its locks live exactly as long.
type Epoch struct {
	n    int64
	conn *pgx.Conn
	done chan struct{}
	once sync.Once
}

// Done is closed when the epoch's connection is lost (or the session
// stops): every lock taken in it is gone.
func (e *Epoch) Done() <-chan struct{} { return e.done }

// N numbers the session's epochs from 1.
func (e *Epoch) N() int64 { return e.n }

func (e *Epoch) end() { e.once.Do(func() { close(e.done) }) }

// ErrEpochOver: the epoch's connection is gone (and its locks with it).
var ErrEpochOver = errors.New("lock session: the connection holding the locks was lost")

// NewLockSession makes a session on the database at url; nothing
// connects until Run.
func NewLockSession(url string, opts LockOptions) *LockSession {
	opts.defaults()
	return &LockSession{url: url, opts: opts, wake: make(chan struct{})}
}

// Run connects, checks the connection every Every and reconnects after a
// loss, until ctx ends.
func (s *LockSession) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		conn, err := s.connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Log.Warn("lock session: cannot connect; will retry", "err", err)
				sleep(ctx, s.opts.Every)
			}
			continue
		}
		ep := s.begin(conn)
		err = s.watch(ctx, ep)
		s.finish(ep)
		if err != nil && ctx.Err() == nil {
			s.opts.Log.Warn("lock session: connection lost; its locks are gone", "epoch", ep.n, "err", err)
		}
	}
	return nil
}

// connect opens the dedicated connection. The server is told to give up
// on a silent client within seconds (keepalives, tcp_user_timeout), so a
// holder cut off by the network loses its locks soon after it stopped
// acting on them.
func (s *LockSession) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return nil, fmt.Errorf("lock session: the database URL %s is not valid", Redact(s.url))
	}
	cfg.ConnectTimeout = s.opts.Timeout
	keepIdle := max(1, int(s.opts.Every/time.Second))
	for k, v := range map[string]string{
		"application_name":        "propgate-lock:" + s.opts.Name,
		"tcp_keepalives_idle":     strconv.Itoa(keepIdle),
		"tcp_keepalives_interval": "1",
		"tcp_keepalives_count":    "3",
		"tcp_user_timeout":        strconv.Itoa(int((s.opts.Timeout + 3*time.Second) / time.Millisecond)),
	} {
		cfg.RuntimeParams[k] = v
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout+time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lock session: %s: %w", Redact(s.url), err)
	}
	return conn, nil
}

func (s *LockSession) begin(conn *pgx.Conn) *Epoch {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	ep := &Epoch{n: s.n, conn: conn, done: make(chan struct{})}
	s.cur = ep
	close(s.wake)
	s.wake = make(chan struct{})
	return ep
}

// finish ends the epoch (its Done closes first, so that nobody acts on its
// locks any more) and closes the connection, which releases them.
func (s *LockSession) finish(ep *Epoch) {
	ep.end()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == ep {
		s.cur = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = ep.conn.Close(ctx)
}

// watch checks the connection every Every until a check fails or ctx ends.
func (s *LockSession) watch(ctx context.Context, ep *Epoch) error {
	t := time.NewTicker(s.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ep.done:
			return ErrEpochOver
		case <-t.C:
		}
		if err := s.check(ctx, ep); err != nil {
			return err
		}
	}
}

func (s *LockSession) check(ctx context.Context, ep *Epoch) error {
	return s.With(ctx, ep, func(ctx context.Context, conn *pgx.Conn) error {
		cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		defer cancel()
		_, err := conn.Exec(cctx, "SELECT 1")
		return err
	})
}

// Up waits for a live connection and returns its epoch.
func (s *LockSession) Up(ctx context.Context) (*Epoch, error) {
	for {
		s.mu.Lock()
		ep, wake := s.cur, s.wake
		s.mu.Unlock()
		if ep != nil {
			select {
			case <-ep.done:
			default:
				return ep, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		case <-time.After(s.opts.Every): // an epoch ended in between
		}
	}
}

// With runs fn on the epoch's connection, alone. A statement that succeeds
// there ran while every lock of the epoch was held: work that must be done
// by the lock holder only (claiming a notification to send) goes through
// here, which fences out a holder that has lost its connection without
// knowing yet. fn must not keep conn. A failure of the connection ends
// the epoch at once.
func (s *LockSession) With(ctx context.Context, ep *Epoch, fn func(context.Context, *pgx.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ep.done:
		return ErrEpochOver
	default:
	}
	// A cancelled call may leave the connection closed (pgx closes it when
	// a query is interrupted mid-way): that too ends the epoch.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-ep.done:
			stop()
		case <-ctx.Done():
		}
	}()
	err := fn(ctx, ep.conn)
	if ep.conn.IsClosed() {
		ep.end()
		if err == nil {
			err = ErrEpochOver
		}
	}
	return err
}

// TryLock takes the advisory lock key in the epoch, without waiting;
// ok is false when another session holds it. Taking a lock the epoch
// already holds succeeds (and stacks: Unlock once per TryLock).
func (s *LockSession) TryLock(ctx context.Context, ep *Epoch, key int64) (ok bool, err error) {
	err = s.With(ctx, ep, func(ctx context.Context, conn *pgx.Conn) error {
		cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		defer cancel()
		return conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok)
	})
	return ok, err
}

// Unlock releases the lock key taken in the epoch.
func (s *LockSession) Unlock(ctx context.Context, ep *Epoch, key int64) error {
	return s.With(ctx, ep, func(ctx context.Context, conn *pgx.Conn) error {
		cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		defer cancel()
		var ok bool
		if err := conn.QueryRow(cctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("lock session: lock %d was not held", key)
		}
		return nil
	})
}

// Grace is how long a new holder waits before acting: a previous holder
// whose connection died has noticed by then (its next check fails).
func (s *LockSession) Grace() time.Duration { return s.opts.Every + s.opts.Timeout }

// Every is the session's check interval.
func (s *LockSession) Every() time.Duration { return s.opts.Every }

// Leader runs work only while its session holds one advisory lock: at most
// one instance of a group leads at a time, and another takes over within
// a few seconds when the leader's connection or process dies.
type Leader struct {
	s       *LockSession
	key     int64
	leading atomic.Bool
	terms   atomic.Int64
	since   atomic.Int64 // unix nanoseconds of the current term's start; 0 when following
	log     *slog.Logger
}

// NewLeader elects on lock name (LockKey) through the session.
func NewLeader(s *LockSession, name string) *Leader {
	return &Leader{s: s, key: LockKey(name), log: s.opts.Log}
}

// Leading says whether this instance leads now.
func (l *Leader) Leading() bool { return l.leading.Load() }

// Since is when the current term began (zero when following).
func (l *Leader) Since() time.Time {
	if n := l.since.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Terms counts the terms this instance has led.
func (l *Leader) Terms() int64 { return l.terms.Load() }

// Session is the lock session the leader holds its lock in (for fenced
// work: LockSession.With with the term's epoch).
func (l *Leader) Session() *LockSession { return l.s }

// Term is one period of leadership: its context ends when it is lost.
type Term struct {
	Epoch *Epoch
	N     int64 // counts this instance's terms from 1
}

// Run tries the lock every Every; once taken it waits Grace, then runs
// lead with a context that ends when the connection is lost (or ctx
// ends). lead should return promptly then; when lead returns while the
// lock is still held, the lock is released and the instance follows
// again. Run returns when ctx ends.
func (l *Leader) Run(ctx context.Context, lead func(ctx context.Context, t Term)) error {
	for {
		ep, err := l.s.Up(ctx)
		if err != nil {
			return nil
		}
		if !l.acquire(ctx, ep) {
			if ctx.Err() != nil {
				return nil
			}
			continue // the epoch ended: wait for the next connection
		}
		// A previous holder that lost its connection has noticed by now.
		select {
		case <-ctx.Done():
		case <-ep.Done():
			continue
		case <-time.After(l.s.Grace()):
		}
		if ctx.Err() != nil {
			return nil
		}
		l.term(ctx, ep, lead)
		select {
		case <-ep.Done():
		default: // lead returned (or ctx ended) with the lock held: let go
			if err := l.s.Unlock(context.WithoutCancel(ctx), ep, l.key); err != nil {
				l.log.Warn("leader: releasing the lock", "err", err)
			}
			if ctx.Err() == nil {
				sleep(ctx, l.s.Every()) // give another instance its turn
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (l *Leader) acquire(ctx context.Context, ep *Epoch) bool {
	t := time.NewTicker(l.s.Every())
	defer t.Stop()
	for {
		ok, err := l.s.TryLock(ctx, ep, l.key)
		if ok {
			return true
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrEpochOver) {
			l.log.Warn("leader: trying the lock", "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-ep.Done():
			return false
		case <-t.C:
		}
	}
}

func (l *Leader) term(ctx context.Context, ep *Epoch, lead func(context.Context, Term)) {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ep.Done():
			cancel()
		case <-tctx.Done():
		}
	}()
	n := l.terms.Add(1)
	l.since.Store(time.Now().UnixNano())
	l.leading.Store(true)
	l.log.Info("leader: leading", "term", n, "epoch", ep.n)
	defer func() {
		l.leading.Store(false)
		l.since.Store(0)
		l.log.Info("leader: following", "term", n)
	}()
	lead(tctx, Term{Epoch: ep, N: n})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
