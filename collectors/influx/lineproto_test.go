package influx

import (
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
)

func TestEncodeSchema(t *testing.T) {
	assets := []collectors.Asset{
		{ID: "pump-b1", Kind: collectors.KindPumpRoom, Building: "B 3", Floor: "B1"},
		{ID: "leak,1", Kind: collectors.KindWaterSensor},
	}
	series := seriesKeys("yushan", assets)
	ts := time.Unix(1700000000, 5)
	pts := []collectors.Point{
		{Asset: "pump-b1", Field: "outlet_pressure", Value: collectors.Float(0.35), Quality: collectors.QualityGood, Time: ts},
		{Asset: "pump-b1", Field: "running", Value: collectors.Bool(true), Quality: collectors.QualityGood, Time: ts},
		{Asset: "pump-b1", Field: "starts", Value: collectors.Int(12), Quality: collectors.QualityGood, Time: ts},
		{Asset: "pump-b1", Field: "fault_code", Quality: collectors.QualityBad, Time: ts},
		{Asset: "leak,1", Field: "state", Value: collectors.String(`we"t`), Quality: collectors.QualityGood, Time: ts.Add(time.Second)},
		{Asset: "leak,1", Field: "level", Value: collectors.Float(1), Quality: collectors.QualityStale, Time: ts.Add(time.Second)},
		{Asset: "ghost", Field: "x", Value: collectors.Float(1), Time: ts},
	}
	buf, written, skipped := encode(nil, series, pts)
	want := "pump_room,asset=pump-b1,building=B\\ 3,floor=B1,site=yushan outlet_pressure=0.35,running=true,starts=12i,fault_code_quality=\"bad\" 1700000000000000005\n" +
		"water_sensor,asset=leak\\,1,site=yushan state=\"we\\\"t\",level_quality=\"stale\" 1700000001000000005\n"
	if string(buf) != want {
		t.Fatalf("line protocol:\n got %q\nwant %q", buf, want)
	}
	if written != 6 || skipped != 1 {
		t.Fatalf("written %d skipped %d, want 6 and 1", written, skipped)
	}
	if n := countFields("pump_room,asset=a\\ b x=1,y=\"a, b c\",z=2i 1"); n != 3 {
		t.Fatalf("countFields = %d, want 3", n)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1024": 1024, "512MiB": 512 << 20, "1GiB": 1 << 30, "64KB": 64000, "3 B": 3} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseByteSize("lots"); err == nil || err.Error() != `"lots" is not a size; fix: a whole number with an optional unit, e.g. 512MiB` {
		t.Errorf("err = %v", err)
	}
}
