package dashboard

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
)

// The hub's hand-written points message is what encoding/json writes.
func FuzzPointsMsgMatchesJSON(f *testing.F) {
	f.Add("b3-pump", "outlet_pressure", "MPa", 0.42, int64(3), uint8(1), uint8(0), int64(1764900000123456789), "")
	f.Add("电梯<1>", "door&\"x\"", "°C", math.Inf(1), int64(-7), uint8(4), uint8(2), int64(-62135596800000000000/1e9), "开\u2028\x01\xff")
	f.Add("a", "b", "", math.NaN(), int64(0), uint8(2), uint8(1), int64(0), "wet")
	f.Add("a", "b", "", 1e21, int64(0), uint8(0), uint8(0), int64(1), "")
	f.Fuzz(func(t *testing.T, asset, field, unit string, fv float64, iv int64, typ, q uint8, ns int64, sv string) {
		v := collectors.Value{Type: collectors.ValueType(typ % 5), F: fv, I: iv, B: iv%2 == 0, S: sv}
		changes := []collectors.FieldChange{
			{Asset: asset, Field: field, FieldState: collectors.FieldState{Value: v, Unit: unit, Quality: collectors.Quality(q % 4), Time: time.Unix(0, ns).UTC()}},
			{Asset: "s0001", Field: "t", FieldState: collectors.FieldState{Value: collectors.Float(21.5), Quality: collectors.QualityGood, Time: time.Unix(0, ns).In(time.FixedZone("CST", 8*3600))}},
		}
		want, err := json.Marshal(PointsMsg{Type: "points", Points: changes})
		got := appendPointsMsg([]byte("prefix"), changes)
		if err != nil {
			// encoding/json refuses (a year beyond 9999): so does the fallback.
			if !bytes.Equal(got, []byte("prefix")) {
				t.Fatalf("encoding/json failed (%v) but appendPointsMsg wrote %s", err, got)
			}
			return
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("appendPointsMsg:\n%s\nencoding/json:\n%s", got[len("prefix"):], want)
		}
		if nilWant, _ := json.Marshal(PointsMsg{Type: "points"}); !bytes.Equal(appendPointsMsg(nil, nil), nilWant) {
			t.Fatalf("no changes: %s, want %s", appendPointsMsg(nil, nil), nilWant)
		}
	})
}
