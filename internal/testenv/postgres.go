package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a running PostgreSQL server (Debian's postgresql-15 package),
// its cluster made by initdb in a temp dir, listening on a free loopback
// port only (no Unix socket), trust authentication for the postgres role.
type Postgres struct {
	*Process
	// URL is the server's maintenance database (postgres), for admin work;
	// tests use NewDatabase.
	URL  string
	port int

	mu      sync.Mutex
	n       int
	schemas string // the database NewSchema makes schemas in, once made
}

// PostgresBinDir finds the directory holding initdb and postgres: Debian
// keeps them in /usr/lib/postgresql/<version>/bin (the newest wins), off
// PATH; a PATH initdb is used otherwise.
func PostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", fmt.Errorf("PostgreSQL is not installed; run `make deps` (apt-get install postgresql)")
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// PostgresUser is whom the server runs as: PostgreSQL refuses to run as
// root, so under root it is Debian's postgres user (made by the package);
// otherwise the current user, with no credential change.
func PostgresUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as (apt-get install postgresql makes it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// StartPostgres initialises a fresh cluster and starts PostgreSQL on it.
// Durability is off (fsync, synchronous_commit): the data is thrown away
// with the test. Stop and Start simulate an outage; the data survives.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	return StartPostgresWith(t)
}

// StartPostgresWith is StartPostgres with more server settings
// ("fsync=on" for a benchmark that must pay for durability): each is
// passed as -c after the defaults, which it overrides.
func StartPostgresWith(t testing.TB, settings ...string) *Postgres {
	t.Helper()
	Integration(t)
	bin, err := PostgresBinDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cred, err := PostgresUser()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// Not t.TempDir: its parents are private to root, and the server runs
	// as postgres.
	base, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	data := filepath.Join(base, "data")
	if cred != nil {
		if err := os.Chown(base, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = base
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("testenv: initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	argv := []string{filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", "",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=100", "-c", "log_min_messages=warning"}
	for _, s := range settings {
		argv = append(argv, "-c", s)
	}
	p := &Postgres{
		Process: &Process{t: t, name: "postgres", cred: cred, stop: syscall.SIGINT, // SIGINT: fast shutdown, not waiting for clients
			argv: argv, addr: fmt.Sprintf("127.0.0.1:%d", port)},
		URL:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		port: port,
	}
	// The server accepts TCP before it accepts logins ("the database
	// system is starting up"): ready once a query answers.
	p.ready = func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.URL)
		if err != nil {
			return false
		}
		defer c.Close(ctx)
		return c.Ping(ctx) == nil
	}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// NewDatabase creates an empty database on the server and returns its URL.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	p.mu.Lock()
	p.n++
	name := fmt.Sprintf("t%d_%s", p.n, dbSafe(t.Name()))
	p.mu.Unlock()
	if len(name) > 60 {
		name = name[:60]
	}
	p.Exec(t, `CREATE DATABASE "`+name+`"`)
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, name)
}

// NewSchema creates an empty schema in a database shared by the callers
// and returns a URL whose search_path is that schema: a fresh namespace for
// one test, much cheaper than a database (CREATE DATABASE copies a template
// and checkpoints).
func (p *Postgres) NewSchema(t testing.TB) string {
	t.Helper()
	p.mu.Lock()
	if p.schemas == "" {
		p.Exec(t, `CREATE DATABASE schemas`)
		p.schemas = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/schemas?sslmode=disable", p.port)
	}
	p.n++
	name := fmt.Sprintf("s%d_%s", p.n, dbSafe(t.Name()))
	p.mu.Unlock()
	if len(name) > 60 {
		name = name[:60]
	}
	p.exec(t, p.schemas, `CREATE SCHEMA "`+name+`"`)
	return p.schemas + "&search_path=" + name
}

// Exec runs one statement in the maintenance database.
func (p *Postgres) Exec(t testing.TB, sql string) {
	t.Helper()
	p.exec(t, p.URL, sql)
}

func (p *Postgres) exec(t testing.TB, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("testenv: postgres %q: %v", sql, err)
	}
}

func dbSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, s)
}
