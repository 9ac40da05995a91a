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
