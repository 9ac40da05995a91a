package scale

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/replication/sitegen"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/testenv"
)

// TestMain doubles as the center process of the benchmark (so that its
// CPU and memory are its own, not the generator's).
func TestMain(m *testing.M) {
	if os.Getenv("SCALE_CENTER_DB") != "" {
		os.Exit(runCenter())
	}
	os.Exit(m.Run())
}

// runCenter is one center: the batch consumer on a persistent session,
// applying into PostgreSQL, as `center:` runs it.
func runCenter() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if prof := os.Getenv("SCALE_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	center, err := postgres.OpenCenter(ctx, os.Getenv("SCALE_CENTER_DB"))
	if err != nil {
		log.Error("open", "err", err)
		return 1
	}
	defer center.Close()
	c := replication.NewBatchConsumer(center, log, time.Now, envInt("SCALE_PARTITIONS", 2))
	c.Subscribed = func() { fmt.Println("subscribed") }
	client := paho.NewClient(c.ClientOptions(ctx, paho.NewClientOptions().AddBroker(os.Getenv("SCALE_CENTER_BROKER")).SetClientID("center").
		SetAutoReconnect(true).SetConnectRetry(true)))
	client.Connect()
	_ = c.Run(ctx)
	client.Disconnect(250)
	return 0
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// snap is what the processes and PostgreSQL had done at one moment.
type snap struct {
	at                           time.Time
	center, pg, broker, bench    float64 // CPU seconds
	events                       int64   // center_events rows
	rowsIns, rowsUpd, rowsHotUpd int64
}

type probe struct {
	b                         *testing.B
	db                        *pgx.Conn
	centerPID, pgPID, mqttPID int
}

func (p *probe) snap(ctx context.Context) snap {
	s := snap{at: time.Now(), center: cpuSeconds(p.centerPID), pg: familyCPU(p.pgPID), broker: cpuSeconds(p.mqttPID), bench: cpuSeconds(os.Getpid())}
	if err := p.db.QueryRow(ctx, `SELECT count(*) FROM center_events`).Scan(&s.events); err != nil {
		p.b.Fatal(err)
	}
	if err := p.db.QueryRow(ctx, `SELECT COALESCE(sum(n_tup_ins), 0), COALESCE(sum(n_tup_upd), 0), COALESCE(sum(n_tup_hot_upd), 0)
		FROM pg_stat_user_tables WHERE relname LIKE 'center_%'`).Scan(&s.rowsIns, &s.rowsUpd, &s.rowsHotUpd); err != nil {
		p.b.Fatal(err)
	}
	return s
}

// BenchmarkCenterScale drives one center with sitegen: SCALE_SITES (100)
// sites × SCALE_ASSETS (50) assets, one change per asset per second; after
// SCALE_WARMUP (10s), a steady phase of SCALE_STEADY (60s) with an outage
// at SCALE_OUTAGE (10) sites at once in its middle; then a WAN cut at
// SCALE_CUT_SITES (20) sites for SCALE_CUT (10m) while the others go on,
// and the catch-up. PostgreSQL runs durable (fsync, synchronous commit)
// with track_commit_timestamp, so that each event's latency is measured
// from its change at the site to the commit that made it visible to the
// center's API. SCALE_CPUPROFILE=file profiles the center.
func BenchmarkCenterScale(b *testing.B) {
	sites, assets := envInt("SCALE_SITES", 100), envInt("SCALE_ASSETS", 50)
	warmup, steady, cut := envDur("SCALE_WARMUP", 10*time.Second), envDur("SCALE_STEADY", 60*time.Second), envDur("SCALE_CUT", 10*time.Minute)
	outageN, cutN := envInt("SCALE_OUTAGE", 10), envInt("SCALE_CUT_SITES", 20)
	pg := testenv.StartPostgresWith(b, "fsync=on", "synchronous_commit=on", "full_page_writes=on", "track_commit_timestamp=on",
		"shared_buffers=256MB", "max_wal_size=4GB", "checkpoint_timeout=15min")
	broker := testenv.StartMosquitto(b)
	dbURL := pg.NewDatabase(b)
	ctx := b.Context()

	// The center, its own process.
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), "SCALE_CENTER_DB="+dbURL, "SCALE_CENTER_BROKER="+broker.URL)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "subscribed" {
				close(up)
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(30 * time.Second):
		b.Fatal("the center did not subscribe")
	}

	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(context.Background())
	port := func(raw string) int {
		u, _ := url.Parse(raw)
		n, _ := strconv.Atoi(u.Port())
		return n
	}
	p := &probe{b: b, db: db, centerPID: cmd.Process.Pid}
	if p.pgPID, err = listening(port(dbURL)); err != nil {
		b.Fatal(err)
	}
	if p.mqttPID, err = listening(port(broker.URL)); err != nil {
		b.Fatal(err)
	}

	gen := sitegen.New(sitegen.Config{Sites: sites, Assets: assets, Rate: 1, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Broker: func() *paho.ClientOptions { return paho.NewClientOptions().AddBroker(broker.URL) }})
	gctx, stopGen := context.WithCancel(ctx)
	genDone := make(chan struct{})
	go func() { _ = gen.Run(gctx); close(genDone) }()
	b.ResetTimer()

	time.Sleep(warmup)
	generated := func() (n int64) {
		for _, st := range gen.Stats() {
			n += st.Generated
		}
		return n
	}
	g0 := generated()
	s0 := p.snap(ctx)
	time.Sleep(steady / 2)
	outage := make([]int, outageN)
	for i := range outage {
		outage[i] = i
	}
	tOutage := time.Now()
	gen.Outage(outage, tOutage)
	time.Sleep(steady - steady/2)
	s1 := p.snap(ctx)
	g1 := generated()
	_, centerPeak := memKB(p.centerPID)
	centerRSS, _ := memKB(p.centerPID)

	// The WAN cut.
	cutSites := make([]int, cutN)
	cutIDs := make([]string, cutN)
	for i := range cutSites {
		cutSites[i] = outageN + i
		cutIDs[i] = gen.Sites()[outageN+i]
	}
	tCut := time.Now()
	gen.Cut(cutSites)
	time.Sleep(cut)
	backlog := map[string]int64{}
	before := gen.Stats()
	tRestore := time.Now()
	gen.Restore(cutSites)
	var queued int64
	for _, i := range cutSites {
		backlog[before[i].Site] = before[i].Generated
		queued += before[i].Generated - before[i].Acked
	}
	// Caught up: the center holds every event the cut sites made up to
	// the restore.
	for {
		var n int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM center_events e JOIN unnest($1::text[], $2::bigint[]) AS b(site, upto)
			ON e.site = b.site AND e.seq <= b.upto`, cutIDs, seqsOf(backlog, cutIDs)).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == sum(backlog) {
			break
		}
		if time.Since(tRestore) > 30*time.Minute {
			b.Fatalf("not caught up after 30 min: %d of %d", n, sum(backlog))
		}
		time.Sleep(200 * time.Millisecond)
	}
	s2 := p.snap(ctx)
	_, peak2 := memKB(p.centerPID)
	centerPeak = max(centerPeak, peak2)
	stopGen()
	<-genDone
	b.StopTimer()

	// Everything made reached the center: no loss, each site gap-free.
	final := gen.Stats()
	for {
		var n int64
		_ = db.QueryRow(ctx, `SELECT count(*) FROM center_events`).Scan(&n)
		var want int64
		for _, st := range final {
			want += st.Acked
		}
		if n >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	bad := 0
	rows, err := db.Query(ctx, `SELECT site, count(*), max(seq) FROM center_events GROUP BY site`)
	if err != nil {
		b.Fatal(err)
	}
	got := map[string][2]int64{}
	for rows.Next() {
		var site string
		var n, hi int64
		_ = rows.Scan(&site, &n, &hi)
		got[site] = [2]int64{n, hi}
	}
	rows.Close()
	for _, st := range final {
		if g := got[st.Site]; g[0] != g[1] || g[1] < st.Acked {
			bad++
			b.Errorf("site %s: %d events, max seq %d, the site sent up to %d", st.Site, g[0], g[1], st.Acked)
		}
	}
	// In order: at each cut site, no event committed before an earlier seq.
	var disorder int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_xact_commit_timestamp(xmin) AS c,
		lag(pg_xact_commit_timestamp(xmin)) OVER (PARTITION BY site ORDER BY seq) AS p FROM center_events WHERE site = ANY($1)) x WHERE c < p`, cutIDs).Scan(&disorder); err != nil {
		b.Fatal(err)
	}
	if disorder > 0 {
		b.Errorf("%d events of the cut sites committed before an earlier one", disorder)
		rows, _ := db.Query(ctx, `SELECT site, seq, xmin::text, c, p, received FROM (SELECT site, seq, xmin, received, pg_xact_commit_timestamp(xmin) AS c,
			lag(pg_xact_commit_timestamp(xmin)) OVER (PARTITION BY site ORDER BY seq) AS p FROM center_events WHERE site = ANY($1)) x WHERE c < p LIMIT 5`, cutIDs)
		for rows.Next() {
			var site, xmin string
			var seq int64
			var c, pr, rc time.Time
			_ = rows.Scan(&site, &seq, &xmin, &c, &pr, &rc)
			b.Logf("  %s seq %d tx %s committed %s, seq %d at %s (received %s)", site, seq, xmin, c.Format("15:04:05.000000"), seq-1, pr.Format("15:04:05.000000"), rc.Format("15:04:05.000000"))
		}
		rows.Close()
	}

	// Latencies: change at the site → commit at the center.
	lat := func(where string, args ...any) (p50, p99, p999, mx float64, n int64) {
		q := `SELECT COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY l), 0), COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY l), 0),
			COALESCE(percentile_cont(0.999) WITHIN GROUP (ORDER BY l), 0), COALESCE(max(l), 0), count(*)
			FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - at) AS l FROM center_events WHERE ` + where + `) x`
		if err := db.QueryRow(ctx, q, args...).Scan(&p50, &p99, &p999, &mx, &n); err != nil {
			b.Fatal(err)
		}
		return
	}
	sp50, sp99, sp999, smax, sn := lat(`at >= $1 AND at < $2`, s0.at, s1.at)
	op50, op99, _, omax, on := lat(`at >= $1 AND at < $2 AND site = ANY($3)`, tOutage.Add(-time.Millisecond), tOutage.Add(time.Millisecond), gen.Sites()[:outageN])
	var lastCommit time.Time
	if err := db.QueryRow(ctx, `SELECT max(pg_xact_commit_timestamp(e.xmin)) FROM center_events e JOIN unnest($1::text[], $2::bigint[]) AS b(site, upto)
		ON e.site = b.site AND e.seq <= b.upto`, cutIDs, seqsOf(backlog, cutIDs)).Scan(&lastCommit); err != nil {
		b.Fatal(err)
	}
	catchUp := lastCommit.Sub(tRestore)
	ap50, ap99, _, amax, an := lat(`at >= $1 AND at < $2 AND NOT site = ANY($3)`, tRestore, s2.at, cutIDs)

	// Where the time goes: at the site and on the way (change → the
	// center's transaction began) and in PostgreSQL (→ commit); how many
	// events each transaction carried; the worst seconds.
	var wayP99, dbP99, perTx float64
	if err := db.QueryRow(ctx, `SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received - at)),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM pg_xact_commit_timestamp(xmin) - received)),
		count(*)::float8 / count(DISTINCT xmin::text) FROM center_events WHERE at >= $1 AND at < $2`, s0.at, s1.at).Scan(&wayP99, &dbP99, &perTx); err != nil {
		b.Fatal(err)
	}
	var worst []string
	wrows, err := db.Query(ctx, `SELECT to_char(date_trunc('second', at), 'HH24:MI:SS'), count(*), max(extract(epoch FROM pg_xact_commit_timestamp(xmin) - at))
		FROM center_events WHERE at >= $1 AND at < $2 GROUP BY 1 ORDER BY 3 DESC LIMIT 5`, s0.at, s1.at)
	if err != nil {
		b.Fatal(err)
	}
	for wrows.Next() {
		var sec string
		var n int64
		var mx float64
		_ = wrows.Scan(&sec, &n, &mx)
		worst = append(worst, fmt.Sprintf("%s (%d events, max %.0f ms)", sec, n, mx*1000))
	}
	wrows.Close()

	dt := s1.at.Sub(s0.at).Seconds()
	ev := float64(s1.events - s0.events)
	rows1 := float64((s1.rowsIns - s0.rowsIns) + (s1.rowsUpd - s0.rowsUpd))
	b.ReportMetric(ev/dt, "events/s")
	b.ReportMetric((s1.center-s0.center)/ev*1e6, "center-µs-cpu/event")
	b.ReportMetric((s1.pg-s0.pg)/ev*1e6, "pg-µs-cpu/event")
	b.ReportMetric(rows1/dt, "pg-rows/s")
	b.ReportMetric(sp99*1000, "p99-ms")
	b.ReportMetric(catchUp.Seconds(), "catchup-s")
	b.ReportMetric(float64(centerPeak)/1024, "center-peak-MB")
	b.Logf("machine: %d CPUs (shared with other work: see the load below); steady %v after %v warm-up", runtime.NumCPU(), steady, warmup)
	b.Logf("steady: %.0f events/s applied (%.0f generated/s), %.0f rows/s written (%.0f inserted, %.0f updated, of which HOT %.0f)",
		ev/dt, float64(g1-g0)/dt, rows1/dt, float64(s1.rowsIns-s0.rowsIns)/dt, float64(s1.rowsUpd-s0.rowsUpd)/dt, float64(s1.rowsHotUpd-s0.rowsHotUpd)/dt)
	b.Logf("CPU over the steady phase: center %.0f%% of a core (%.1f µs/event), PostgreSQL %.0f%% (%.1f µs/event), Mosquitto %.0f%%, generator+bench %.0f%%",
		(s1.center-s0.center)/dt*100, (s1.center-s0.center)/ev*1e6, (s1.pg-s0.pg)/dt*100, (s1.pg-s0.pg)/ev*1e6, (s1.broker-s0.broker)/dt*100, (s1.bench-s0.bench)/dt*100)
	b.Logf("latency change→commit, steady (%d events): p50 %.0f ms, p99 %.0f ms, p99.9 %.0f ms, max %.0f ms", sn, sp50*1000, sp99*1000, sp999*1000, smax*1000)
	b.Logf("  of which p99 change→transaction start %.0f ms, transaction start→commit %.0f ms; %.1f events per transaction; worst seconds: %s",
		wayP99*1000, dbP99*1000, perTx, strings.Join(worst, ", "))
	b.Logf("outage at %d sites at once (%d burst events): p50 %.0f ms, p99 %.0f ms, max %.0f ms", outageN, on, op50*1000, op99*1000, omax*1000)
	b.Logf("WAN cut at %d sites for %v: %d events queued; caught up %.1f s after the restore (%d events of the others meanwhile: p50 %.0f ms, p99 %.0f ms, max %.0f ms)",
		cutN, cut.Round(time.Second), queued, catchUp.Seconds(), an, ap50*1000, ap99*1000, amax*1000)
	cdt := s2.at.Sub(tCut).Seconds()
	b.Logf("cut+catch-up phase: center %.0f%% of a core, PostgreSQL %.0f%%", (s2.center-s1.center)/cdt*100, (s2.pg-s1.pg)/cdt*100)
	var resends int64
	for _, st := range final {
		resends += st.Resends
	}
	b.Logf("generator: %d windows sent again after a lost connection (each may duplicate or reorder at the broker)", resends)
	var tableBytes, tableRows int64
	if err := db.QueryRow(ctx, `SELECT pg_total_relation_size('center_events'), (SELECT count(*) FROM center_events)`).Scan(&tableBytes, &tableRows); err == nil && tableRows > 0 {
		b.Logf("center_events: %d rows, %d MB with indexes (%d bytes per event: %.0f GB a day at the steady rate)",
			tableRows, tableBytes>>20, tableBytes/tableRows, float64(tableBytes)/float64(tableRows)*ev/dt*86400/1e9)
	}
	b.Logf("center RSS %d MB at the end of the steady phase, peak %d MB; loss: %d sites incomplete; order: %d inversions", centerRSS/1024, centerPeak/1024, bad, disorder)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average at the end: %s", strings.TrimSpace(string(la)))
	}
}

func seqsOf(m map[string]int64, ids []string) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
