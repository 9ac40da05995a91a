package replication

import (
	"strings"
	"testing"
	"time"
)

func TestHAConfigValidate(t *testing.T) {
	ok := HAConfig{Escalate: &EscalateConfig{Webhook: "https://ops.example.com/h"}}
	ok.SetDefaults()
	if err := ok.Validate("center-1"); err != nil {
		t.Fatalf("valid: %v", err)
	}
	if ok.Group != "center" || ok.Every != time.Second || ok.Escalate.After != 10*time.Minute || ok.Escalate.Priorities[0] != "critical" {
		t.Fatalf("defaults: %+v %+v", ok, ok.Escalate)
	}
	for _, c := range []struct {
		mut  func(*HAConfig) string
		want string
	}{
		{func(c *HAConfig) string { c.Group = "a/b"; return "center-1" }, "group: \"a/b\" cannot name a shared subscription"},
		{func(c *HAConfig) string { return "center+1" }, "client_id \"center+1\""},
		{func(c *HAConfig) string { c.Every = time.Minute; return "c" }, "every: 1m0s is out of range"},
	} {
		cfg := HAConfig{Escalate: &EscalateConfig{Webhook: "https://ops.example.com/h"}}
		cfg.SetDefaults()
		id := c.mut(&cfg)
		if err := cfg.Validate(id); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
}
