package centerkpi

import (
	"math"
	"testing"

	"github.com/propgate/gateway/internal/replication"
)

// A site's day counts only when it is plausible: its key the real date it
// names, figures finite and 0 ≤ down ≤ asset ≤ the cap.
func TestPlausibleDay(t *testing.T) {
	good := replication.GoodOrderDay{Day: "2026-11-10", AssetSeconds: 86400 * 50, DownSeconds: 3600,
		Kinds: map[string]replication.GoodOrderTime{"pump_room": {AssetSeconds: 86400, DownSeconds: 3600}}}
	if !plausibleDay("2026-11-10", good) {
		t.Fatal("a real day refused")
	}
	bad := map[string]func(d *replication.GoodOrderDay) string{
		"key not a date":        func(d *replication.GoodOrderDay) string { d.Day = "2026-11-10a"; return "2026-11-10a" },
		"key and day differ":    func(d *replication.GoodOrderDay) string { d.Day = "2026-11-11"; return "2026-11-10" },
		"down beyond the asset": func(d *replication.GoodOrderDay) string { d.DownSeconds = 1e308; return d.Day },
		"negative down":         func(d *replication.GoodOrderDay) string { d.DownSeconds = -5; return d.Day },
		"asset outweighs all":   func(d *replication.GoodOrderDay) string { d.AssetSeconds = 1e18; return d.Day },
		"NaN":                   func(d *replication.GoodOrderDay) string { d.AssetSeconds = math.NaN(); return d.Day },
		"a kind's down > asset": func(d *replication.GoodOrderDay) string {
			d.Kinds = map[string]replication.GoodOrderTime{"lift": {AssetSeconds: 10, DownSeconds: 20}}
			return d.Day
		},
	}
	for name, spoil := range bad {
		d := good
		key := spoil(&d)
		if plausibleDay(key, d) {
			t.Errorf("%s: counted", name)
		}
	}
}
