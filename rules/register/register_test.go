package register_test

import (
	"bytes"
	"context"
	"errors"
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
