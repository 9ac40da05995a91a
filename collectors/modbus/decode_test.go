package modbus

import (
	"encoding/hex"
	"math"
	"testing"

	"github.com/propgate/gateway/collectors"
)

func bit(n int) *int { return &n }

// Known byte vectors: the bytes as they arrive on the wire (each register
// big-endian), for every data type and byte/word order.
func TestDecodeTable(t *testing.T) {
	f := collectors.Float
	i := collectors.Int
	cases := []struct {
		name string
		reg  Register
		wire string
		want collectors.Value
		q    collectors.Quality
	}{
		{"int16 negative", Register{Type: TypeInt16}, "fffe", i(-2), 0},
		{"int16 BADC", Register{Type: TypeInt16, Order: BADC}, "fe ff", i(-2), 0},
		{"uint16", Register{Type: TypeUint16}, "ffee", i(65518), 0},
		{"uint16 scaled", Register{Type: TypeUint16, Scale: 0.01, Offset: -10}, "04d2", f(12.34 - 10), 0},
		{"int32 ABCD", Register{Type: TypeInt32, Order: ABCD}, "fffe1dc0", i(-123456), 0},
		{"int32 CDAB", Register{Type: TypeInt32, Order: CDAB}, "1dc0fffe", i(-123456), 0},
		{"int32 BADC", Register{Type: TypeInt32, Order: BADC}, "feffc01d", i(-123456), 0},
		{"int32 DCBA", Register{Type: TypeInt32, Order: DCBA}, "c01dfeff", i(-123456), 0},
		{"uint32 ABCD", Register{Type: TypeUint32, Order: ABCD}, "aabbccdd", i(0xAABBCCDD), 0},
		{"uint32 CDAB", Register{Type: TypeUint32, Order: CDAB}, "ccddaabb", i(0xAABBCCDD), 0},
		{"uint32 BADC", Register{Type: TypeUint32, Order: BADC}, "bbaaddcc", i(0xAABBCCDD), 0},
		{"uint32 DCBA", Register{Type: TypeUint32, Order: DCBA}, "ddccbbaa", i(0xAABBCCDD), 0},
		{"float32 ABCD", Register{Type: TypeFloat32, Order: ABCD}, "42f6e979", f(float64(float32(123.456))), 0},
		{"float32 CDAB", Register{Type: TypeFloat32, Order: CDAB}, "e97942f6", f(float64(float32(123.456))), 0},
		{"float32 BADC", Register{Type: TypeFloat32, Order: BADC}, "f64279e9", f(float64(float32(123.456))), 0},
		{"float32 DCBA", Register{Type: TypeFloat32, Order: DCBA}, "79e9f642", f(float64(float32(123.456))), 0},
		{"int64 ABCD", Register{Type: TypeInt64, Order: ABCD}, "fffffffffffffffe", i(-2), 0},
		{"int64 DCBA", Register{Type: TypeInt64, Order: DCBA}, "feffffffffffffff", i(-2), 0},
		{"uint64 ABCD", Register{Type: TypeUint64, Order: ABCD}, "0102030405060708", i(0x0102030405060708), 0},
		{"uint64 CDAB", Register{Type: TypeUint64, Order: CDAB}, "0708050603040102", i(0x0102030405060708), 0},
		{"uint64 BADC", Register{Type: TypeUint64, Order: BADC}, "0201040306050807", i(0x0102030405060708), 0},
		{"uint64 DCBA", Register{Type: TypeUint64, Order: DCBA}, "0807060504030201", i(0x0102030405060708), 0},
		{"uint64 above int64", Register{Type: TypeUint64}, "ffffffffffffffff", f(math.MaxUint64), 0},
		{"float64 ABCD", Register{Type: TypeFloat64, Order: ABCD}, "400921fb54442d18", f(math.Pi), 0},
		{"float64 CDAB", Register{Type: TypeFloat64, Order: CDAB}, "2d18544421fb4009", f(math.Pi), 0},
		{"float64 BADC", Register{Type: TypeFloat64, Order: BADC}, "0940fb21445418 2d", f(math.Pi), 0},
		{"float64 DCBA", Register{Type: TypeFloat64, Order: DCBA}, "182d4454fb210940", f(math.Pi), 0},
		{"bool bit 0", Register{Type: TypeBool, Bit: bit(0)}, "0001", collectors.Bool(true), 0},
		{"bool bit 15", Register{Type: TypeBool, Bit: bit(15)}, "7fff", collectors.Bool(false), 0},
		{"bool bit 9", Register{Type: TypeBool, Bit: bit(9)}, "0200", collectors.Bool(true), 0},
		{"coil", Register{Type: TypeBool, Table: Coil}, "01", collectors.Bool(true), 0},
		{"string ABCD", Register{Type: TypeString, Length: 3}, "50554d50 0000", collectors.String("PUMP"), 0},
		{"string BADC", Register{Type: TypeString, Length: 2, Order: BADC}, "5550504d", collectors.String("PUMP"), 0},
		{"sentinel 0xFFFF", Register{Type: TypeUint16, Sentinels: []Sentinel{{Raw: 0xFFFF}}}, "ffff", collectors.Value{}, collectors.QualityBad},
		{"sentinel 0x8000 int16", Register{Type: TypeInt16, Scale: 0.1, Sentinels: []Sentinel{{Raw: 0x8000}}}, "8000", collectors.Value{}, collectors.QualityBad},
		{"sentinel -1 as int32", Register{Type: TypeInt32, Sentinels: []Sentinel{{Raw: math.MaxUint64}}}, "ffffffff", collectors.Value{}, collectors.QualityBad},
		{"not a sentinel", Register{Type: TypeUint16, Sentinels: []Sentinel{{Raw: 0xFFFF}}}, "fffe", i(0xFFFE), 0},
		{"float32 NaN is bad", Register{Type: TypeFloat32}, "7fc00000", collectors.Value{}, collectors.QualityBad},
		{"float32 +Inf is bad", Register{Type: TypeFloat32}, "7f800000", collectors.Value{}, collectors.QualityBad},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.reg
			setRegDefaults(&r)
			raw, err := hex.DecodeString(stripSpaces(c.wire))
			if err != nil {
				t.Fatal(err)
			}
			got, q := Decode(&r, raw)
			if q != c.q {
				t.Fatalf("quality %s, want %s", q, c.q)
			}
			if c.want.Type == collectors.ValueFloat && got.Type == collectors.ValueFloat {
				if math.Abs(got.F-c.want.F) > 1e-9*math.Max(1, math.Abs(c.want.F)) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
				return
			}
			if !got.Equal(c.want) {
				t.Fatalf("got %v (%s), want %v (%s)", got, got.Type, c.want, c.want.Type)
			}
			// Every numeric and string value encodes back to the same bytes.
			if q == collectors.QualityGood && r.Type != TypeBool && !(r.Type == TypeUint64 && got.Type == collectors.ValueFloat) {
				enc, err := Encode(&r, got)
				if err != nil {
					t.Fatal(err)
				}
				if r.Type == TypeString {
					raw = raw[:len(enc)]
				}
				if hex.EncodeToString(enc) != hex.EncodeToString(raw) {
					t.Fatalf("Encode(%v) = %x, want %x", got, enc, raw)
				}
			}
		})
	}
}

func stripSpaces(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			out = append(out, s[i])
		}
	}
	return string(out)
}

func TestEncodeRejectsOutOfRange(t *testing.T) {
	r := Register{Name: "sp", Type: TypeInt16}
	setRegDefaults(&r)
	if _, err := Encode(&r, collectors.Float(40000)); err == nil || err.Error() != "field sp: 40000 is outside the int16 range" {
		t.Fatalf("err = %v", err)
	}
}

func TestPlanCoalescesAndSplits(t *testing.T) {
	regs := []Register{
		{Name: "a", Table: HoldingRegister, Address: 0, Type: TypeUint16},
		{Name: "b", Table: HoldingRegister, Address: 2, Type: TypeFloat32},
		{Name: "c", Table: HoldingRegister, Address: 20, Type: TypeUint16},   // gap 16 > max_gap 10: new read
		{Name: "d", Table: HoldingRegister, Address: 140, Type: TypeFloat64}, // would exceed 125 registers
		{Name: "e", Table: HoldingRegister, Address: 20, Type: TypeBool, Bit: bit(3)},
		{Name: "f", Table: Coil, Address: 0, Type: TypeBool},
		{Name: "g", Table: Coil, Address: 1999, Type: TypeBool}, // 2000 bits: still one read
		{Name: "h", Table: Coil, Address: 2000, Type: TypeBool},
		{Name: "i", Table: InputRegister, Address: 7, Type: TypeInt32},
	}
	for i := range regs {
		setRegDefaults(&regs[i])
	}
	got := plan(regs, 10)
	type rd struct {
		table      Table
		start, qty int
		n          int
	}
	want := []rd{{Coil, 0, 1, 1}, {Coil, 1999, 2, 2}, {HoldingRegister, 0, 4, 2}, {HoldingRegister, 20, 1, 2}, {HoldingRegister, 140, 4, 1}, {InputRegister, 7, 2, 1}}
	// f (0) and g (1999) are 1999 apart: beyond max_gap, so separate reads.
	if len(got) != len(want) {
		for _, r := range got {
			t.Logf("%s %d+%d %d fields", r.table, r.start, r.qty, len(r.fields))
		}
		t.Fatalf("%d reads, want %d", len(got), len(want))
	}
	for i, r := range got {
		if (rd{r.table, r.start, r.qty, len(r.fields)}) != want[i] {
			t.Errorf("read %d = %v %d+%d (%d fields), want %+v", i, r.table, r.start, r.qty, len(r.fields), want[i])
		}
	}
	wide := plan(regs, 200)
	// coils: f alone, g+h; holding: 0..20 in one read, 140 alone (span 144 > 125); input.
	if len(wide) != 5 || wide[2].table != HoldingRegister || wide[2].qty != 21 {
		t.Fatalf("max_gap 200: %d reads, first holding qty %d", len(wide), wide[2].qty)
	}
	parts := split(wide[2])
	if len(parts) != 3 || len(parts[2].fields) != 2 { // a, b, then c+e share register 20
		t.Fatalf("split gave %d reads", len(parts))
	}
}
