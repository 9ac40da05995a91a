package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/propgate/gateway/internal/testenv"
)

// The console's handover flow in headless Chromium on the demo site: the
// operator writes a call in the duty log, generates the summary (the open
// pump alarm is in it), signs with remarks; the admin logs in, accepts with
// a note; the record shows both signatures. The wall shows 今日值班 with
// names only.
func TestHandoverConsoleInChromiumIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	if code, body := s.postJSON("/api/v1/simulator/scenarios/pump-fault", `{"target": "b3-pump-room"}`); code != 200 {
		t.Fatalf("inject: %d %s", code, body)
	}
	s.waitFor("low-pressure alarm", 30*time.Second, func() bool { return s.alarm(lowPressure).State == "unacknowledged" })

	ctx, cancel := newBrowser(chromium(t))
	defer cancel()
	if err := chromedp.Run(ctx); err != nil {
		t.Fatal(err)
	}
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Logf("page exception: %s", e.ExceptionDetails.Error())
		}
	})
	login := func(user, pw string) []chromedp.Action {
		return []chromedp.Action{
			chromedp.WaitVisible(`#login input[name=username]`),
			chromedp.SendKeys(`#login input[name=username]`, user),
			chromedp.SendKeys(`#login input[name=password]`, pw),
			chromedp.Click(`#login button[type=submit]`),
			chromedp.WaitVisible(`#tabs`),
		}
	}
	within(t, ctx, 20*time.Second, "operator logs in to the duty page",
		append([]chromedp.Action{chromedp.Navigate(s.url + "/console/duty?lang=zh")}, login("wang.li", "operator-demo")...)...)

	// A call in the duty log, happening now.
	within(t, ctx, 10*time.Second, "write a call in the duty log",
		chromedp.Click(`#tabs button[data-tab=log]`),
		chromedp.WaitVisible(`#entry`),
		chromedp.SetValue(`#entry select[name=kind]`, "call"),
		chromedp.Click(`#entry input[name=now]`),
		chromedp.SendKeys(`#entry input[name=caller]`, "3-201 刘女士"),
		chromedp.SendKeys(`#entry textarea[name=text]`, "3号楼没水了"),
		chromedp.Click(`#entry button[type=submit]`),
		chromedp.WaitVisible(`#logList tr[data-entry]`))

	within(t, ctx, 10*time.Second, "generate the summary and sign",
		chromedp.Click(`#tabs button[data-tab=handover]`),
		chromedp.WaitReady(`#hoTeam option[value=engineering]`),
		chromedp.SetValue(`#hoTeam`, "engineering"),
		chromedp.Click(`#hoDraft`),
		chromedp.WaitVisible(`#hoSummary li[data-alarm="`+lowPressure+`"]`),
		chromedp.WaitEnabled(`#hoSign`),
		chromedp.SendKeys(`#hoRemarks`, "3号楼泵房压力低，已派单"),
		chromedp.Click(`#hoSign`),
		chromedp.WaitVisible(`#hoPending [data-handover="1"]`),
		chromedp.WaitVisible(`#hoList tr[data-handover="1"][data-status="signed"]`))
	screenshot(t, ctx, "duty-handover-signed")

	within(t, ctx, 20*time.Second, "the admin logs in and accepts",
		append(append([]chromedp.Action{chromedp.Click(`#logout`)}, login("admin", "admin-demo")...),
			chromedp.WaitVisible(`#hoPending [data-handover="1"] button[data-accept]`),
			chromedp.SendKeys(`#hoPending [data-handover="1"] .acceptNote`, "收到，继续跟进"),
			chromedp.Click(`#hoPending [data-handover="1"] button[data-accept]`),
			chromedp.WaitVisible(`#hoList tr[data-handover="1"][data-status="accepted"]`),
			chromedp.WaitNotPresent(`#hoPending [data-handover="1"]`))...)
	screenshot(t, ctx, "duty-handover-accepted")

	var h handoverView
	s.getJSON("/api/v1/handovers/1", &h)
	if h.Status != "accepted" || h.Outgoing.By != "wang.li" || h.Incoming == nil || h.Incoming.By != "admin" || h.Remarks != "3号楼泵房压力低，已派单" ||
		len(h.Summary.Alarms) == 0 || len(h.Summary.Log) != 1 || h.Summary.Log[0].Text != "3号楼没水了" {
		t.Fatalf("handover after the console flow: %+v", h)
	}

	within(t, ctx, 10*time.Second, "the roster tab shows the week and, for the admin, the editor",
		chromedp.Click(`#tabs button[data-tab=roster]`),
		chromedp.WaitVisible(`#schedule tr[data-team="engineering"]`),
		chromedp.WaitVisible(`#onDuty tr[data-team="engineering"]`),
		chromedp.WaitVisible(`#rosterSaveBtn`))
	screenshot(t, ctx, "duty-roster")
	within(t, ctx, 10*time.Second, "the admin puts the general manager on duty for engineering",
		chromedp.Click(`#rosterTeams .team[data-i="0"] button[data-addovr]`),
		chromedp.WaitVisible(`#rosterTeams .team[data-i="0"] .ovr .oPerson`),
		chromedp.SendKeys(`#rosterTeams .team[data-i="0"] .ovr .oPerson`, "sun.hua"),
		chromedp.SendKeys(`#rosterTeams .team[data-i="0"] .ovr .oNote`, "代班"),
		chromedp.SendKeys(`#rosterNote`, "孙华代班"),
		chromedp.Click(`#rosterSaveBtn`),
		chromedp.WaitVisible(`#onDuty tr[data-team="engineering"] td:nth-child(4):not(:empty)`))
	var oncall []struct{ Team, Person string }
	s.getJSON("/api/v1/oncall", &oncall)
	if oncall[0].Team != "engineering" || oncall[0].Person != "sun.hua" {
		t.Fatalf("on call after the console's roster edit: %+v", oncall)
	}

	// The wall: 今日值班 as the roster has it, names only.
	var onduty string
	within(t, ctx, 15*time.Second, "the wall shows who is on duty",
		chromedp.Navigate(s.url+"/?token=demo-wall-display-token"),
		chromedp.WaitVisible(`#onduty tr[data-team="engineering"]`),
		chromedp.Text(`#onduty`, &onduty))
	if !strings.HasPrefix(onduty, "工程部\t孙华") || strings.Contains(onduty, "138") || strings.Contains(onduty, "sun.hua") {
		t.Fatalf("on duty on the wall: %q", onduty)
	}
	screenshot(t, ctx, "wall-on-duty")
}
