package dashboard

import (
	"bytes"
	"fmt"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/rules/playbook"
)

// mobileSite is the alerts site with the phone pages mounted (no incidents
// or work orders: the alarm's own page).
func mobileSite(t *testing.T) (*alertsSite, string) {
	s := newAlertsSite(t, alerts.ChannelConfig{Type: alerts.WeCom, URL: okReceiver(t).URL}, AlertsOptions{TimeZone: time.FixedZone("CST", 8*3600)})
	dir := t.TempDir()
	cfg := MobileConfig{}
	cfg.SetDefaults(dir)
	s.api.MountMobile(Mobile{Links: s.router, Config: cfg, Loc: time.FixedZone("CST", 8*3600)})
	return s, dir
}

func formOf(t *testing.T, page, act string) (string, url.Values) {
	t.Helper()
	re := regexp.MustCompile(`(?s)<form method="post" data-act="(\w+)" action="([^"]+)"[^>]*>(.*?)</form>`)
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		if m[1] != act {
			continue
		}
		v := url.Values{}
		for _, f := range regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`).FindAllStringSubmatch(m[3], -1) {
			v.Set(f[1], html.UnescapeString(f[2]))
		}
		return html.UnescapeString(m[2]), v
	}
	t.Fatalf("no %s form in\n%s", act, page)
	return "", nil
}

// The link in an alarm message opens the phone page without a login: what,
// where, since when, for whom, in Chinese; the button acknowledges once in
// the person's name; a changed or expired link answers 403 with a Chinese page.
func TestPhoneAlarmPageAcknowledgesOnce(t *testing.T) {
	s, _ := mobileSite(t)
	al := s.fire(t)
	raw := s.router.AckLink(al, "wang", at0)
	u, _ := url.Parse(raw)
	if !strings.HasPrefix(u.Path, "/m/a/") {
		t.Fatalf("the message links to %s, not the phone page", raw)
	}
	link := s.srv.URL + u.RequestURI()
	code, h, page := doAs(t, "GET", link, "", "", "")
	if code != 200 || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET: %d %v", code, h)
	}
	for _, want := range []string{"报警 · 电梯困人", "紧急", "3号楼, 大堂左梯", "11-02 22:00:00", "本链接发给：王立 Wang Li", "确认收到，我来处理"} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %q:\n%s", want, page)
		}
	}
	if len(s.src.acks) != 0 {
		t.Fatal("opening the page acknowledged")
	}
	action, form := formOf(t, page, "ack")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(s.srv.URL+action, form)
	if err != nil || resp.StatusCode != http.StatusSeeOther || fmt.Sprint(s.src.acks) != "[elevator-entrapment:lift by 王立 Wang Li]" {
		t.Fatalf("ack: %v %v %v", resp, err, s.src.acks)
	}
	resp.Body.Close()
	if code, _, page := doAs(t, "GET", s.srv.URL+resp.Header.Get("Location"), "", "", ""); code != 200 || !strings.Contains(page, "已记录") || strings.Contains(page, `value="ack"`) {
		t.Fatalf("after the ack: %d\n%s", code, page)
	}
	resp, _ = noRedirect.PostForm(s.srv.URL+action, form)
	if resp.StatusCode != http.StatusConflict || len(s.src.acks) != 1 {
		t.Fatalf("second use: %d %v", resp.StatusCode, s.src.acks)
	}
	resp.Body.Close()
	tampered := url.Values{"by": {"wang"}, "exp": {u.Query().Get("exp")}, "sig": {"00" + u.Query().Get("sig")[2:]}}
	if code, _, page := doAs(t, "GET", s.srv.URL+u.Path+"?"+tampered.Encode(), "", "", ""); code != 403 || !strings.Contains(page, "链接无效") {
		t.Fatalf("tampered: %d\n%s", code, page)
	}
	s.now = at0.Add(48 * time.Hour)
	if code, _, page := doAs(t, "GET", link, "", "", ""); code != 403 || !strings.Contains(page, "链接已过期") || !strings.Contains(page, `lang="zh"`) {
		t.Fatalf("expired: %d\n%s", code, page)
	}
}

// Photos are images by their content, within the size limit; anything
// else is refused before it is stored.
func TestPhonePhotoMustBeAnImage(t *testing.T) {
	x := &mobileAPI{m: Mobile{Config: MobileConfig{PhotoDir: t.TempDir(), MaxPhotoMB: 1}}}
	post := func(name string, data []byte) (string, error) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("photo", name)
		fw.Write(data)
		mw.Close()
		r, _ := http.NewRequest("POST", "/m/i/1", &body)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			t.Fatal(err)
		}
		p, err := x.readPhoto(r)
		if err != nil {
			return "", err
		}
		return x.storePhoto(p, &mobileView{Incident: incidentWithID(7)})
	}
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...)
	name, err := post("a.png", png)
	if err != nil || !photoNameRE.MatchString(name) || !strings.HasPrefix(name, "incident-7-") || !strings.HasSuffix(name, ".png") {
		t.Fatalf("png: %q %v", name, err)
	}
	if b, _ := os.ReadFile(filepath.Join(x.m.Config.PhotoDir, name)); !bytes.Equal(b, png) {
		t.Fatal("stored photo differs")
	}
	for what, data := range map[string][]byte{"html named .jpg": []byte("<html><script>alert(1)</script></html>"), "too big": append([]byte("\xff\xd8\xff\xe0"), make([]byte, 1<<20)...)} {
		if name, err := post("x.jpg", data); err == nil || !strings.Contains(err.Error(), "照片必须是图片文件") {
			t.Errorf("%s: stored as %q (%v)", what, name, err)
		}
	}
	if entries, _ := os.ReadDir(x.m.Config.PhotoDir); len(entries) != 1 {
		t.Fatalf("%d files stored, want 1", len(entries))
	}
}

func incidentWithID(id int64) *playbook.Incident { return &playbook.Incident{ID: id} }
