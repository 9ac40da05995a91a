package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/propgate/gateway/internal/testenv"
)

// The planned-works console page in headless Chromium: the operator logs
// in, records a power cut in Building 3 starting in 2 hours, gets the
// residents' notice to copy (with the short-notice warning) and a
// printable page; the wall shows the work (without the people) and each
// plan's last drill.
func TestPlannedWorksConsoleInChromiumIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	ctx, cancel := newBrowser(chromium(t))
	defer cancel()
	if err := chromedp.Run(ctx); err != nil {
		t.Fatal(err)
	}
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Errorf("page exception: %s", e.ExceptionDetails.Error())
		}
	})
	within(t, ctx, 20*time.Second, "operator logs in to the planned-works page",
		chromedp.Navigate(s.url+"/console/planned?lang=zh"),
		chromedp.WaitVisible(`#login input[name=username]`),
		chromedp.SendKeys(`#login input[name=username]`, "wang.li"),
		chromedp.SendKeys(`#login input[name=password]`, "operator-demo"),
		chromedp.Click(`#login button[type=submit]`),
		chromedp.WaitVisible(`#pwform`))
	within(t, ctx, 20*time.Second, "record a planned power cut",
		chromedp.WaitReady(`#pwbuildings option[value="3号楼"]`),
		chromedp.SetValue(`#pwbuildings`, "3号楼"),
		chromedp.SetValue(`#pwform select[name=kind]`, "power"),
		chromedp.Evaluate(`(() => { const f = document.getElementById("pwform");
			const at = h => { const x = new Date(Date.now() + h * 3600e3); x.setMinutes(x.getMinutes() - x.getTimezoneOffset()); return x.toISOString().slice(0, 16); };
			f.start.value = at(2); f.end.value = at(6); })()`, nil),
		chromedp.SendKeys(`#pwform input[name=area]`, "3号楼全楼"),
		chromedp.SendKeys(`#pwform input[name=reason]`, "供电局对10kV线路进行检修"),
		chromedp.SendKeys(`#pwform input[name=contact]`, "工程部 王立 13800000001"),
		chromedp.Click(`#pwsave`),
		chromedp.WaitVisible(`#noticebox`),
		chromedp.WaitVisible(`#works tr[data-work="1"][data-status="scheduled"]`))
	var text, warn, rowWarn, print string
	within(t, ctx, 10*time.Second, "read the notice",
		chromedp.Value(`#noticetext`, &text),
		chromedp.Text(`#noticewarn`, &warn),
		chromedp.Text(`#works tr[data-work="1"] td[data-warnings]`, &rowWarn),
		chromedp.AttributeValue(`#noticeprint`, "href", &print, nil))
	if !strings.Contains(text, "停电通知") || !strings.Contains(text, "因供电局对10kV线路进行检修") || !strings.Contains(text, "3号楼全楼停电") {
		t.Fatalf("notice:\n%s", text)
	}
	if !strings.Contains(warn, "提前通知不足24小时") || !strings.Contains(rowWarn, "提前通知不足24小时") {
		t.Fatalf("no short-notice warning: %q / %q", warn, rowWarn)
	}
	if print != "/api/v1/planned-works/1/notice?format=html" {
		t.Fatalf("printable link %q", print)
	}
	within(t, ctx, 10*time.Second, "copy the notice",
		chromedp.Click(`#noticecopy`),
		chromedp.WaitVisible(`#noticemsg`))
	screenshot(t, ctx, "planned-works-notice")
	within(t, ctx, 10*time.Second, "record the notice posted",
		chromedp.Click(`#works tr[data-work="1"] button[data-announce]`),
		chromedp.WaitVisible(`#works tr[data-work="1"][data-status="scheduled"]`))
	w := s.plannedWork(1)
	if w.AnnouncedAt.IsZero() || w.Contact != "工程部 王立 13800000001" {
		t.Fatalf("after announce: %+v", w)
	}
	// The wall: the work in progress without the people, and the last drills.
	var wall string
	within(t, ctx, 20*time.Second, "the wall shows the work and the drills",
		chromedp.Navigate(s.url+"/?token=demo-wall-display-token"),
		chromedp.WaitVisible(`#plannedworks tr[data-work="1"]`),
		chromedp.WaitVisible(`#drills tr[data-plan="flooding"]`),
		chromedp.Text(`#plannedworks`, &wall))
	if !strings.Contains(wall, "3号楼计划停电") || strings.Contains(wall, "13800000001") || !strings.Contains(wall, "待开始") {
		t.Fatalf("wall: %q", wall)
	}
	screenshot(t, ctx, "wall-planned-works")
}
