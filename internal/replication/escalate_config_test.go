package replication

import (
	"fmt"
	"strings"
	"testing"
)

var testSites = []SiteInfo{{ID: "north-1", Name: "玉山花园", Region: "北区"}, {ID: "north-2", Region: "北区"}, {ID: "south-1", Region: "南区"}, {ID: "east-1"}}

func routeIDs(rs []EscalationRoute) string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ",")
}

// An escalation goes to every route naming its site or region; to the
// default route only when no other covers it; nowhere without a default.
func TestEscalationRouting(t *testing.T) {
	e := EscalateConfig{Routes: []EscalationRoute{
		{Regions: []string{"北区"}, Webhook: "https://n.example/h"},
		{ID: "hq", Webhook: "https://hq.example/h"},
		{ID: "vip", Sites: []string{"north-2", "east-1"}, Webhook: "https://vip.example/h"},
		{ID: "south", Regions: []string{"南区"}, Webhook: "https://s.example/h"},
	}}
	e.SetDefaults()
	if err := e.Validate(testSites); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ site, region, want string }{
		{"north-1", "北区", "route-1"},
		{"north-2", "北区", "route-1,vip"},
		{"south-1", "南区", "south"},
		{"east-1", "", "vip"},
		{"west-9", "", "hq"},   // not under center.sites: the default
		{"west-8", "西区", "hq"}, // a region no route names: the default
	} {
		if got := routeIDs(e.Match(c.site, c.region)); got != c.want {
			t.Errorf("%s (%s): routes %q, want %q", c.site, c.region, got, c.want)
		}
	}
	noDefault := EscalateConfig{Routes: e.Routes[:1]}
	if got := noDefault.Match("south-1", "南区"); len(got) != 0 {
		t.Errorf("no default route: %v", got)
	}
	// The older single webhook is the default route.
	old := EscalateConfig{Webhook: "https://ops.example/h"}
	old.SetDefaults()
	if err := old.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if got := old.Match("north-1", "北区"); len(got) != 1 || got[0].ID != DefaultRoute || got[0].Webhook != "https://ops.example/h" {
		t.Errorf("single webhook: %+v", got)
	}
}

func TestEscalateConfigValidate(t *testing.T) {
	const secret = "tok3n-s3cret"
	for _, c := range []struct {
		mut  func(*EscalateConfig)
		want string
	}{
		{func(e *EscalateConfig) { e.Routes = nil }, "routes: is required"},
		{func(e *EscalateConfig) { e.Webhook = "https://x.example/" + secret }, "webhook: is set besides routes:"},
		{func(e *EscalateConfig) { e.Routes[0].Webhook = "ftp://x.example/" + secret }, "routes[0].webhook: is not an http(s) URL"},
		{func(e *EscalateConfig) { e.Routes[1].Webhook = "" }, "routes[1].webhook: is required"},
		{func(e *EscalateConfig) { e.Routes[0].Regions = []string{"北去"} }, `routes[0].regions[0]: "北去" is no site's region, so this route would never be used; fix: one of 北区, 南区`},
		{func(e *EscalateConfig) { e.Routes[0].Sites = []string{"a/b"} }, `routes[0].sites[0]: "a/b" is not a site id`},
		{func(e *EscalateConfig) { e.Routes[1].ID = "north" }, `routes[1].id: "north" is also routes[0]'s id`},
		{func(e *EscalateConfig) { e.Routes[1].ID = "总部" }, `routes[1].id: "总部" is not an id`},
		{func(e *EscalateConfig) {
			e.Routes = append(e.Routes, EscalationRoute{ID: "x", Webhook: "https://x.example/"})
		}, "routes[2]: is a second route without regions or sites"},
		{func(e *EscalateConfig) { e.Priorities = []string{"urgent"} }, `priorities: [0] "urgent" is not a priority`},
		{func(e *EscalateConfig) { e.After = -1 }, "must not be negative"},
	} {
		e := EscalateConfig{Routes: []EscalationRoute{{ID: "north", Regions: []string{"北区"}, Webhook: "https://n.example/" + secret}, {Webhook: "https://hq.example/" + secret}}}
		e.SetDefaults()
		c.mut(&e)
		err := e.Validate(testSites)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows a webhook URL: %v", err)
		}
	}
}

// center.escalate and the older center.ha.escalate: one or the other,
// errors under the key the file uses.
func TestCenterEscalationPlace(t *testing.T) {
	c := CenterConfig{Database: "postgres://x/y", Conn: Conn{Broker: "tcp://127.0.0.1:1883"}, Sites: testSites,
		HA: &HAConfig{Escalate: &EscalateConfig{Webhook: "https://ops.example/h"}}}
	c.SetDefaults("")
	c.HA.SetDefaults()
	if err := c.Validate(false); err != nil {
		t.Fatal(err)
	}
	if e := c.Escalation(); e == nil || routeIDs(e.Receivers()) != "default" {
		t.Fatalf("ha.escalate in effect: %+v", e)
	}
	c.HA.Escalate.Webhook = "mailto:x"
	if err := c.Validate(false); err == nil || !strings.HasPrefix(err.Error(), "ha.escalate.webhook: ") {
		t.Errorf("ha.escalate error: %v", err)
	}
	c.Escalate = &EscalateConfig{Routes: []EscalationRoute{{Regions: []string{"南区"}, Webhook: "https://s.example/h"}}}
	c.Escalate.SetDefaults()
	if err := c.Validate(false); err == nil || !strings.HasPrefix(err.Error(), "ha.escalate: is set besides center.escalate") {
		t.Errorf("both: %v", err)
	}
	c.HA.Escalate = nil
	c.Escalate.Routes[0].Regions[0] = "x"
	if err := c.Validate(false); err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("escalate.routes[0].regions[0]: %q", "x")) {
		t.Errorf("escalate error: %v", err)
	}
}
