package dashboard

import (
	"encoding/json"
	"sync/atomic"
	"testing"
)

// What a component adds (a center instance: leader or not) shows in
// /healthz, answered at each request.
func TestHealthShowsComponents(t *testing.T) {
	srv, api := newServer(t, nil)
	var leading atomic.Bool
	api.AddHealth("center", func() any { return map[string]any{"leader": leading.Load()} })
	api.SetReady(true)
	get := func() (h struct {
		Status string
		Center struct{ Leader bool }
	}) {
		_, body := call(t, "GET", srv.URL+"/healthz", "")
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("healthz: %s: %v", body, err)
		}
		return h
	}
	if h := get(); h.Status != "ok" || h.Center.Leader {
		t.Fatalf("healthz: %+v", h)
	}
	leading.Store(true)
	if h := get(); !h.Center.Leader {
		t.Fatalf("healthz after taking the lead: %+v", h)
	}
}
