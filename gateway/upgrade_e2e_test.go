package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

// previousRelease is the commit whose state the upgrade test carries
// forward: the last one before packaging (queue FORMAT file, state lock).
// Move it to the last release tag once there are tags.
const previousRelease = "c60dfdb16fc866a7bdbe25fd3daa0731906e5416"

// buildRelease checks rev out into a temporary git worktree and builds its
// gateway there (-trimpath: unchanged packages come from the build cache).
// It returns the binary and the worktree (for that release's configs).
func buildRelease(t *testing.T, rev string) (bin, tree string) {
	t.Helper()
	root := testenv.RepoRoot(t)
	tree = filepath.Join(t.TempDir(), "release")
	if b, err := exec.Command("git", "-C", root, "worktree", "add", "--detach", tree, rev).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s\n(the upgrade test needs the repository's history: git fetch --unshallow)", rev, err, b)
	}
	t.Cleanup(func() { exec.Command("git", "-C", root, "worktree", "remove", "--force", tree).Run() })
	bin = filepath.Join(t.TempDir(), "gateway-"+rev[:7])
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./gateway")
	cmd.Dir = tree
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", rev, err, b)
	}
	return bin, tree
}

// The previous release runs the demo site with InfluxDB down (points
// queued on disk), an outage playbook running and work orders opened; then
// the new binary starts on the same state directory with today's config:
// every alarm, work order and incident is still there (same ids, rules,
// assets, creation and start times), the queued points reach InfluxDB, and
// the queue directory is stamped with its format.
//
// Building the previous release takes minutes on a busy machine, more than
// the gateway package's share of `make test`: it runs with `make
// test-upgrade` (GATEWAY_TEST_UPGRADE=1, its own timeout).
func TestUpgradeFromPreviousReleaseStateIntegration(t *testing.T) {
	testenv.Integration(t)
	if os.Getenv("GATEWAY_TEST_UPGRADE") == "" {
		t.Skip("builds the previous release: run `make test-upgrade`")
	}
	oldBin, oldTree := buildRelease(t, previousRelease)
	in := testenv.StartInflux(t)
	broker := testenv.StartMosquitto(t)
	in.Stop()
	s := newSite(t, in, broker)
	s.bin, s.config = oldBin, filepath.Join(oldTree, "configs", "demo.yaml")
	s.start()
	s.subscribed()
	s.postJSON("/api/v1/simulator/scenarios/power-outage", "")
	s.waitFor("an incident open", 30*time.Second, func() bool {
		var ins []struct{ ID int64 }
		s.getJSON("/api/v1/incidents?status=open", &ins)
		return len(ins) > 0
	})
	for i := range 5 {
		if code, body := s.postJSON("/api/v1/workorders", fmt.Sprintf(`{"category": "plumbing", "description": "before the upgrade %d", "location": "B3 %dF"}`, i, i+1)); code != 201 {
			t.Fatalf("work order: %d %s", code, body)
		}
	}
	s.waitFor("points queued", 30*time.Second, func() bool { return s.metric("gateway_influx_queue_points") > 200 })
	s.stop(syscall.SIGTERM)
	before := dumpRecords(t, filepath.Join(s.data, "gateway.db"))
	if _, err := os.Stat(filepath.Join(s.data, "queue", "FORMAT")); err == nil {
		t.Fatal("the previous release wrote a queue FORMAT file: previousRelease is not the release before it")
	}

	in.Start()
	s.bin, s.config = "", ""
	s.start()
	s.waitFor("the old queue delivered", 60*time.Second, func() bool { return s.metric("gateway_influx_queue_points") == 0 })
	var orders []struct {
		ID          int64
		Description string
	}
	s.getJSON("/api/v1/workorders", &orders)
	n := 0
	for _, o := range orders {
		if strings.HasPrefix(o.Description, "before the upgrade") {
			n++
		}
	}
	if n != 5 {
		t.Errorf("the new gateway lists %d of the 5 work orders opened before the upgrade", n)
	}
	s.stop(syscall.SIGTERM)
	after := dumpRecords(t, filepath.Join(s.data, "gateway.db"))

	// Identity columns: alarms (id rule asset), work orders (id rule asset
	// category … created), incidents (id playbook asset … started).
	key := map[string][]int{"alarms": {0, 1, 2}, "workorders": {0, 1, 2, 3, 5}, "incidents": {0, 1, 2, 5}}
	for table, cols := range key {
		var now []string
		for _, r := range after[table] {
			now = append(now, pick(r, cols))
		}
		if len(before[table]) == 0 {
			t.Errorf("the previous release left no %s: the test proves nothing", table)
		}
		for _, r := range before[table] {
			if !slices.Contains(now, pick(r, cols)) {
				t.Errorf("%s row lost or changed by the upgrade: %s", table, pick(r, cols))
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(s.data, "queue", "FORMAT")); err != nil || string(b) != "propgate-queue 2\n" {
		t.Errorf("queue FORMAT after the upgrade: %q %v", b, err)
	}
}

func pick(row string, cols []int) string {
	f := strings.Split(row, "\t")
	var out []string
	for _, c := range cols {
		if c < len(f) {
			out = append(out, f[c])
		}
	}
	return strings.Join(out, " ")
}
