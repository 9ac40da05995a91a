package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

// adminToken is the demo admin's bearer token (configs/demo.yaml).
const adminToken = "demo-admin-token"

// as sends a request with a token (the default transport adds the operator's).
func (s *site) as(token, method, path, body string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type handoverView struct {
	ID       int64
	Status   string
	Remarks  string
	Outgoing struct{ By, Name string }
	Incoming *struct {
		By string
		At time.Time
	}
	Summary struct {
		Alarms       []struct{ ID string }
		WorkOrders   []struct{ ID int64 } `json:"workorders"`
		Log          []struct{ Text string }
		PlannedWorks []struct {
			ID            int64
			Title, Status string
		} `json:"planned_works"`
	}
}

// Through the binary on the demo site: a pump fault is open; the operator
// logs the resident's call and signs the handover, whose summary holds the
// alarm, its work order and the call; the admin accepts it; it survives a
// restart. The admin puts someone else on duty for engineering in the
// roster: the router pages them for the next fault, and the roster too
// survives the restart.
func TestHandoverAndRosterIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	if code, body := s.postJSON("/api/v1/simulator/scenarios/pump-fault", `{"target": "b3-pump-room"}`); code != 200 {
		t.Fatalf("inject: %d %s", code, body)
	}
	s.waitFor("low-pressure alarm", 30*time.Second, func() bool { return s.alarm(lowPressure).State == "unacknowledged" })
	at := time.Now().Add(-5 * time.Minute).Format(time.RFC3339)
	if code, body := s.postJSON("/api/v1/duty-log", `{"at":"`+at+`","kind":"call","caller":"3-201 刘女士","text":"3号楼没水了"}`); code != 201 {
		t.Fatalf("log: %d %s", code, body)
	}
	// Tomorrow morning's water stop, announced: on the handover as upcoming.
	pw := s.createPlanned(fmt.Sprintf(`{"kind": "water", "title": "5号楼水箱清洗停水", "buildings": ["5号楼"], "start": %q, "end": %q, "reason": "二次供水水箱清洗"}`,
		time.Now().Add(2*time.Hour).Format(time.RFC3339), time.Now().Add(6*time.Hour).Format(time.RFC3339)))
	code, body := s.postJSON("/api/v1/handovers", `{"team":"engineering","remarks":"3号楼泵房压力低，已派单"}`)
	if code != 201 {
		t.Fatalf("sign: %d %s", code, body)
	}
	var h handoverView
	json.Unmarshal([]byte(body), &h)
	if h.Outgoing.By != "wang.li" || len(h.Summary.Alarms) == 0 || len(h.Summary.WorkOrders) == 0 || len(h.Summary.Log) != 1 ||
		len(h.Summary.PlannedWorks) != 1 || h.Summary.PlannedWorks[0].ID != pw.ID || h.Summary.PlannedWorks[0].Status != "scheduled" {
		t.Fatalf("signed handover: %s", body)
	}
	if code, _ := s.postJSON(fmt.Sprintf("/api/v1/handovers/%d/accept", h.ID), `{}`); code != 400 {
		t.Fatalf("the outgoing operator accepted their own handover: %d", code)
	}
	if code, body := s.as(adminToken, "POST", fmt.Sprintf("/api/v1/handovers/%d/accept", h.ID), `{"note":"收到"}`); code != 200 {
		t.Fatalf("accept: %d %s", code, body)
	}

	// The roster: the general manager covers engineering for the next hour.
	var roster struct {
		Version int
		Teams   []map[string]any
	}
	s.getJSON("/api/v1/roster", &roster)
	for _, tm := range roster.Teams {
		if tm["id"] == "engineering" {
			tm["overrides"] = []map[string]any{{"person": "sun.hua", "from": time.Now().Add(-time.Minute), "to": time.Now().Add(time.Hour), "note": "代班"}}
		}
	}
	upd, _ := json.Marshal(map[string]any{"version": roster.Version, "teams": roster.Teams, "note": "孙华代班"})
	if code, _ := s.postJSON("/api/v1/roster", string(upd)); code != 405 {
		t.Fatalf("POST roster: %d", code)
	}
	if code, body := s.as(operatorToken, "PUT", "/api/v1/roster", string(upd)); code != 403 {
		t.Fatalf("operator edited the roster: %d %s", code, body)
	}
	if code, body := s.as(adminToken, "PUT", "/api/v1/roster", string(upd)); code != 200 {
		t.Fatalf("roster: %d %s", code, body)
	}
	var oncall []struct{ Team, Person string }
	s.getJSON("/api/v1/oncall", &oncall)
	if oncall[0].Team != "engineering" || oncall[0].Person != "sun.hua" {
		t.Fatalf("on call: %+v", oncall)
	}
	if code, body := s.postJSON("/api/v1/simulator/scenarios/pump-fault", `{"target": "b5-pump-room"}`); code != 200 {
		t.Fatalf("inject: %d %s", code, body)
	}
	s.waitMessage("sun.hua", "供水")

	s.stop(syscall.SIGTERM)
	s.start()
	var back handoverView
	s.getJSON(fmt.Sprintf("/api/v1/handovers/%d", h.ID), &back)
	if back.Status != "accepted" || back.Incoming == nil || back.Incoming.By != "admin" || back.Outgoing.By != "wang.li" || len(back.Summary.Alarms) == 0 {
		t.Fatalf("after restart: %+v", back)
	}
	s.getJSON("/api/v1/oncall", &oncall)
	if oncall[0].Person != "sun.hua" {
		t.Fatalf("roster after restart: %+v", oncall)
	}
	resp, err := http.Get(s.url + fmt.Sprintf("/api/v1/handovers/%d/print", h.ID))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "交接班记录") || !strings.Contains(string(page), "3号楼泵房压力低，已派单") {
		t.Fatalf("printed: %s", page)
	}
	s.stop(syscall.SIGTERM)
}
