package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/propgate/gateway/internal/testenv"
)

// recordTables are the records a restore must give back exactly.
var recordTables = []string{"alarms", "alarm_transitions", "workorders", "workorder_history", "incidents"}

// dumpRecords reads every row of the record tables of a rules database.
func dumpRecords(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]string{}
	for _, table := range recordTables {
		rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY 1`)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			cells := make([]string, len(vals))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				cells[i] = fmt.Sprint(v)
			}
			out[table] = append(out[table], strings.Join(cells, "\t"))
		}
		rows.Close()
	}
	return out
}

// ids returns the first column of each dumped row.
func ids(rows []string) []string {
	var out []string
	for _, r := range rows {
		id, _, _ := strings.Cut(r, "\t")
		out = append(out, id)
	}
	return out
}

// gatewayCmd runs a one-shot command of the binary with the site's env.
func (s *site) gatewayCmd(env []string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("gateway %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

// The demo site under load (an outage and an entrapment running their
// plans, four clients opening work orders): `gateway backup` while it runs
// gives a consistent snapshot (every work order answered 201 before the
// backup began is in it, nothing from after it ended, every record in it
// is the live one); the backup of the stopped gateway restores to exactly
// the same alarms, transitions, work orders, histories and incidents; a
// gateway started on restored state serves them; a restore under a running
// gateway is refused.
func TestBackupUnderLoadRestoresIdenticalRecordsIntegration(t *testing.T) {
	testenv.Integration(t)
	in := testenv.StartInflux(t)
	broker := testenv.StartMosquitto(t)
	s := newSite(t, in, broker)
	s.startBusy()
	// A copy of the config: a restore writes the backed-up one beside it.
	conf := filepath.Join(t.TempDir(), "demo.yaml")
	raw := demoYAML(t)
	os.WriteFile(conf, raw, 0o640)
	os.Symlink(filepath.Join(testenv.RepoRoot(t), "configs", "playbooks"), filepath.Join(filepath.Dir(conf), "playbooks"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	type created struct {
		id int64
		at time.Time
	}
	var orders []created
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				body := fmt.Sprintf(`{"category": "plumbing", "description": "backup load %d-%d", "location": "B3 %dF"}`, i, n, n%30)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/v1/workorders", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				var wo struct{ ID int64 }
				if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&wo) == nil {
					mu.Lock()
					orders = append(orders, created{wo.ID, time.Now()})
					mu.Unlock()
				}
				resp.Body.Close()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(orders) }
	s.waitFor("work orders under load", 30*time.Second, func() bool { return count() >= 40 })

	// A restore while the gateway runs is refused, nothing touched.
	underLoad := filepath.Join(t.TempDir(), "under-load.tar.gz")
	began := time.Now()
	out := s.gatewayCmd(s.env, "backup", "-config", conf, "-out", underLoad)
	ended := time.Now()
	if !strings.Contains(out, underLoad+": backup of yushan-garden") {
		t.Errorf("backup output %q", out)
	}
	cmd := exec.Command(binary, "restore", "-config", conf, "-in", underLoad)
	cmd.Env = s.env
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "is locked: a gateway is running on this state (stop it first") {
		t.Errorf("restore under a running gateway: %v\n%s", err, b)
	}
	n := count()
	s.waitFor("work orders after the backup", 30*time.Second, func() bool { return count() >= n+20 })
	cancel()
	wg.Wait()
	s.stop(syscall.SIGTERM)
	final := dumpRecords(t, filepath.Join(s.data, "gateway.db"))

	// The snapshot taken under load.
	restored := t.TempDir()
	env := append(slices.Clone(s.env), "GATEWAY_DATA="+restored)
	out = s.gatewayCmd(env, "restore", "-config", conf, "-in", underLoad)
	if !strings.Contains(out, "restored yushan-garden from "+underLoad) || !strings.Contains(out, conf+".from-backup") {
		t.Errorf("restore output %q", out)
	}
	snap := dumpRecords(t, filepath.Join(restored, "gateway.db"))
	got := ids(snap["workorders"])
	mu.Lock()
	for _, o := range orders {
		id := fmt.Sprint(o.id)
		if o.at.Before(began) && !slices.Contains(got, id) {
			t.Errorf("work order %d (answered before the backup began) is not in it", o.id)
		}
		if o.at.After(ended.Add(time.Second)) && slices.Contains(got, id) {
			t.Errorf("work order %d (created after the backup ended) is in it", o.id)
		}
	}
	mu.Unlock()
	for _, table := range []string{"workorders", "incidents", "alarms"} {
		live := ids(final[table])
		for _, id := range ids(snap[table]) {
			if !slices.Contains(live, id) {
				t.Errorf("%s %s in the backup, not in the live database", table, id)
			}
		}
	}
	if len(snap["incidents"]) == 0 || len(snap["alarms"]) == 0 {
		t.Fatalf("backup holds %d incidents, %d alarms", len(snap["incidents"]), len(snap["alarms"]))
	}

	// The stopped gateway's state, backed up and restored: identical.
	stopped := filepath.Join(t.TempDir(), "stopped.tar.gz")
	s.gatewayCmd(s.env, "backup", "-config", conf, "-out", stopped)
	again := t.TempDir()
	s.gatewayCmd(append(slices.Clone(s.env), "GATEWAY_DATA="+again), "restore", "-config", conf, "-in", stopped)
	same := dumpRecords(t, filepath.Join(again, "gateway.db"))
	for _, table := range recordTables {
		if !slices.Equal(same[table], final[table]) {
			t.Errorf("%s: restored %d rows, live %d, or they differ", table, len(same[table]), len(final[table]))
		}
	}

	// A gateway runs on the restored state and serves its records.
	s2 := newSite(t, in, broker)
	s2.env = append(s2.env, "GATEWAY_DATA="+again)
	s2.data = again
	s2.start()
	// The last order the test made (the rules open others meanwhile).
	mu.Lock()
	last := fmt.Sprint(orders[len(orders)-1].id)
	mu.Unlock()
	var wo struct {
		ID          int64
		Description string
	}
	s2.getJSON("/api/v1/workorders/"+last, &wo)
	if fmt.Sprint(wo.ID) != last || !strings.HasPrefix(wo.Description, "backup load") {
		t.Errorf("restored work order %s: %+v", last, wo)
	}
	s2.stop(syscall.SIGTERM)
}
