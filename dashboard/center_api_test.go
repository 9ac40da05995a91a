package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/rules"
)

// fakeCenter is the center store and the command sender: a command is
// answered as the site would, by its key.
type fakeCenter struct {
	mu     sync.Mutex
	cmds   map[string]replication.CommandStatus
	issued []replication.Command
}

func (f *fakeCenter) Sites(context.Context, time.Time, time.Duration) ([]replication.Site, error) {
	return []replication.Site{{Site: "north-1", Online: true, ActiveAlarms: map[string]int{"high": 1}}, {Site: "south-2", ActiveAlarms: map[string]int{}}}, nil
}

func (f *fakeCenter) Records(_ context.Context, kind, site string, states []string, _ int) ([]replication.Record, error) {
	var out []replication.Record
	for _, s := range []string{"north-1", "south-2"} {
		if site == "" || site == s {
			out = append(out, replication.Record{Site: s, Kind: kind, Key: "a", State: "unacknowledged", Doc: json.RawMessage(`{"id":"a","state":"unacknowledged"}`)})
		}
	}
	return out, nil
}

func (f *fakeCenter) Command(_ context.Context, id string) (replication.CommandStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cmds[id]
	if !ok {
		return c, rules.ErrNotFound
	}
	return c, nil
}

func (f *fakeCenter) Commands(context.Context, string, int) ([]replication.CommandStatus, error) {
	return nil, nil
}

func (f *fakeCenter) Issue(_ context.Context, c replication.Command) (replication.Command, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.ID = "c-" + c.Key
	f.issued = append(f.issued, c)
	cs := replication.CommandStatus{Command: c, Status: "pending"}
	switch c.Key {
	case "ok":
		cs.Status = replication.ResultApplied
	case "gone":
		cs.Status, cs.Reason = replication.ResultRefused, "alarm gone is not active"
	}
	f.cmds[c.ID] = cs
	return c, nil
}

// The center's API answers each user within their sites: the overview
// and the lists leave other sites out, a site out of scope is refused,
// actions need the site's own roles, and an action waits for the site's
// answer (applied: 200; refused: 409 with the reason; no answer yet: 202).
func TestCenterAPIScopesAndCommands(t *testing.T) {
	f := &fakeCenter{cmds: map[string]replication.CommandStatus{}}
	a := &API{mux: http.NewServeMux()}
	a.MountCenter(Center{Store: f, Commands: f, OfflineAfter: time.Minute, Wait: 300 * time.Millisecond, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Sites: []replication.SiteInfo{{ID: "north-1", Name: "玉山花园"}}}, true)
	north := access.Principal{Username: "wang.qiang", Role: access.Operator, Sites: []string{"north-*"}}
	engineer := access.Principal{Username: "zhang.wei", Role: access.Engineer}
	do := func(p access.Principal, method, path string) (int, string) {
		r := httptest.NewRequest(method, path, strings.NewReader(`{"note":"已派人","to":"accepted"}`))
		r = r.WithContext(access.WithPrincipal(r.Context(), p))
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, r)
		var b bytes.Buffer
		if json.Compact(&b, w.Body.Bytes()) != nil {
			return w.Code, w.Body.String()
		}
		return w.Code, b.String()
	}
	if code, body := do(north, "GET", "/api/v1/sites"); code != 200 || !strings.Contains(body, `"north-1"`) || strings.Contains(body, "south-2") || !strings.Contains(body, "玉山花园") {
		t.Errorf("sites for a north user: %d %s", code, body)
	}
	if code, body := do(engineer, "GET", "/api/v1/sites"); code != 200 || !strings.Contains(body, "south-2") {
		t.Errorf("sites for a user of every site: %d %s", code, body)
	}
	if code, body := do(north, "GET", "/api/v1/alarms"); code != 200 || strings.Count(body, `"site"`) != 1 || !strings.Contains(body, `"site":"north-1"`) {
		t.Errorf("alarms for a north user: %d %s", code, body)
	}
	if code, _ := do(north, "GET", "/api/v1/alarms?site=south-2"); code != http.StatusForbidden {
		t.Errorf("another region's alarms: %d", code)
	}
	if code, _ := do(north, "POST", "/api/v1/sites/south-2/alarms/ok/ack"); code != http.StatusForbidden {
		t.Errorf("acknowledging at another region's site: %d", code)
	}
	if code, _ := do(engineer, "POST", "/api/v1/sites/north-1/alarms/ok/ack"); code != http.StatusForbidden {
		t.Errorf("an engineer acknowledging: %d", code)
	}
	if code, body := do(north, "POST", "/api/v1/sites/north-1/alarms/ok/ack"); code != 200 || !strings.Contains(body, `"status":"applied"`) {
		t.Errorf("applied: %d %s", code, body)
	}
	if code, body := do(north, "POST", "/api/v1/alarms/gone/ack?site=north-1"); code != http.StatusConflict || !strings.Contains(body, "alarm gone is not active") {
		t.Errorf("refused: %d %s", code, body)
	}
	if code, body := do(engineer, "POST", "/api/v1/sites/south-2/workorders/late/transition"); code != http.StatusAccepted || !strings.Contains(body, `"status":"pending"`) {
		t.Errorf("no answer yet: %d %s", code, body)
	}
	if code, _ := do(north, "GET", "/api/v1/commands/c-late"); code != http.StatusNotFound {
		t.Errorf("another region's command: %d", code)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.issued) != 3 || f.issued[0].By != "wang.qiang" || f.issued[0].Role != "operator" || f.issued[0].Site != "north-1" ||
		f.issued[2].Action != replication.ActionTransition || f.issued[2].To != "accepted" {
		t.Errorf("issued %+v", f.issued)
	}
}

// personCenter holds a work order and an alarm with what people wrote.
type personCenter struct{ fakeCenter }

func (f *personCenter) Records(_ context.Context, kind, site string, _ []string, _ int) ([]replication.Record, error) {
	doc := `{"id":7,"status":"opened","caller_name":"李女士","caller_phone":"13912345678","room":"3-1-1802"}`
	if kind == replication.KindAlarm {
		doc = `{"id":"a","state":"acknowledged","acked_by":"wang.qiang","ack_note":"住户李女士13912345678来电"}`
	}
	return []replication.Record{{Site: "north-1", Kind: kind, Key: "7", State: "opened", Doc: json.RawMessage(doc)}}, nil
}

// At the center the wall token gets what a site's own wall gets: no
// caller's name or number, no notes; people with a login see them.
func TestCenterWallTokenSeesNoPersonalDetails(t *testing.T) {
	f := &personCenter{fakeCenter{cmds: map[string]replication.CommandStatus{}}}
	a := &API{mux: http.NewServeMux()}
	a.MountCenter(Center{Store: f, Commands: f, OfflineAfter: time.Minute, Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, true)
	get := func(p access.Principal, path string) string {
		r := httptest.NewRequest("GET", path, nil)
		r = r.WithContext(access.WithPrincipal(r.Context(), p))
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s as %s: %d %s", path, p.Role, w.Code, w.Body)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, w.Body.Bytes()); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	wall := access.Principal{Username: "wall", Role: access.Viewer}
	for _, path := range []string{"/api/v1/workorders?status=all", "/api/v1/alarms?state=all"} {
		body := get(wall, path)
		for _, secret := range []string{"李女士", "13912345678"} {
			if strings.Contains(body, secret) {
				t.Errorf("the wall token reads %q in %s: %s", secret, path, body)
			}
		}
		if !strings.Contains(body, `"site":"north-1"`) {
			t.Errorf("%s for the wall: %s", path, body)
		}
	}
	if body := get(access.Principal{Username: "zhang.wei", Role: access.Engineer}, "/api/v1/workorders?status=all"); !strings.Contains(body, "13912345678") {
		t.Errorf("an engineer should see the caller's number: %s", body)
	}
}
