package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

// planStep is a step as GET /api/v1/incidents/{id} shows it, with the
// fields these tests check beyond incidentView's.
type planStep struct {
	ID, Status, Note string
	Started, Due     time.Time
	DeadlineSource   string `json:"deadline_source"`
	HeldAtStart      bool   `json:"held_at_start"`
	Awaiting         string `json:"awaiting_confirmation"`
}

type planIncident struct {
	ID       int64
	Building string
	Started  time.Time
	Steps    []planStep
	Record   map[string]struct {
		At            time.Time
		Source, Value string
	}
}

func (s *site) planIncident(id int64) planIncident {
	var in planIncident
	s.getJSON(fmt.Sprintf("/api/v1/incidents/%d", id), &in)
	return in
}

func (in planIncident) step(id string) planStep {
	for _, st := range in.Steps {
		if st.ID == id {
			return st
		}
	}
	return planStep{}
}

// messagesTo lists the texts the demo receiver got for a person.
func (s *site) messagesTo(person string) []string {
	var all []demoMsg
	s.getJSON("/demo/receiver", &all)
	var out []string
	for _, m := range all {
		if m.Body.To == person {
			out = append(out, m.Body.Text)
		}
	}
	return out
}

func (s *site) waitMessage(person, contains string) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("a message to %s containing %q", person, contains), 30*time.Second, func() bool {
		for _, m := range s.messagesTo(person) {
			if strings.Contains(m, contains) {
				return true
			}
		}
		return false
	})
}

// The fire panel of Building 5 alarms over its Modbus dry contact: the fire
// plan starts for that building only, with the alarm time from the panel,
// the emergency team called and due on site within 2 minutes (003); the
// elevators' fire recall and the panel's reset are recorded when they are
// seen to happen; people complete the rest and the record is complete.
// Nothing is written to any equipment.
func TestFirePlaybookEndToEndIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	injected := time.Now()
	if code, body := s.postJSON("/api/v1/simulator/scenarios/fire", `{"target": "b5-lift-1"}`); code != 200 { // any asset of Building 5
		t.Fatalf("fire scenario: %d %s", code, body)
	}
	view := s.waitIncident("fire", "b5-fire-panel")
	in := s.planIncident(view.ID)
	if in.Building != "5号楼" {
		t.Fatalf("fire incident for %q", in.Building)
	}
	if rec := in.Record["report"]; rec.Source != "telemetry" || rec.At.Before(injected.Add(-time.Second)) || rec.At.After(in.Started) {
		t.Fatalf("alarm time %+v: want the panel's alarm, between the fire (%s) and the incident (%s)", rec, injected, in.Started)
	}
	verify := in.step("verify")
	if verify.Status != "active" || verify.Due.Sub(verify.Started) != 2*time.Minute || !strings.Contains(verify.DeadlineSource, "火警为2分钟内") {
		t.Fatalf("verify step: %+v", verify)
	}
	// The emergency team (security) is called for the on-site check, the
	// duty leader is told; the rule's own alert goes out at once too.
	s.waitMessage("zhao.gang", "火灾 Fire")
	s.waitMessage("sun.hua", "火灾 Fire") // the duty leader (总经理/值班领导)
	s.waitStep(in.ID, "inform-leaders")
	if in.step("call-119").Status != "waiting" || in.step("evacuate").Status != "waiting" {
		t.Fatal("119 and the evacuation must wait for the fire to be verified on site")
	}
	s.complete(in.ID, "verify", "赵刚 1分30秒到达B5三层，302室厨房起火，火势较小 Zhao Gang on B5 floor 3 in 1:30, kitchen fire in 302, small")
	s.complete(in.ID, "call-119", "李明 拨打119，报B5三层302室厨房起火 Li Ming called 119")
	// The cars were still coming down when the step began; the record has
	// the time the recall was seen complete, from the cars themselves.
	s.waitFor("the elevators step done from the cars or held for a person", 40*time.Second, func() bool {
		st := s.planIncident(in.ID).step("elevators")
		return st.Status == "done" || st.HeldAtStart
	})
	in = s.planIncident(in.ID)
	if st := in.step("elevators"); st.HeldAtStart {
		t.Fatal("the recall was complete before the step began: the test cannot tell a seen change from a level")
	}
	if rec := in.Record["elevators"]; rec.Source != "telemetry" || !rec.At.After(in.Started) || !strings.Contains(rec.Value, "b5-lift-1.fire_recall") {
		t.Fatalf("elevators record %+v (incident started %s)", rec, in.Started)
	}
	if b3 := s.asset("b3-lift-1"); b3.Fields["fire_recall"].Value != false {
		t.Fatal("Building 3's cars were recalled for a fire in Building 5")
	}
	if _, ok := s.incidentFor("fire", "b3-fire-panel"); ok {
		t.Fatal("a fire incident for Building 3")
	}
	for step, note := range map[string]string{
		"evacuate":        "三至五层住户经东西楼梯疏散至中心广场，约40人 floors 3-5 out by both stairs, about 40 people",
		"fight-fire":      "义务消防队用灭火器2具扑救 two extinguishers used",
		"cordon":          "B5楼下设置警戒线 cordon round B5",
		"cut-power-gas":   "切断B5三层照明插座电源，关闭302燃气表前阀 floor 3 normal power and the gas to 302 off",
		"guide-engines":   "赵刚在1号门引导 at gate 1",
		"brigade-arrived": "消防车2辆 粤B-1234X、粤B-5678X 到场 two engines arrived",
		"first-aid":       "无人员受伤 nobody hurt",
	} {
		s.complete(in.ID, step, note)
	}
	cleared := time.Now()
	s.clearScenario("fire") // the fire is out and the panel reset
	s.waitStep(in.ID, "alarm-reset")
	if rec := s.planIncident(in.ID).Record["alarm_reset"]; rec.Source != "telemetry" || rec.At.Before(cleared.Add(-time.Second)) {
		t.Fatalf("alarm reset record %+v, cleared at %s", rec, cleared)
	}
	s.complete(in.ID, "brigade-left", "消防队撤离 the brigade left")
	s.complete(in.ID, "losses", "302室厨房烧毁，三层走廊熏黑 kitchen of 302 burnt, corridor sooty")
	s.complete(in.ID, "cause", "消防部门认定：油锅起火 pan fire")
	s.complete(in.ID, "review", "分析会已开：加强厨房用火宣传 meeting held")
	s.closeAndReport(in.ID, "报警时间", "紧急救援队到场时间及火情", "拨打119时间", "疏散情况", "初期扑救情况", "切断电源、燃气",
		"电梯迫降首层并停止使用", "消防队到场时间、车辆号码", "消防队离开时间", "伤者情况及送往医院", "火警复位时间", "损失情况", "起火原因", "事故分析会")
	for _, id := range []string{"b5-pump-room", "b3-pump-room"} {
		if a := s.asset(id); a.Fields["pump1_run_cmd"].Value != true || a.Fields["inlet_valve_cmd"].Value != true {
			t.Fatalf("%s commands changed during the fire plan", id)
		}
	}
	s.stop(syscall.SIGTERM)
}

// The municipal supply to Building 5's pump room is lost: the break tank
// empties and the pumps stop, the water-outage plan starts for Building 5
// with the start time from the tank-low alarm, classifies it as external
// from the controller, the residents are told through customer service
// with the expected restoration time, and the supply coming back is
// recorded when the controller shows it. Nothing is written to the pumps.
func TestWaterOutagePlaybookEndToEndIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	injected := time.Now()
	if code, body := s.postJSON("/api/v1/simulator/scenarios/water-outage", `{"target": "b5-pump-room"}`); code != 200 {
		t.Fatalf("water-outage scenario: %d %s", code, body)
	}
	view := s.waitIncident("water-outage", "b5-pump-room")
	s.waitStep(view.ID, "classify")
	in := s.planIncident(view.ID)
	if note := in.step("classify").Note; !strings.HasPrefix(note, "外部停水") {
		t.Fatalf("classified as %q, want external", note)
	}
	if rec := in.Record["start"]; rec.Source != "telemetry" || rec.At.Before(injected) || rec.At.After(in.Started) {
		t.Fatalf("start %+v: want the tank-low alarm, after the supply was cut (%s), not after the incident (%s)", rec, injected, in.Started)
	}
	if _, ok := s.incidentFor("water-outage", "b3-pump-room"); ok {
		t.Fatal("a water-outage incident for Building 3")
	}
	if b3 := s.asset("b3-pump-room"); b3.Fields["pump1_running"].Value != true {
		t.Fatal("Building 3's pumps stopped")
	}
	s.complete(in.ID, "cause", "外部停水：自来水公司称市政管网抢修，预计3小时恢复 water company: main repair, about 3 hours")
	s.waitMessage("chen.jing", "Tell the residents") // customer service is asked to tell the residents
	s.complete(in.ID, "notify-residents", "业主微信群及5号楼大堂通告：预计17:30恢复供水 WeChat group and lobby notice: back by 17:30")
	s.complete(in.ID, "check-equipment", "水箱低水位，缺水保护停泵，设备无损坏 tank low, pumps held off, no damage")
	s.complete(in.ID, "temporary-water", "预计超过2小时：大堂放置桶装水，联系送水车 bottled water in the lobby, water truck ordered")
	if st := s.planIncident(in.ID).step("supply-back"); st.Status != "active" {
		t.Fatalf("supply-back %s while the supply is still lost", st.Status)
	}
	restored := time.Now()
	s.clearScenario("water-outage") // the municipal supply is back
	s.waitStep(in.ID, "supply-back")
	in = s.planIncident(in.ID)
	if rec := in.Record["restored"]; rec.Source != "telemetry" || rec.At.Before(restored) {
		t.Fatalf("restored %+v, supply back at %s", rec, restored)
	}
	s.complete(in.ID, "verify-supply", "18层用水正常，已排气，水质清澈 top floor fine, air bled, water clear")
	s.complete(in.ID, "record", "停水约1小时，原因为市政管网抢修，无损失 about an hour, main repair, no losses")
	s.closeAndReport(in.ID, "停水开始时间", "停水原因", "向业主通报情况及预计恢复时间", "临时供水措施", "水箱、水泵检查情况", "恢复供水时间",
		"恢复供水后检查确认", "停水始末")
	if a := s.asset("b5-pump-room"); a.Fields["pump1_run_cmd"].Value != true || a.Fields["inlet_valve_cmd"].Value != true {
		t.Fatal("the plan changed the pump commands")
	}
	s.stop(syscall.SIGTERM)
}
