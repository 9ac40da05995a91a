package register_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/register"
	"github.com/propgate/gateway/rules/workorder"
)

var shanghai = func() *time.Location { l, _ := time.LoadLocation("Asia/Shanghai"); return l }()

var assets = []collectors.Asset{
	{ID: "b3-lift-1", Kind: collectors.KindElevator, Name: "B3 car 1", Building: "Building 3"},
	{ID: "b3-lift-2", Kind: collectors.KindElevator, Name: "B3 car 2", Building: "Building 3"},
	{ID: "b3-pump-room", Kind: collectors.KindPumpRoom, Name: "B3 pump room", Building: "Building 3"},
}

func below(v float64) *rules.Threshold { return &rules.Threshold{Below: &v} }

// The reminder rules as configs/demo.yaml ships them.
var reminderRules = []rules.Rule{
	{ID: "cert-expiry-30d", Target: rules.Target{Kind: "elevator"}, Field: register.Field, Threshold: below(31), Priority: rules.Low,
		WorkOrder: &rules.WorkOrderSpec{Category: "compliance"}},
	{ID: "cert-expiry-7d", Target: rules.Target{Kind: "elevator"}, Field: register.Field, Threshold: below(8), Priority: rules.Low},
	{ID: "cert-expiry-1d", Target: rules.Target{Kind: "elevator"}, Field: register.Field, Threshold: below(2), Priority: rules.Medium},
}

func newService(t *testing.T, s *site, cfg register.Config) *register.Service {
	t.Helper()
	cfg.SetDefaults()
	known := func(id string) bool { _, ok := s.State.Asset(id); return ok }
	if err := cfg.Validate(known); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.OpenRegister(s.DB.DB)
	if err != nil {
		t.Fatal(err)
	}
	svc := register.NewService(cfg, assets, st, s.Pipeline, s.Log, s.Clock.Now)
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

func lift(expires string) register.Entry {
	return register.Entry{Asset: "b3-lift-1", Maker: "上海三菱", Contractor: "三菱维保站", ContractorPhone: "400-820-0870", RegistrationCode: "31103101002015090012",
		Certificates: []register.Certificate{{Kind: "电梯年检", Expires: register.Date(expires)}}}
}

// A lift whose certificate expires in 7 days raises its 7-day reminder (and
// the 30-day one, with its work order), not the 1-day one; the day before,
// the 1-day one too. Renewing the certificate in the register clears them.
func TestLiftCertificateExpiringIn7DaysRaisesReminder(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, reminderRules, time.Date(2026, 11, 23, 10, 0, 0, 0, shanghai))
	svc := newService(t, s, register.Config{Assets: []register.Entry{lift("2026-11-30")}})
	svc.Publish()
	if fs, _ := s.State.Get("b3-lift-1", register.Field); fs.Value.I != 7 {
		t.Fatalf("cert_days_left = %v, want 7", fs.Value)
	}
	for id, want := range map[string]rules.AlarmState{"cert-expiry-30d:b3-lift-1": rules.StateUnacked, "cert-expiry-7d:b3-lift-1": rules.StateUnacked,
		"cert-expiry-1d:b3-lift-1": rules.StateNormal, "cert-expiry-30d:b3-lift-2": rules.StateNormal} {
		if a := s.Alarm(t, id); a.State != want {
			t.Errorf("%s: %s, want %s", id, a.State, want)
		}
	}
	ws, _ := s.DB.WorkOrders(ctx, workorder.Filter{Category: "compliance"})
	if len(ws) != 1 || ws[0].Asset != "b3-lift-1" {
		t.Fatalf("reminder work orders: %+v", ws)
	}
	e, _ := svc.Entry("b3-lift-1")
	if c := e.Certificates[0]; c.Days == nil || *c.Days != 7 || c.Status != "due" {
		t.Fatalf("certificate as read: %+v", c)
	}
	// 29 November, 23:59 Beijing time: one day left.
	s.Clock.Set(time.Date(2026, 11, 29, 23, 59, 0, 0, shanghai))
	svc.Publish()
	if a := s.Alarm(t, "cert-expiry-1d:b3-lift-1"); a.State != rules.StateUnacked || a.Priority != rules.Medium {
		t.Fatalf("1-day reminder: %s %s", a.State, a.Priority)
	}
	// The inspection is done: the admin enters the new certificate.
	e.Certificates = []register.Certificate{{Kind: "电梯年检", Expires: "2027-11-30"}}
	if _, err := svc.Put(ctx, e, "admin"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"cert-expiry-30d:b3-lift-1", "cert-expiry-7d:b3-lift-1", "cert-expiry-1d:b3-lift-1"} {
		if a := s.Alarm(t, id); a.State.Active() {
			t.Errorf("%s after renewal: %s", id, a.State)
		}
	}
	// A stale copy is refused.
	if _, err := svc.Put(ctx, e, "admin"); !errors.Is(err, register.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
}

// The YAML seed is stored once: edits made in the console survive a restart.
func TestSeedDoesNotOverwriteEdits(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, nil, time.Date(2026, 11, 23, 10, 0, 0, 0, shanghai))
	cfg := register.Config{Assets: []register.Entry{lift("2026-11-30")}}
	svc := newService(t, s, cfg)
	e, _ := svc.Entry("b3-lift-1")
	e.ContractorPhone = "021-1234-5678"
	if _, err := svc.Put(ctx, e, "admin"); err != nil {
		t.Fatal(err)
	}
	svc2 := newService(t, s, cfg)
	if e2, _ := svc2.Entry("b3-lift-1"); e2.ContractorPhone != "021-1234-5678" || e2.UpdatedBy != "admin" || e2.Version != 2 {
		t.Fatalf("after restart: %+v", e2)
	}
}

// The office's spreadsheet: Chinese headers, Excel dates, GBK encoding,
// rows of one asset adding certificates; a bad file is refused whole with
// every problem named by row and column.
func TestCSVImport(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, nil, time.Date(2026, 11, 23, 10, 0, 0, 0, shanghai))
	svc := newService(t, s, register.Config{})
	good := "设备编号,制造商,型号,安装日期,维保单位,维保电话,注册代码,证书类型,有效期至\r\n" +
		"b3-lift-1,上海三菱,LEHY-III,2015/9/18,三菱维保站,400-820-0870,31103101002015090012,电梯年检,2026/11/30\r\n" +
		"b3-pump-room,格兰富,Hydro MPC,2015-07-01,水务维保,021-6888-1234,,压力容器,2027年6月30日\r\n" +
		"b3-pump-room,,,,,,,灭火器年检,2027-02-28\r\n" +
		",,,,,,,,\r\n"
	gbk, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Import(ctx, bytes.NewReader(gbk), true, "admin")
	if err != nil || res.Rows != 3 || res.Created != 2 || !res.DryRun {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	if e, _ := svc.Entry("b3-lift-1"); e.Version != 0 {
		t.Fatal("a dry run saved")
	}
	if _, err = svc.Import(ctx, bytes.NewReader(gbk), false, "admin"); err != nil {
		t.Fatal(err)
	}
	e, _ := svc.Entry("b3-lift-1")
	if e.Maker != "上海三菱" || e.Installed != "2015-09-18" || e.Certificates[0].Expires != "2026-11-30" || e.UpdatedBy != "admin" {
		t.Fatalf("imported lift: %+v", e)
	}
	p, _ := svc.Entry("b3-pump-room")
	if len(p.Certificates) != 2 || p.Certificates[0].Expires != "2027-06-30" || p.Certificates[1].Kind != "灭火器年检" {
		t.Fatalf("imported pump room: %+v", p.Certificates)
	}

	bad := "\ufeff设备编号,制造商,维保电话,有效期至,证书类型,颜色\n" +
		"b3-lift-1,x,400-820-0870,2026-11-30,电梯年检,red\n"
	_, err = svc.Import(ctx, strings.NewReader(bad), false, "admin")
	var ie *register.ImportError
	if !errors.As(err, &ie) || len(ie.Rows) != 1 || ie.Rows[0].Row != 1 || ie.Rows[0].Column != "颜色" {
		t.Fatalf("unknown column: %v", err)
	}
	bad = "设备编号,制造商,维保电话,证书类型,有效期至\n" +
		"b3-lift-9,x,,,\n" +
		"b3-lift-2,x,call me,,\n" +
		"b3-lift-1,x,,电梯年检,next year\n"
	_, err = svc.Import(ctx, strings.NewReader(bad), false, "admin")
	if !errors.As(err, &ie) || len(ie.Rows) != 3 {
		t.Fatalf("bad rows: %v", err)
	}
	want := []register.RowError{{Row: 2, Column: "asset"}, {Row: 3, Column: "contractor_phone"}, {Row: 4, Column: "cert_expires"}}
	for i, w := range want {
		if ie.Rows[i].Row != w.Row || ie.Rows[i].Column != w.Column {
			t.Errorf("row error %d: %+v, want row %d column %s", i, ie.Rows[i], w.Row, w.Column)
		}
	}
	if !strings.Contains(ie.Rows[0].Msg, `"b3-lift-9" is not declared`) {
		t.Errorf("message: %s", ie.Rows[0].Msg)
	}
	if e2, _ := svc.Entry("b3-lift-1"); e2.Maker != "上海三菱" {
		t.Fatal("a refused import changed the register")
	}
}

func TestResolveStepContacts(t *testing.T) {
	s := newSite(t, assets, nil, time.Date(2026, 11, 23, 10, 0, 0, 0, shanghai))
	svc := newService(t, s, register.Config{Assets: []register.Entry{lift("2027-01-01")},
		Contacts: []register.Contact{{ID: "power-company", Name: "供电公司", Category: "utility", Phone: "95598"}}})
	cs := svc.Resolve([]string{register.AssetContractor, "power-company"}, "b3-lift-1")
	if len(cs) != 2 || cs[0].Phone != "400-820-0870" || !strings.HasPrefix(cs[0].Name, "三菱维保站") || cs[1].Phone != "95598" {
		t.Fatalf("resolved: %+v", cs)
	}
	if cs := svc.Resolve([]string{register.AssetContractor}, "b3-lift-2"); len(cs) != 0 {
		t.Fatalf("no register entry: %+v", cs)
	}
}

// The contacts directory: the YAML seeds it; an admin's changes and
// deletions are stored and survive a restart (the seed brings nothing
// back); a contact a playbook step names cannot be deleted; steps resolve
// to the edited numbers.
func TestContactsEditedByAdmins(t *testing.T) {
	ctx := context.Background()
	s := newSite(t, assets, nil, time.Date(2026, 11, 23, 10, 0, 0, 0, shanghai))
	cfg := register.Config{Contacts: []register.Contact{
		{ID: "police", Name: "报警", Category: "emergency", Phone: "110"},
		{ID: "fire-brigade", Name: "火警", Category: "emergency", Phone: "119"},
		{ID: "power-company", Name: "供电公司", Category: "utility", Phone: "95598"},
		{ID: "community-office", Name: "社区居委会", Category: "government", Phone: "021-5888-0101"},
	}, StepContacts: map[string]string{"power-company": "playbook power-outage, step call-utility"}}
	svc := newService(t, s, cfg)
	ids := func() string {
		var out []string
		for _, c := range svc.Contacts() {
			out = append(out, c.ID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(); got != "police,fire-brigade,power-company,community-office" {
		t.Fatalf("seeded directory in the config's order: %s", got)
	}
	// The admin changes the power company's notes, adds the lift contractor
	// and deletes the community office.
	p, err := svc.Contact("power-company")
	if err != nil || p.Version != 1 {
		t.Fatalf("seeded contact: %+v %v", p, err)
	}
	p.Notes = "户号 3100-1188-02；先问是否计划停电"
	if p, err = svc.PutContact(ctx, p, "admin"); err != nil || p.Version != 2 || p.UpdatedBy != "admin" || !p.Updated.Equal(s.Clock.Now()) {
		t.Fatalf("edit: %+v %v", p, err)
	}
	if _, err := svc.PutContact(ctx, register.Contact{ID: "lift-kone", Name: "通力电梯", Category: "contractor", Phone: "400-880-5663", Assets: []string{"b3-lift-2"}}, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutContact(ctx, register.Contact{ID: "lift-kone", Name: "重复", Category: "contractor", Phone: "1234"}, "admin"); !errors.Is(err, register.ErrConflict) {
		t.Fatalf("adding an id that exists: %v", err)
	}
	if _, err := svc.PutContact(ctx, register.Contact{ID: "x", Name: "x", Category: "utility", Phone: "call me"}, "admin"); err == nil || !strings.Contains(err.Error(), "phone") {
		t.Fatalf("a bad phone: %v", err)
	}
	if err := svc.DeleteContact(ctx, "community-office", 9, "admin"); !errors.Is(err, register.ErrConflict) {
		t.Fatalf("deleting a stale version: %v", err)
	}
	if err := svc.DeleteContact(ctx, "community-office", 1, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteContact(ctx, "power-company", 2, "admin"); !errors.Is(err, register.ErrInUse) || !strings.Contains(err.Error(), "call-utility") {
		t.Fatalf("deleting a contact a step names: %v", err)
	}
	stale := p
	stale.Version = 1
	if _, err := svc.PutContact(ctx, stale, "admin"); !errors.Is(err, register.ErrConflict) {
		t.Fatalf("a stale edit: %v", err)
	}

	// A restart: the stored directory wins over the seed.
	svc = newService(t, s, cfg)
	if got := ids(); got != "police,fire-brigade,power-company,lift-kone" {
		t.Fatalf("after the restart: %s", got)
	}
	if _, err := svc.Contact("community-office"); !errors.Is(err, register.ErrNotFound) {
		t.Fatalf("deleted contact: %v", err)
	}
	cs := svc.Resolve([]string{"power-company", "community-office", "lift-kone"}, "b3-lift-2")
	if len(cs) != 2 || cs[0].Notes != "户号 3100-1188-02；先问是否计划停电" || cs[1].Phone != "400-880-5663" {
		t.Fatalf("resolved: %+v", cs)
	}
	// Re-adding a deleted id continues its versions.
	c, err := svc.PutContact(ctx, register.Contact{ID: "community-office", Name: "玉山社区居委会", Category: "government", Phone: "021-5888-0102"}, "admin")
	if err != nil || c.Version != 3 {
		t.Fatalf("re-added: %+v %v", c, err)
	}
}

// A warranty ending in 7 days raises the 30- and 7-day warranty reminders,
// like the certificates; once it has ended, the reminders clear (floor 0).
func TestWarrantyEndReminder(t *testing.T) {
	ctx := context.Background()
	zero := 0.0
	var rs []rules.Rule
	for _, d := range []float64{31, 8, 2} {
		rs = append(rs, rules.Rule{ID: fmt.Sprintf("warranty-end-%.0fd", d-1), Target: rules.Target{Kind: "pump_room"}, Field: register.WarrantyField,
			Threshold: &rules.Threshold{Below: &d, Floor: &zero}, Priority: rules.Low})
	}
	s := newSite(t, assets, rs, time.Date(2026, 11, 23, 10, 0, 0, 0, shanghai))
	svc := newService(t, s, register.Config{Assets: []register.Entry{{Asset: "b3-pump-room", Maker: "格兰富", WarrantyEnd: "2026-11-30"}}})
	svc.Publish()
	if fs, _ := s.State.Get("b3-pump-room", register.WarrantyField); fs.Value.I != 7 {
		t.Fatalf("warranty_days_left = %v, want 7", fs.Value)
	}
	for id, want := range map[string]rules.AlarmState{"warranty-end-30d:b3-pump-room": rules.StateUnacked, "warranty-end-7d:b3-pump-room": rules.StateUnacked,
		"warranty-end-1d:b3-pump-room": rules.StateNormal} {
		if a := s.Alarm(t, id); a.State != want {
			t.Errorf("%s: %s, want %s", id, a.State, want)
		}
	}
	// The last day of the warranty: the 1-day reminder too.
	s.Clock.Set(time.Date(2026, 11, 30, 9, 0, 0, 0, shanghai))
	svc.Publish()
	if a := s.Alarm(t, "warranty-end-1d:b3-pump-room"); a.State != rules.StateUnacked {
		t.Fatalf("last day: %s", a.State)
	}
	// The day after: the warranty has ended, nothing left to remind of.
	s.Clock.Set(time.Date(2026, 12, 1, 9, 0, 0, 0, shanghai))
	svc.Publish()
	if fs, _ := s.State.Get("b3-pump-room", register.WarrantyField); fs.Value.I != -1 {
		t.Fatalf("the day after the end: warranty_days_left = %v, want -1", fs.Value)
	}
	for _, id := range []string{"warranty-end-30d:b3-pump-room", "warranty-end-7d:b3-pump-room", "warranty-end-1d:b3-pump-room"} {
		if a := s.Alarm(t, id); a.State.Active() {
			t.Errorf("%s after the end: %s", id, a.State)
		}
	}
	// An extended warranty entered in the register: still no reminder.
	e, _ := svc.Entry("b3-pump-room")
	e.WarrantyEnd = "2028-11-30"
	if _, err := svc.Put(ctx, e, "admin"); err != nil {
		t.Fatal(err)
	}
	if fs, _ := s.State.Get("b3-pump-room", register.WarrantyField); fs.Value.I < 700 {
		t.Fatalf("extended warranty: %v", fs.Value)
	}
}

// Days left count whole days in the site's time zone, the past too: the day
// after a certificate's last valid day it is expired (-1), not "0 days".
func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 12, 1, 23, 30, 0, 0, shanghai)
	for d, want := range map[register.Date]int{"2026-11-29": -2, "2026-11-30": -1, "2026-12-01": 0, "2026-12-02": 1, "2027-12-01": 365} {
		if got, ok := d.DaysLeft(now, shanghai); !ok || got != want {
			t.Errorf("%s: %d, want %d", d, got, want)
		}
	}
	ny, _ := time.LoadLocation("America/New_York") // 2026-03-08 is 23 hours long
	if got, _ := register.Date("2026-03-09").DaysLeft(time.Date(2026, 3, 7, 12, 0, 0, 0, ny), ny); got != 2 {
		t.Errorf("across DST: %d, want 2", got)
	}
}
