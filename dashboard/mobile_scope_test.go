package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/register"
	"github.com/propgate/gateway/rules/workorder"
)

// fakeOrders is the work orders as the phone page reads and moves them.
type fakeOrders struct {
	mu    sync.Mutex
	wos   map[int64]*workorder.WorkOrder
	moves []string
}

func (f *fakeOrders) add(w workorder.WorkOrder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wos[w.ID] = &w
}

func (f *fakeOrders) WorkOrder(_ context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.wos[id]; w != nil {
		c := *w
		return &c, nil, nil
	}
	return nil, nil, rules.ErrNotFound
}

func (f *fakeOrders) WorkOrders(_ context.Context, flt workorder.Filter) ([]*workorder.WorkOrder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*workorder.WorkOrder
	for _, w := range f.wos {
		if flt.Asset != "" && w.Asset != flt.Asset || flt.Open && (w.Status == workorder.Closed || w.Status == workorder.Cancelled) {
			continue
		}
		c := *w
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *workorder.WorkOrder) int { return int(a.ID - b.ID) })
	return out, nil
}

func (f *fakeOrders) Create(context.Context, workorder.WorkOrder, string) (*workorder.WorkOrder, error) {
	return nil, fmt.Errorf("not in this test")
}

func (f *fakeOrders) Transition(_ context.Context, id int64, to workorder.Status, by, _ string) (*workorder.WorkOrder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moves = append(f.moves, fmt.Sprintf("%d %s by %s", id, to, by))
	w := f.wos[id]
	w.Status = to
	c := *w
	return &c, nil
}

func (f *fakeOrders) Update(_ context.Context, id int64, u workorder.Update, _ string) (*workorder.WorkOrder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.wos[id]
	if u.Assignee != nil {
		w.Assignee = *u.Assignee
	}
	c := *w
	return &c, nil
}

func (f *fakeOrders) Callback(context.Context, int64, string, string, string) (*workorder.WorkOrder, error) {
	return nil, fmt.Errorf("not in this test")
}

func (f *fakeOrders) moved() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.moves)
}

// fakeIncidents is the incidents as the phone page reads and adds to them.
type fakeIncidents struct {
	mu       sync.Mutex
	ins      map[int64]*playbook.Incident
	evidence []string
}

func (f *fakeIncidents) add(in *playbook.Incident) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ins[in.ID] = in
}

func (f *fakeIncidents) Playbooks() []playbook.PlaybookInfo         { return nil }
func (f *fakeIncidents) Playbook(string) (*playbook.Playbook, bool) { return nil, false }

func (f *fakeIncidents) Incident(_ context.Context, id int64) (*playbook.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.ins[id]; in != nil {
		return in, nil
	}
	return nil, rules.ErrNotFound
}

func (f *fakeIncidents) Incidents(_ context.Context, open bool) ([]*playbook.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*playbook.Incident
	for _, in := range f.ins {
		if !open || in.Status == "open" {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fakeIncidents) Start(context.Context, string, string, bool, string) (*playbook.Incident, error) {
	return nil, fmt.Errorf("not in this test")
}

func (f *fakeIncidents) AddEvidence(_ context.Context, id int64, by, text string) (*playbook.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evidence = append(f.evidence, fmt.Sprintf("%d %s: %s", id, by, text))
	return f.ins[id], nil
}

func (f *fakeIncidents) Close(context.Context, int64, string, string) (*playbook.Incident, error) {
	return nil, fmt.Errorf("not in this test")
}

func (f *fakeIncidents) added() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.evidence)
}

// fakeRegister is the asset register's contractors.
type fakeRegister map[string]register.Entry

func (f fakeRegister) Entry(asset string) (register.Entry, error) {
	if e, ok := f[asset]; ok {
		return e, nil
	}
	return register.Entry{}, rules.ErrNotFound
}

// scopeSite is the alerts site with work orders, incidents and the phone
// pages mounted.
func scopeSite(t *testing.T, reg AssetContractors, contractors ...Contractor) (*alertsSite, *fakeOrders, *fakeIncidents) {
	s := newAlertsSite(t, alerts.ChannelConfig{Type: alerts.WeCom, URL: okReceiver(t).URL}, AlertsOptions{TimeZone: time.FixedZone("CST", 8*3600)})
	orders := &fakeOrders{wos: map[int64]*workorder.WorkOrder{}}
	ins := &fakeIncidents{ins: map[int64]*playbook.Incident{}}
	s.api.MountRules(Rules{Alarms: s.src, Orders: orders, WorkOrders: orders})
	s.api.MountIncidents(Incidents{Read: ins, Act: ins})
	cfg := MobileConfig{Contractors: contractors}
	cfg.SetDefaults(t.TempDir())
	s.api.MountMobile(Mobile{Links: s.router, Config: cfg, Loc: time.FixedZone("CST", 8*3600), Register: reg})
	return s, orders, ins
}

// post sends an action of the phone page as its button would (the link
// and the action in the query).
func post(t *testing.T, s *alertsSite, link *url.URL, act string) int {
	t.Helper()
	q := link.Query()
	q.Set("act", act)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).
		PostForm(s.srv.URL+link.Path+"?"+q.Encode(), url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A phone link acts only on its own alarm's work order: the order the
// alarm's rule had opened when the activation the link is about began, and
// the incident that activation started. A later activation's order and
// incident on the same asset, and a resident's report there, are out of
// its reach, though the link is still valid.
func TestPhoneLinkActsOnlyOnItsOwnAlarmsWorkOrder(t *testing.T) {
	s, orders, ins := scopeSite(t, nil)
	al := s.fire(t) // active since at0
	u, _ := url.Parse(s.router.AckLink(al, "wang", at0))
	page := func() string {
		t.Helper()
		code, _, p := doAs(t, "GET", s.srv.URL+u.RequestURI(), "", "", "")
		if code != 200 {
			t.Fatalf("page: %d\n%s", code, p)
		}
		return p
	}
	// What came later on the same asset: the alarm's next activation (its
	// rule's new order, the incident it started) and a resident's report.
	later := at0.Add(20 * time.Minute)
	orders.add(workorder.WorkOrder{ID: 2, Source: "rule", AlarmID: al.AlarmID, Asset: "lift", Category: "elevator", Status: workorder.Opened, Created: later})
	orders.add(workorder.WorkOrder{ID: 3, Source: "manual", Asset: "lift", Category: "elevator", Status: workorder.Opened, Created: at0.Add(time.Minute)})
	ins.add(&playbook.Incident{ID: 12, Name: "电梯困人", Status: "open", Asset: "lift", Trigger: "alarm " + al.AlarmID, Started: later,
		Activations: []playbook.Activation{{Alarm: al.AlarmID, Since: later}}})
	p := page()
	for _, not := range []string{`data-act="accept"`, `data-act="on_site"`, `data-incident="12"`, "#2", "#3"} {
		if strings.Contains(p, not) {
			t.Fatalf("the link's page offers %q of a later job:\n%s", not, p)
		}
	}
	for _, act := range []string{"accept", "on_site"} {
		if code := post(t, s, u, act); code != http.StatusConflict {
			t.Errorf("%s on a later job: %d", act, code)
		}
	}
	if m, e := orders.moved(), ins.added(); len(m) != 0 || len(e) != 0 {
		t.Fatalf("the link acted on later jobs: %v %v", m, e)
	}

	// Its own: the order the rule opened as this activation began, the
	// incident this activation started.
	orders.add(workorder.WorkOrder{ID: 1, Source: "rule", AlarmID: al.AlarmID, Asset: "lift", Category: "elevator", Status: workorder.Opened, Created: at0})
	ins.add(&playbook.Incident{ID: 11, Name: "电梯困人", Status: "open", Asset: "lift", Trigger: "alarm " + al.AlarmID, Started: at0.Add(2 * time.Second),
		Activations: []playbook.Activation{{Alarm: al.AlarmID, Since: at0}}})
	if p := page(); !strings.Contains(p, `data-act="accept"`) || !strings.Contains(p, `data-incident="11"`) || !strings.Contains(p, "#1") {
		t.Fatalf("the link's own order and incident are not on its page:\n%s", p)
	}
	for _, act := range []string{"accept", "on_site"} {
		if code := post(t, s, u, act); code != http.StatusSeeOther {
			t.Fatalf("%s on its own order: %d", act, code)
		}
	}
	if m := orders.moved(); fmt.Sprint(m) != "[1 accepted by 王立 Wang Li 1 on_site by 王立 Wang Li]" {
		t.Fatalf("moves: %v", m)
	}
	if e := ins.added(); len(e) != 1 || !strings.HasPrefix(e[0], "11 王立 Wang Li:") {
		t.Fatalf("on site recorded on %v, want incident 11 only", e)
	}
	// An incident's link: the order of the activation that triggered it,
	// not the rule's order for a later one.
	orders.mu.Lock()
	orders.wos[1].Status = workorder.Closed
	orders.mu.Unlock()
	iu, _ := url.Parse(s.router.IncidentLink(11, "wang", at0))
	if code, _, p := doAs(t, "GET", s.srv.URL+iu.RequestURI(), "", "", ""); code != 200 || strings.Contains(p, `data-act="accept"`) || strings.Contains(p, "#2") {
		t.Fatalf("incident 11's link offers the later order: %d\n%s", code, p)
	}
	if code := post(t, s, iu, "accept"); code != http.StatusConflict || len(orders.moved()) != 2 {
		t.Fatalf("accept through incident 11's link: %d %v", code, orders.moved())
	}
	// The order incident 11's step opened is its link's to accept.
	orders.add(workorder.WorkOrder{ID: 4, Source: "manual", Reporter: "playbook elevator-entrapment", Asset: "lift", Category: "elevator", Status: workorder.Opened, Created: at0.Add(time.Minute)})
	ins.mu.Lock()
	ins.ins[11].WorkOrders = []int64{4}
	ins.mu.Unlock()
	if code := post(t, s, iu, "accept"); code != http.StatusSeeOther || fmt.Sprint(orders.moved()[2:]) != "[4 accepted by 王立 Wang Li]" {
		t.Fatalf("accept incident 11's own order: %d %v", code, orders.moved())
	}
}

// countingBody counts what a handler read of a request's body.
type countingBody struct {
	r io.Reader
	n int
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingBody) Close() error { return nil }

// A phone page's POST checks the link (signature, expiry, single use)
// before it reads a byte of the body: a changed, expired or spent link
// with a large upload is refused unread; a valid one is read within the
// limit.
func TestPhonePostChecksTheLinkBeforeReadingTheBody(t *testing.T) {
	s, _ := mobileSite(t)
	al := s.fire(t)
	u, _ := url.Parse(s.router.AckLink(al, "wang", at0))
	photo := func() (*bytes.Buffer, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("note", "到了")
		fw, _ := mw.CreateFormFile("photo", "big.jpg")
		fw.Write(append([]byte("\xff\xd8\xff\xe0"), make([]byte, 3<<20)...))
		mw.Close()
		return &b, mw.FormDataContentType()
	}
	send := func(q url.Values) (int, int) {
		t.Helper()
		b, ct := photo()
		body := &countingBody{r: b}
		r := httptest.NewRequest("POST", u.Path+"?"+q.Encode(), body)
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		s.api.Handler().ServeHTTP(w, r)
		return w.Code, body.n
	}
	with := func(change func(q url.Values)) url.Values {
		q := u.Query()
		q.Set("act", "ack")
		change(q)
		return q
	}
	tampered := with(func(q url.Values) { q.Set("by", "boss") })
	if code, read := send(tampered); code != http.StatusForbidden || read != 0 {
		t.Fatalf("tampered link: %d, %d bytes of the body read", code, read)
	}
	valid := with(func(url.Values) {})
	if code, read := send(valid); code != http.StatusRequestEntityTooLarge || read == 0 || read > 100<<10 {
		t.Fatalf("valid link, 3 MB where a few fields belong: %d, %d bytes read (want the limit's worth)", code, read)
	}
	// Spent: acknowledged once, the same link again.
	if code := post(t, s, u, "ack"); code != http.StatusSeeOther {
		t.Fatalf("ack: %d", code)
	}
	if code, read := send(valid); code != http.StatusConflict || read != 0 {
		t.Fatalf("spent link: %d, %d bytes read", code, read)
	}
	s.now = at0.Add(48 * time.Hour)
	if code, read := send(valid); code != http.StatusForbidden || read != 0 {
		t.Fatalf("expired link: %d, %d bytes read", code, read)
	}
}

// The phone's "call the contractor" is the asset's maintenance contractor
// from the register; the configured contractor for the category only when
// the register has no number for the asset.
func TestPhonePageCallsTheRegistersContractor(t *testing.T) {
	fallback := Contractor{Category: "elevator", Name: "电梯维保单位（演示）", Phone: "400-000-0000"}
	for _, c := range []struct {
		name string
		reg  AssetContractors
		want string
	}{
		{"register", fakeRegister{"lift": {Asset: "lift", Contractor: "上海三菱电梯维保站", ContractorPhone: "400-820-0870"}}, `href="tel:400-820-0870"`},
		{"register without a number", fakeRegister{"lift": {Asset: "lift", Contractor: "上海三菱电梯维保站"}}, `href="tel:400-000-0000"`},
		{"no register", nil, `href="tel:400-000-0000"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, orders, _ := scopeSite(t, c.reg, fallback)
			al := s.fire(t)
			orders.add(workorder.WorkOrder{ID: 1, Source: "rule", AlarmID: al.AlarmID, Asset: "lift", Category: "elevator", Status: workorder.Opened, Created: at0})
			u, _ := url.Parse(s.router.AckLink(al, "wang", at0))
			_, _, p := doAs(t, "GET", s.srv.URL+u.RequestURI(), "", "", "")
			if strings.Count(p, `href="tel:`) != 1 || !strings.Contains(p, c.want) {
				t.Fatalf("want one %s:\n%s", c.want, p)
			}
		})
	}
}
