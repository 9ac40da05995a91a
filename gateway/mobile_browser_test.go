package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/propgate/gateway/internal/testenv"
)

// tinyPNG is a 1×1 PNG: the photo the engineer takes.
const tinyPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

// docShot saves a screenshot for the docs (docs/screenshots/) as well as
// the test output.
// the test output; the screen as it is seen (the viewport), not the whole page.
func docShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var b []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&b)); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := filepath.Join(os.TempDir(), "gateway-screenshots")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
	t.Logf("screenshot: %s", filepath.Join(dir, name+".png"))
	if os.Getenv("UPDATE_SCREENSHOTS") != "" {
		if err := os.WriteFile(filepath.Join(testenv.RepoRoot(t), "docs", "screenshots", name+".png"), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// phone emulates the engineer's phone: 390×844, touch.
func phone(t *testing.T, alloc context.Context) context.Context {
	t.Helper()
	ctx, cancel := newBrowser(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx, emulation.SetDeviceMetricsOverride(390, 844, 2, true),
		emulation.SetTouchEmulationEnabled(true).WithMaxTouchPoints(5),
		emulation.SetUserAgentOverride("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36 MicroMessenger/8.0")); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// The engineer's phone, end to end: the entrapment's message reaches the
// engineer on call at the demo receiver; its link opens the phone page
// without a login; the engineer acknowledges, accepts the work order, says
// they are on site and completes their step with a note and a photo; the
// wall and the incident record show it with their name and the time. An
// expired and a tampered link are refused with a Chinese page.
func TestPhoneFlowInChromiumIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	var oncall []struct{ Team, Person, Name string }
	s.getJSON("/api/v1/oncall", &oncall)
	engineer, name := "", ""
	for _, o := range oncall {
		if o.Team == "engineering" {
			engineer, name = o.Person, o.Name
		}
	}
	if engineer == "" {
		t.Fatalf("nobody on call for engineering: %+v", oncall)
	}
	s.postJSON("/api/v1/simulator/scenarios/entrapment", `{"target": "b3-lift-2"}`)
	var link string
	s.waitFor("the entrapment's message to "+engineer, 30*time.Second, func() bool {
		var all []demoMsg
		s.getJSON("/demo/receiver", &all)
		for _, m := range all {
			if m.Body.To == engineer && len(m.Body.Alerts) > 0 && strings.HasPrefix(m.Body.Alerts[0], "elevator-entrapment:b3-lift-2") {
				link = regexp.MustCompile(`http\S+/m/a/\S+`).FindString(m.Body.Text)
			}
		}
		return link != ""
	})
	in := s.waitIncident("elevator-entrapment", "b3-lift-2")

	alloc := chromium(t)
	tab := phone(t, alloc)
	within(t, tab, 20*time.Second, "open the message's link on the phone",
		chromedp.Navigate(link),
		chromedp.WaitVisible(`#ack`),
		chromedp.WaitVisible(`#incident .current`),
		chromedp.WaitVisible(`#readings`))
	var text string
	within(t, tab, 5*time.Second, "read the page", chromedp.Text(`body`, &text))
	// The call button is this car's contractor from the register, not the
	// category's number in mobile.contractors.
	for _, want := range []string{"电梯困人", "3号楼", "大堂右侧", "被困人数", "处置要求", "预案当前步骤", "本链接发给：" + name, "上海三菱电梯维保站", "400-820-0870"} {
		if !strings.Contains(text, want) {
			t.Errorf("the phone page lacks %q:\n%s", want, text)
		}
	}
	// The contractor to call is the car's own, from the asset register
	// (configs/demo.yaml register:), not mobile.contractors' fallback.
	var tel string
	var hasTel bool
	within(t, tab, 5*time.Second, "the contractor's number", chromedp.AttributeValue(`#tel`, "href", &tel, &hasTel, chromedp.ByQuery))
	if tel != "tel:400-820-0870" {
		t.Errorf("the phone page calls %q, want the register's contractor for b3-lift-2 (tel:400-820-0870)", tel)
	}
	docShot(t, tab, "phone-alarm")
	within(t, tab, 10*time.Second, "acknowledge", chromedp.Click(`#ack`, chromedp.NodeVisible), chromedp.WaitVisible(`#notice`), chromedp.WaitNotPresent(`#ack`))
	if a := s.alarm("elevator-entrapment:b3-lift-2"); a.State != "acknowledged" {
		t.Fatalf("after the phone's ack: %s", a.State)
	}
	within(t, tab, 10*time.Second, "accept the work order", chromedp.Click(`#accept`, chromedp.NodeVisible), chromedp.WaitNotPresent(`#accept`))
	within(t, tab, 10*time.Second, "on site", chromedp.Click(`#onsite`, chromedp.NodeVisible), chromedp.WaitNotPresent(`#onsite`), chromedp.WaitVisible(`#notice`))
	photo := filepath.Join(t.TempDir(), "car.png")
	data, _ := base64.StdEncoding.DecodeString(tinyPNG)
	os.WriteFile(photo, data, 0o644)
	step := `li[data-step="people"]`
	within(t, tab, 10*time.Second, "complete my step with a note and a photo",
		chromedp.WaitVisible(step+` textarea`),
		chromedp.SendKeys(step+` textarea`, "两名乘客情绪稳定，已通过对讲安抚"),
		chromedp.SetUploadFiles(step+` input[type=file]`, []string{photo}),
		chromedp.Click(step+` button`, chromedp.NodeVisible),
		chromedp.WaitVisible(`#notice`),
		chromedp.WaitNotPresent(step+` form`))
	within(t, tab, 5*time.Second, "scroll to the step", chromedp.ScrollIntoView(step))
	docShot(t, tab, "phone-step-done")

	// The incident record: the step done by the engineer, by name, with the
	// note and the photo; the work order accepted and on site by them.
	var detail struct {
		Steps []struct {
			ID, By, Note, Status string
			Done                 time.Time
		}
		Timeline []struct{ By, Kind, Text string }
	}
	s.getJSON(fmt.Sprintf("/api/v1/incidents/%d", in.ID), &detail)
	var photoURL string
	for _, st := range detail.Steps {
		if st.ID == "people" {
			if st.Status != "done" || st.By != name || !strings.Contains(st.Note, "两名乘客情绪稳定") || time.Since(st.Done) > time.Minute {
				t.Fatalf("the step in the record: %+v", st)
			}
		}
	}
	for _, e := range detail.Timeline {
		if e.By == name && strings.Contains(e.Text, "/api/v1/photos/") {
			photoURL = regexp.MustCompile(`/api/v1/photos/\S+`).FindString(e.Text)
		}
	}
	if photoURL == "" {
		t.Fatalf("no photo in the record's timeline: %+v", detail.Timeline)
	}
	req, _ := http.NewRequest("GET", s.url+photoURL, nil)
	req.Header.Set("Authorization", "Bearer demo-operator-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("the photo: %v %v", resp, err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != string(data) {
		t.Fatal("the stored photo differs from the one taken")
	}
	req, _ = http.NewRequest("GET", s.url+photoURL+"?token=demo-wall-display-token", nil)
	req.Header.Set("Authorization", "Bearer demo-wall-display-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("the wall token read a photo: %v %v", resp.StatusCode, err)
	}
	var wos []struct {
		ID               int64
		Status, Assignee string
		AlarmID          string `json:"alarm_id"`
	}
	s.getJSON("/api/v1/workorders", &wos)
	found := false
	var woID int64
	for _, w := range wos {
		if w.AlarmID == "elevator-entrapment:b3-lift-2" {
			found, woID = true, w.ID
			if w.Status != "on_site" || w.Assignee != name {
				t.Fatalf("the work order: %+v", w)
			}
		}
	}
	if !found {
		t.Fatalf("no work order for the entrapment: %+v", wos)
	}

	// The wall shows who did it and when.
	wall, cancel := chromedp.NewContext(tab) // a second tab of the same browser
	defer cancel()
	if err := chromedp.Run(wall, emulation.SetDeviceMetricsOverride(1920, 1080, 1, false)); err != nil {
		t.Fatal(err)
	}
	var lastDone, woBy string
	within(t, wall, 20*time.Second, "the wall shows the engineer's step",
		chromedp.Navigate(s.url+"/?token=demo-wall-display-token&lang=zh"),
		// Read in one go in the page: the wall redraws its lists on every
		// change, so a node found first may be gone when its text is read.
		chromedp.Poll(fmt.Sprintf(`(document.querySelector('#incidents [data-incident="%d"] .lastdone[data-step="people"]') || {}).textContent`, in.ID), &lastDone),
		chromedp.Poll(fmt.Sprintf(`(document.querySelector('#workorders tr[data-workorder="%d"] .by') || {}).textContent`, woID), &woBy))
	if !strings.Contains(lastDone, name) || !regexp.MustCompile(`\d\d:\d\d:\d\d`).MatchString(lastDone) || woBy != name {
		t.Fatalf("the wall says %q and %q, want %s with the time", lastDone, woBy, name)
	}

	// A changed link and an expired one: 403 with a Chinese page.
	u, _ := url.Parse(link)
	q := u.Query()
	q.Set("by", "zhou.jun")
	for what, l := range map[string]string{"tampered": s.url + u.Path + "?" + q.Encode()} {
		within(t, tab, 10*time.Second, what+" link", chromedp.Navigate(l), chromedp.WaitVisible(`h1.no`), chromedp.Text(`h1`, &text))
		if !strings.Contains(text, "链接无效") {
			t.Fatalf("%s link: %q", what, text)
		}
		docShot(t, tab, "phone-refused")
		resp, err := http.Get(l)
		if err != nil || resp.StatusCode != 403 {
			t.Fatalf("%s link answered %v %v", what, resp.StatusCode, err)
		}
	}
	// A link signed properly (the demo's published secret) whose time is up.
	id, _ := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/m/a/"))
	exp := fmt.Sprint(time.Now().Add(-time.Minute).Unix())
	mac := hmac.New(sha256.New, []byte("demo-only-link-secret-change-me"))
	mac.Write([]byte(id + "\n" + engineer + "\n" + exp))
	expired := s.url + u.EscapedPath() + "?" + url.Values{"by": {engineer}, "exp": {exp}, "sig": {hex.EncodeToString(mac.Sum(nil))}}.Encode()
	within(t, tab, 10*time.Second, "expired link", chromedp.Navigate(expired), chromedp.WaitVisible(`h1.no`), chromedp.Text(`h1`, &text))
	if !strings.Contains(text, "链接已过期") {
		t.Fatalf("expired link: %q", text)
	}
	if resp, err := http.Get(expired); err != nil || resp.StatusCode != 403 {
		t.Fatalf("the expired link answered %v %v", resp.StatusCode, err)
	}
}
