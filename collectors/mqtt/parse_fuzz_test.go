package mqtt

import (
	"testing"
	"time"
)

// FuzzParse: no payload or topic may crash the parser, and whatever it
// returns is well formed.
func FuzzParse(f *testing.F) {
	s := compiled(f, Subscription{Topic: "yushan/{building}/leak/{id}", Asset: "leak-{id}", Fields: []Field{
		{Name: "wet", Path: "state", Type: TypeBool},
		{Name: "battery", Path: "battery.level"},
		{Name: "rssi", Path: "radio.0.rssi", Type: TypeInt, Optional: true},
		{Name: "label", Path: "label", Type: TypeString, Optional: true},
	}, Timestamp: &Timestamp{Path: "ts", Format: TimeUnix}})
	f.Add("yushan/B3/leak/7", []byte(`{"state":"wet","battery":{"level":87.5},"radio":[{"rssi":-71}],"ts":1700000001.25}`))
	f.Add("yushan/B3/leak/7", []byte(`{"state":1e400,"battery":{"level":"NaN"},"ts":-1e300}`))
	f.Add("yushan//leak/", []byte(`[]`))
	f.Add("yushan/a/leak/b/c", []byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		pts, _ := Parse(s, topic, payload, time.Unix(0, 0))
		for _, p := range pts {
			if p.Asset == "" || p.Field == "" {
				t.Fatalf("point without asset or field: %+v", p)
			}
		}
	})
}
