package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAPIBodies sends arbitrary bodies to every endpoint that takes one:
// each answers with a clear 4xx (or a 2xx for a body that makes sense),
// never a 5xx or a panic. `make fuzz` runs it.
func FuzzAPIBodies(f *testing.F) {
	endpoints := []struct{ method, path string }{
		{"POST", "/api/v1/alarms/low-pressure:pump/ack"},
		{"POST", "/api/v1/alarms/low-pressure:pump/shelve"},
		{"POST", "/api/v1/alarms/low-pressure:pump/unshelve"},
		{"POST", "/api/v1/alarms/low-pressure:pump/out-of-service"},
		{"POST", "/api/v1/workorders"},
		{"PATCH", "/api/v1/workorders/1"},
		{"POST", "/api/v1/workorders/1/transition"},
		{"POST", "/api/v1/simulator/scenarios/power-outage"},
	}
	for i, body := range []string{
		`{}`, `{"note": "on my way"}`, `{"minutes": 30, "note": "x"}`, `{"on": true}`,
		`{"category": "plumbing", "description": "no water", "location": "B3 12F", "priority": "high"}`,
		`{"priority": "low", "note": "not urgent"}`, `{"to": "accepted"}`, `{"target": "b3-lift-1"}`,
		`{"note": 5}`, `[]`, `null`, `{"minutes": 1e308}`, `{"to": "cancelled"}`, "{\"note\": \"\xff\"}",
	} {
		f.Add(uint8(i), body)
	}
	srv, _ := rulesServer(f)
	h := srv.Config.Handler
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		ep := endpoints[int(which)%len(endpoints)]
		req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", ep.method, ep.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error"`) {
			t.Fatalf("%s %s %q: %d without an error message: %s", ep.method, ep.path, body, rec.Code, rec.Body)
		}
		_ = http.StatusOK
	})
}
