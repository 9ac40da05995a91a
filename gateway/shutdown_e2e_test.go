package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

// startBusy starts the demo and puts it to work: an outage and an
// entrapment running their plans.
func (s *site) startBusy() {
	s.t.Helper()
	s.start()
	s.subscribed()
	s.postJSON("/api/v1/simulator/scenarios/power-outage", "")
	s.postJSON("/api/v1/simulator/scenarios/entrapment", `{"target": "b3-lift-2"}`)
	s.waitFor("an incident open", 30*time.Second, func() bool {
		var ins []struct{ ID int64 }
		s.getJSON("/api/v1/incidents?status=open", &ins)
		return len(ins) > 0
	})
}

// SIGTERM in the middle of an outage, with alarms firing, playbooks
// running, alerts being delivered and people opening work orders: the
// gateway stops intake first, then its services, then closes the stores,
// so nothing is written to a closed store and nothing is logged as an
// error; it exits 0, and every work order it answered 201 for is there
// after a restart.
func TestShutdownUnderLoadLogsNoStoreErrorIntegration(t *testing.T) {
	testenv.Integration(t)
	in := testenv.StartInflux(t)
	broker := testenv.StartMosquitto(t)
	s := newSite(t, in, broker)
	s.startBusy()

	// Load: four clients opening work orders and reading screens until the
	// gateway stops answering.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var created atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				body := fmt.Sprintf(`{"category": "plumbing", "description": "load %d-%d", "location": "B3 %dF"}`, i, n, n%30)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/v1/workorders", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the gateway has stopped listening
				}
				if resp.StatusCode == http.StatusCreated {
					created.Add(1)
				}
				resp.Body.Close()
				if r, err := http.Get(s.url + "/api/v1/kpis"); err == nil {
					r.Body.Close()
				}
			}
		}()
	}
	s.waitFor("work orders under load", 20*time.Second, func() bool { return created.Load() >= 40 })
	s.stop(syscall.SIGTERM) // fails the test unless it exits 0
	cancel()
	wg.Wait()

	log := s.stderr.String()
	_, after, ok := strings.Cut(log, "shutting down")
	if !ok {
		t.Fatalf("no shutdown line; log:\n%s", log)
	}
	// Deliveries to the demo's own receiver fail once HTTP has stopped
	// (the receiver is this process): that is the channel, not a store.
	for _, line := range strings.Split(after, "\n") {
		storeLine := strings.Contains(line, "database is closed") || strings.Contains(line, "sql:") ||
			strings.Contains(line, "store") || strings.Contains(line, "saving") || strings.Contains(line, "audit")
		if storeLine && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
			t.Errorf("store error logged during shutdown: %s", line)
		}
	}
	if !strings.Contains(after, "services stopped") {
		t.Errorf("the services were not waited for; log after shutdown:\n%s", after)
	}

	// Every order the gateway confirmed is in the database.
	s.start()
	var all []workOrderView
	s.getJSON("/api/v1/workorders?limit=5000", &all)
	manual := 0
	for _, w := range all {
		if w.Rule == "" {
			manual++
		}
	}
	if int64(manual) < created.Load() {
		t.Fatalf("%d work orders confirmed, %d stored", created.Load(), manual)
	}
}
