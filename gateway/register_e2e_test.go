package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/propgate/gateway/internal/testenv"
)

func (s *site) do(method, path, token, body string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, []byte(b.String())
}

// The demo site's register, contacts and inspections over the API (who may
// see what), then an inspector entering the pump-room checkpoint in the
// console, opened by its QR code, in headless Chromium: the pressure gauge
// entry disagreeing with the live reading is flagged on the page, and the
// reading below its range opens a work order.
func TestRegisterAndInspectionEntryInChromiumIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()

	// The wall token may not read phone numbers; engineers and above may.
	if code, _ := s.do("GET", "/api/v1/contacts", "demo-wall-display-token", ""); code != http.StatusForbidden {
		t.Fatalf("contacts with the wall token: %d", code)
	}
	if code, _ := s.do("GET", "/api/v1/assets/b3-lift-1/register", "demo-wall-display-token", ""); code != http.StatusForbidden {
		t.Fatalf("register with the wall token: %d", code)
	}
	var contacts []struct{ ID, Phone string }
	s.getJSON("/api/v1/contacts", &contacts)
	if len(contacts) < 8 || contacts[3].ID != "power-company" || contacts[3].Phone != "95598" {
		t.Fatalf("contacts: %+v", contacts)
	}
	// Operators read the register; only admins change it.
	var lift struct {
		Contractor      string
		ContractorPhone string `json:"contractor_phone"`
		Version         int
	}
	s.getJSON("/api/v1/assets/b3-lift-1/register", &lift)
	if lift.ContractorPhone != "400-820-0870" || lift.Version != 1 {
		t.Fatalf("b3-lift-1 register: %+v", lift)
	}
	if code, body := s.do("PUT", "/api/v1/assets/b3-lift-1/register", operatorToken, `{"maker":"x"}`); code != http.StatusForbidden {
		t.Fatalf("operator PUT: %d %s", code, body)
	}
	code, body := s.do("PUT", "/api/v1/assets/b3-lift-1/register", "demo-admin-token",
		fmt.Sprintf(`{"version":%d,"maker":"上海三菱","contractor":"三菱维保站","contractor_phone":"400-820-0870","certificates":[{"kind":"电梯年检","expires":"2099-01-01"}]}`, 1))
	if code != http.StatusOK {
		t.Fatalf("admin PUT: %d %s", code, body)
	}
	if code, body := s.do("PUT", "/api/v1/assets/b3-lift-1/register", "demo-admin-token", `{"version":1,"maker":"stale"}`); code != http.StatusConflict {
		t.Fatalf("stale PUT: %d %s", code, body)
	}
	code, body = s.do("POST", "/api/v1/register/import", "demo-admin-token", `{"csv":"设备编号,维保电话\nb3-lift-9,123\n","dry_run":true}`)
	if code != http.StatusBadRequest || !strings.Contains(string(body), `"row": 2`) {
		t.Fatalf("bad import: %d %s", code, body)
	}
	// The register publishes cert_days_left; the entrapment step shows this car's contractor.
	s.waitFor("cert_days_left on b3-lift-1", 10*time.Second, func() bool { _, ok := s.asset("b3-lift-1").Fields["cert_days_left"]; return ok })
	code, body = s.do("POST", "/api/v1/incidents", operatorToken, `{"playbook":"elevator-entrapment","asset":"b3-lift-1","drill":true}`)
	var in struct{ ID int64 }
	if code != http.StatusCreated || json.Unmarshal(body, &in) != nil {
		t.Fatalf("start drill: %d %s", code, body)
	}
	path := fmt.Sprintf("/api/v1/incidents/%d/contacts", in.ID)
	if code, _ := s.do("GET", path, "demo-wall-display-token", ""); code != http.StatusForbidden {
		t.Fatalf("step contacts with the wall token: %d", code)
	}
	var steps []struct {
		Step     string
		Contacts []struct{ ID, Name, Phone string }
	}
	s.getJSON(path, &steps)
	if len(steps) != 1 || steps[0].Step != "call-maintenance" || len(steps[0].Contacts) != 1 || steps[0].Contacts[0].Phone != "400-820-0870" ||
		!strings.HasPrefix(steps[0].Contacts[0].Name, "三菱维保站") {
		t.Fatalf("entrapment step contacts: %+v", steps)
	}

	// The QR codes (operators print them) and the checkpoint they open.
	var codes []struct{ Route, Checkpoint, Code, URL, PNG string }
	s.getJSON("/api/v1/inspections/codes", &codes)
	var pump string
	for _, c := range codes {
		if c.Route == "pump-room-weekly" && c.Checkpoint == "b3-pump-room" {
			pump = c.Code
			if !strings.HasPrefix(c.PNG, "data:image/png;base64,") || !strings.Contains(c.URL, "/console/inspections?code=") {
				t.Fatalf("code: %+v", c)
			}
		}
	}
	if code, _ := s.do("GET", "/api/v1/inspections/checkpoint?code="+pump[:len(pump)-2]+"xx", operatorToken, ""); code != http.StatusBadRequest {
		t.Fatalf("forged code: %d", code)
	}
	s.waitFor("pump pressure live", 15*time.Second, func() bool { _, ok := s.asset("b3-pump-room").Fields["outlet_pressure"]; return ok })

	alloc := chromium(t)
	ctx, cancel := newBrowser(alloc)
	defer cancel()
	if err := chromedp.Run(ctx); err != nil {
		t.Fatal(err)
	}
	within(t, ctx, 30*time.Second, "log in on the inspection page opened by the QR code",
		chromedp.Navigate(s.url+"/console/inspections?lang=en&code="+pump),
		chromedp.WaitVisible(`#login input[name=username]`),
		chromedp.SendKeys(`#login input[name=username]`, "wang.li"),
		chromedp.SendKeys(`#login input[name=password]`, "operator-demo"),
		chromedp.Click(`#login button[type=submit]`),
		chromedp.WaitVisible(`#entry [data-live="outlet-pressure"]`))
	var pre string
	within(t, ctx, 10*time.Second, "the gauge is pre-filled from telemetry",
		chromedp.Value(`#cpform input[name="outlet-pressure"]`, &pre))
	if pre == "" {
		t.Fatal("outlet pressure not pre-filled")
	}
	screenshot(t, ctx, "inspection-checkpoint")
	within(t, ctx, 20*time.Second, "enter the checkpoint",
		chromedp.SetValue(`#cpform input[name="outlet-pressure"]`, "0.1"),
		chromedp.SetValue(`#cpform select[name="pump-noise"]`, "yes"),
		chromedp.SetValue(`#cpform select[name="no-leak"]`, "yes"),
		chromedp.SendKeys(`#cpform input[name="outlet-pressure__note"]`, "压力表指针偏低"),
		chromedp.Click(`#cpsubmit`),
		chromedp.WaitVisible(`#cpresult tr[data-item="outlet-pressure"] [data-flagged]`))
	screenshot(t, ctx, "inspection-flagged")

	var list struct {
		Rounds []struct {
			ID       int64
			Route    string
			AdHoc    bool `json:"ad_hoc"`
			Flagged  int
			Abnormal int
			Results  []struct {
				CheckIn string `json:"check_in"`
				By      string
				Items   []struct {
					Item      string
					Flagged   bool
					WorkOrder int64 `json:"workorder"`
				}
			}
		}
	}
	s.getJSON("/api/v1/inspections?route=pump-room-weekly", &list)
	if len(list.Rounds) != 1 || !list.Rounds[0].AdHoc || list.Rounds[0].Flagged != 1 || list.Rounds[0].Abnormal != 1 {
		b, _ := json.Marshal(list)
		t.Fatalf("round: %s", b)
	}
	res := list.Rounds[0].Results[0]
	if res.CheckIn != "qr" || res.By != "wang.li" || res.Items[0].Item != "outlet-pressure" || res.Items[0].WorkOrder == 0 {
		t.Fatalf("result: %+v", res)
	}
	var wo struct{ Type, Category, Description string }
	s.getJSON(fmt.Sprintf("/api/v1/workorders/%d", res.Items[0].WorkOrder), &wo)
	if wo.Category != "plumbing" || !strings.Contains(wo.Description, "压力表指针偏低") {
		t.Fatalf("work order: %+v", wo)
	}
	// The register page lists the lifts for the admin.
	within(t, ctx, 20*time.Second, "register page",
		chromedp.Navigate(s.url+"/console/register?lang=en"),
		chromedp.WaitVisible(`#entries tr[data-asset="b5-lift-1"]`))
	screenshot(t, ctx, "register")
	// The console's entrapment drill shows this car's contractor at its step.
	within(t, ctx, 20*time.Second, "the step's contact in the console",
		chromedp.Navigate(s.url+"/console?lang=en"),
		chromedp.WaitVisible(fmt.Sprintf(`div[data-incident="%d"] .contact a[href="tel:400-820-0870"]`, in.ID)))
	// The admin edits the contacts directory on the register page: the
	// power company's notes, a new contact; both stored and audited.
	var loggedOut int
	within(t, ctx, 30*time.Second, "the admin logs in on the register page",
		chromedp.Evaluate(`fetch("/logout", {method: "POST", headers: {"Content-Type": "application/json"}}).then(r => r.status)`, &loggedOut,
			func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }),
		chromedp.Navigate(s.url+"/console/register?lang=zh"),
		chromedp.WaitVisible(`#login input[name=username]`),
		chromedp.SendKeys(`#login input[name=username]`, "admin"),
		chromedp.SendKeys(`#login input[name=password]`, "admin-demo"),
		chromedp.Click(`#login button[type=submit]`),
		chromedp.WaitVisible(`#contacts tr[data-contact="power-company"] [data-ctedit]`))
	within(t, ctx, 20*time.Second, "edit the power company's notes",
		chromedp.Click(`#contacts tr[data-contact="power-company"] [data-ctedit]`),
		chromedp.WaitVisible(`#ctform input[name=notes]`),
		chromedp.SetValue(`#ctform input[name=notes]`, "户号 3100-1188-02；先问是否计划停电"),
		chromedp.Click(`#ctsave`),
		chromedp.WaitNotVisible(`#cteditor`),
		chromedp.WaitVisible(`#contacts tr[data-contact="power-company"] [data-ctedit]`))
	within(t, ctx, 20*time.Second, "add the community clinic",
		chromedp.Click(`#ctadd`),
		chromedp.WaitVisible(`#ctform input[name=id]`),
		chromedp.SendKeys(`#ctform input[name=id]`, "community-clinic"),
		chromedp.SendKeys(`#ctform input[name=name]`, "玉山社区卫生服务中心"),
		chromedp.SetValue(`#ctform select[name=category]`, "government"),
		chromedp.SendKeys(`#ctform input[name=phone]`, "021-5888-0120"),
		chromedp.Click(`#ctsave`),
		chromedp.WaitVisible(`#contacts tr[data-contact="community-clinic"]`))
	screenshot(t, ctx, "register-contacts")
	var power struct {
		Notes     string
		UpdatedBy string `json:"updated_by"`
		Version   int
	}
	s.getJSON("/api/v1/contacts/power-company", &power)
	if power.Notes != "户号 3100-1188-02；先问是否计划停电" || power.UpdatedBy != "admin" || power.Version != 2 {
		t.Fatalf("edited contact: %+v", power)
	}
	// The power company is named by the outage plan's steps: not deletable.
	if code, body := s.do("DELETE", "/api/v1/contacts/power-company?version=2", "demo-admin-token", ""); code != http.StatusConflict {
		t.Fatalf("deleting a contact a step names: %d %s", code, body)
	}
	if code, body := s.do("DELETE", "/api/v1/contacts/community-clinic?version=1", "demo-admin-token", ""); code != http.StatusNoContent {
		t.Fatalf("deleting the new contact: %d %s", code, body)
	}
	code, body = s.do("GET", "/api/v1/audit", "demo-admin-token", "")
	var audit []struct {
		Username, Method, Path string
		Status                 int
	}
	if code != http.StatusOK || json.Unmarshal(body, &audit) != nil {
		t.Fatalf("audit: %d %.300s", code, body)
	}
	seen := map[string]bool{}
	for _, e := range audit {
		if e.Username == "admin" && e.Status < 300 {
			seen[e.Method+" "+e.Path] = true
		}
	}
	for _, want := range []string{"PUT /api/v1/contacts/power-company", "POST /api/v1/contacts", "DELETE /api/v1/contacts/community-clinic"} {
		if !seen[want] {
			t.Errorf("audit log has no %s by admin: %v", want, seen)
		}
	}

	var pm struct {
		Plans []struct{ ID string }
	}
	s.getJSON("/api/v1/maintenance", &pm)
	if len(pm.Plans) != 4 {
		t.Fatalf("maintenance plans: %+v", pm)
	}
}
