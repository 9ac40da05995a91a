package main

import (
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

type plannedView struct {
	ID          int64     `json:"id"`
	Status      string    `json:"status"`
	Title       string    `json:"title"`
	Contact     string    `json:"contact"`
	CreatedBy   string    `json:"created_by"`
	AnnouncedAt time.Time `json:"announced_at"`
	Warnings    []string  `json:"warnings"`
	Tagged      []string  `json:"tagged"`
	Recovery    *struct {
		Recovered time.Time `json:"recovered"`
		Missing   []string  `json:"missing"`
	} `json:"recovery"`
}

func (s *site) plannedWork(id int64) plannedView {
	var w plannedView
	s.getJSON(fmt.Sprintf("/api/v1/planned-works/%d", id), &w)
	return w
}

func (s *site) createPlanned(body string) plannedView {
	s.t.Helper()
	code, resp := s.postJSON("/api/v1/planned-works", body)
	if code != http.StatusCreated {
		s.t.Fatalf("POST /api/v1/planned-works: %d %s", code, resp)
	}
	var w plannedView
	if err := json.Unmarshal([]byte(resp), &w); err != nil {
		s.t.Fatal(err)
	}
	return w
}

// getAs reads a path with another credential than the operator's.
func (s *site) getAs(path, token string) (int, string) {
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The test through the binary: a planned power cut in Building 3,
// announced 25 h ahead. The notice is generated; the simulator's
// power-outage scenario cuts Building 3 in the window; mains-lost is tagged
// planned (on the screens, nobody paged); the sudden-outage plan does not
// start, no emergency incident and no fault work order open; at the end
// the supply, pumps and lifts are seen back and the work is completed. The
// same cut announced 2 h ahead is accepted with a warning.
func TestPlannedPowerCutEndToEndIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	s.subscribed()
	// As the notice says, the cars are parked before the cut.
	s.postJSON("/api/v1/simulator/scenarios/lifts-parked", `{"target": "b3-power-panel"}`)
	start := time.Now().Add(3 * time.Second).Truncate(time.Second)
	end := start.Add(30 * time.Second)
	w := s.createPlanned(fmt.Sprintf(`{"kind": "power", "buildings": ["3号楼"], "area": "3号楼全楼", "lines": "10kV 2#进线",
		"start": %q, "end": %q, "announced_at": %q, "reason": "供电局对10kV线路进行检修",
		"elevators": "停电期间电梯停止运行，请勿乘坐", "safety": "请勿使用明火照明", "contact": "工程部 王立 13800000001"}`,
		start.Format(time.RFC3339), end.Format(time.RFC3339), start.Add(-25*time.Hour).Format(time.RFC3339)))
	if len(w.Warnings) != 0 || w.Status != "scheduled" || w.CreatedBy != "wang.li" {
		t.Fatalf("created %+v", w)
	}
	var notice struct{ Title, Text string }
	s.getJSON(fmt.Sprintf("/api/v1/planned-works/%d/notice", w.ID), &notice)
	for _, want := range []string{"停电通知", "因供电局对10kV线路进行检修", "对3号楼全楼停电（10kV 2#进线）", "电梯：停电期间电梯停止运行，请勿乘坐", "玉山花园物业服务中心（电话：0571-8888 6666）"} {
		if !strings.Contains(notice.Text, want) {
			t.Errorf("notice lacks %q:\n%s", want, notice.Text)
		}
	}
	resp, _ := http.Get(s.url + fmt.Sprintf("/api/v1/planned-works/%d/notice?format=html", w.ID))
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "<h1>停电通知</h1>") {
		t.Fatalf("printable notice: %s\n%s", resp.Header.Get("Content-Type"), page)
	}
	// The wall sees the work without the people; not its detail or notice.
	if code, body := s.getAs("/api/v1/planned-works", "demo-wall-display-token"); code != 200 || strings.Contains(body, "13800000001") || strings.Contains(body, "wang.li") || !strings.Contains(body, "3号楼计划停电") {
		t.Fatalf("wall list: %d %s", code, body)
	}
	if code, _ := s.getAs(fmt.Sprintf("/api/v1/planned-works/%d", w.ID), "demo-wall-display-token"); code != http.StatusForbidden {
		t.Fatalf("wall reads the work's detail: %d", code)
	}
	s.waitFor("the window starts", 20*time.Second, func() bool { return s.plannedWork(w.ID).Status == "in_progress" })
	s.postJSON("/api/v1/simulator/scenarios/power-outage", `{"target": "b3-power-panel"}`)
	var mains struct {
		State   string
		Planned *struct {
			Work int64
		}
	}
	s.waitFor("mains-lost tagged planned", 20*time.Second, func() bool {
		s.getJSON("/api/v1/alarms/mains-lost:b3-power-panel", &mains)
		return mains.State == "unacknowledged" && mains.Planned != nil
	})
	if mains.Planned.Work != w.ID {
		t.Fatalf("tagged with work %d", mains.Planned.Work)
	}
	s.waitTicks("gateway_playbook_ticks_total", 3) // the runner has looked at the active alarms again
	s.waitTicks("gateway_alert_ticks_total", 2)
	if ins := s.incidents(); len(ins) != 0 {
		t.Fatalf("incidents during a planned cut: %+v", ins)
	}
	var all, orders []workOrderView
	s.getJSON("/api/v1/workorders", &all)
	for _, o := range all {
		if !strings.HasPrefix(o.Rule, "cert-expiry-") { // the register's certificate reminders, by the demo's dates
			orders = append(orders, o)
		}
	}
	if len(orders) != 0 {
		t.Fatalf("fault work orders during a planned cut: %+v", orders)
	}
	var alerts []struct {
		AlarmID, State, Reason string
		Notified               []string
	}
	s.getJSON("/api/v1/alerts", &alerts)
	paged := false
	for _, a := range alerts {
		if a.AlarmID == "mains-lost:b3-power-panel" {
			paged = a.State != "inhibited" || len(a.Notified) > 0 || !strings.HasPrefix(a.Reason, fmt.Sprintf("planned work %d:", w.ID))
		}
	}
	if paged {
		t.Fatalf("mains-lost was paged: %+v", alerts)
	}
	// The utility restores the supply before the end.
	s.clearScenario("power-outage")
	s.waitFor("the work completed with recovery verified", 60*time.Second, func() bool { return s.plannedWork(w.ID).Status == "completed" })
	got := s.plannedWork(w.ID)
	if got.Recovery == nil || got.Recovery.Recovered.Before(end) || len(got.Recovery.Missing) != 0 || !strings.Contains(strings.Join(got.Tagged, ","), "mains-lost:b3-power-panel") {
		t.Fatalf("after the end: %+v %+v", got, got.Recovery)
	}
	if ins := s.incidents(); len(ins) != 0 {
		t.Fatalf("incidents after the planned cut: %+v", ins)
	}
	// The same cut announced only 2 h ahead: accepted, with the warning.
	late := s.createPlanned(fmt.Sprintf(`{"kind": "power", "buildings": ["3号楼"], "start": %q, "end": %q, "reason": "供电局对10kV线路进行检修"}`,
		time.Now().Add(2*time.Hour).Format(time.RFC3339), time.Now().Add(6*time.Hour).Format(time.RFC3339)))
	if len(late.Warnings) != 1 || !strings.Contains(late.Warnings[0], "提前通知不足24小时") {
		t.Fatalf("announced 2 h ahead: warnings %q", late.Warnings)
	}
	if code, body := s.postJSON("/api/v1/planned-works", `{"kind": "power", "buildings": ["Building 9"], "start": "2030-01-01T08:00:00+08:00", "end": "2030-01-01T12:00:00+08:00", "reason": "x"}`); code != 400 || !strings.Contains(body, `building \"Building 9\" is not a building of this site`) {
		t.Fatalf("bad building: %d %s", code, body)
	}
	s.stop(syscall.SIGTERM)
}
