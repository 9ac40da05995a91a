package alerts_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/alerts"
)

// An incident link opens the phone page for its person until it expires;
// each action on it works once; tampering with any part of it, or using
// it for another incident, is refused.
func TestIncidentLinkAuthorisesThePhonePage(t *testing.T) {
	h := newAlertHarness(t, nil)
	raw := h.r.IncidentLink(7, "wang", t0)
	u, err := url.Parse(raw)
	if err != nil || u.Path != "/m/i/7" || !strings.HasPrefix(raw, "https://gw.yushan.example/m/i/7?") {
		t.Fatalf("incident link %s: %v", raw, err)
	}
	q := u.Query()
	l := alerts.Link{Person: q.Get("by"), Exp: q.Get("exp"), Sig: q.Get("sig")}
	p, err := h.r.CheckMobileLink(l, 7)
	if err != nil || p.ID != "wang" || p.Name != "Wang Li" || fmt.Sprint(p.Roles) != "[duty_engineer]" {
		t.Fatalf("check: %+v %v", p, err)
	}
	if _, err := h.r.CheckMobileLink(l, 8); !errors.Is(err, alerts.ErrBadSignature) {
		t.Fatalf("another incident: %v", err)
	}
	if _, err := h.r.CheckMobileLink(l, 0); !errors.Is(err, alerts.ErrBadSignature) {
		t.Fatalf("as an alarm link: %v", err)
	}
	tampered := l
	tampered.Person = "boss"
	if _, err := h.r.CheckMobileLink(tampered, 7); !errors.Is(err, alerts.ErrBadSignature) {
		t.Fatalf("someone else's: %v", err)
	}
	ctx := context.Background()
	if _, err := h.r.UseMobileAction(ctx, l, 7, "on_site"); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := h.r.UseMobileAction(ctx, l, 7, "on_site"); !errors.Is(err, alerts.ErrLinkUsed) {
		t.Fatalf("second use of the same action: %v", err)
	}
	if _, err := h.r.UseMobileAction(ctx, l, 7, "step:report"); err != nil {
		t.Fatalf("another action on the same link: %v", err)
	}
	h.set(t0.Add(25 * time.Hour))
	if _, err := h.r.CheckMobileLink(l, 7); !errors.Is(err, alerts.ErrLinkExpired) {
		t.Fatalf("expired: %v", err)
	}
}
