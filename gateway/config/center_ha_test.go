package config

import "testing"

// center.ha: errors name the line of the setting and the fix.
func TestCenterHASettings(t *testing.T) {
	err := load(t, "center_ha_webhook.yaml", nil)
	want := `testdata/center_ha_webhook.yaml:11: center.ha.escalate.webhook: is not an http(s) URL; fix: e.g. https://ops.example.com/hooks/center`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
}

// center.escalate: routes by region, checked against center.sites; the
// error names the line and never shows a webhook (it carries a token).
func TestCenterEscalateSettings(t *testing.T) {
	env := map[string]string{"NORTH_HOOK_TOKEN": "n0rth-t0ken", "HQ_HOOK_TOKEN": "hq-t0ken"}
	err := load(t, "center_escalate_region.yaml", env)
	want := `testdata/center_escalate_region.yaml:13: center.escalate.routes[0].regions[1]: "东区" is no site's region, so this route would never be used; fix: one of 北区, 南区 (the regions under center.sites)`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
}
