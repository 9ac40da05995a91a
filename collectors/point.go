// Package collectors holds the gateway's data spine: the point model, the
// live state cache, the ingest pipeline and the interfaces every collector
// (Modbus, MQTT) and every sink (InfluxDB) implements.
package collectors

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// AssetKind names a class of equipment. The set is open: configs may declare
// new kinds, the constants below are the ones the product ships playbooks for.
type AssetKind string

// Asset kinds the shipped rules and playbooks know about.
const (
	KindPumpRoom          AssetKind = "pump_room"
	KindDistributionPanel AssetKind = "distribution_panel"
	KindWaterSensor       AssetKind = "water_sensor"
	KindElevator          AssetKind = "elevator"
	KindLighting          AssetKind = "lighting"
)

// Asset is one piece of equipment as declared in config. Building, floor and
// location are free text because the playbooks must say where things are.
type Asset struct {
	ID       string    `json:"id"`
	Kind     AssetKind `json:"kind"`
	Name     string    `json:"name,omitempty"`
	Building string    `json:"building,omitempty"`
	Floor    string    `json:"floor,omitempty"`
	Location string    `json:"location,omitempty"`
	// StaleAfter marks a field stale when it has not been refreshed for this
	// long. Zero disables staleness for the asset.
	StaleAfter time.Duration `json:"-"`
}

// Quality says how far a value can be trusted.
type Quality uint8

// Qualities, after OPC's good/bad/uncertain simplified to what a gateway knows.
const (
	QualityGood  Quality = iota // read successfully and plausible
	QualityBad                  // read failed, device lost, or a sentinel "no reading" value
	QualityStale                // not refreshed within the asset's stale_after
)

func (q Quality) String() string {
	switch q {
	case QualityGood:
		return "good"
	case QualityBad:
		return "bad"
	case QualityStale:
		return "stale"
	}
	return "quality(" + strconv.Itoa(int(q)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (q Quality) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (q *Quality) UnmarshalText(b []byte) error {
	for _, c := range []Quality{QualityGood, QualityBad, QualityStale} {
		if string(b) == c.String() {
			*q = c
			return nil
		}
	}
	return fmt.Errorf("%q is not a quality (good, bad, stale)", b)
}

// ValueType is the type of a point's value.
type ValueType uint8

// Value types. The zero value is ValueNone: a point without a value (e.g. a bad
// read) carries only its quality.
const (
	ValueNone ValueType = iota
	ValueFloat
	ValueInt
	ValueBool
	ValueString
)

func (t ValueType) String() string {
	switch t {
	case ValueNone:
		return "none"
	case ValueFloat:
		return "float"
	case ValueInt:
		return "int"
	case ValueBool:
		return "bool"
	case ValueString:
		return "string"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Value is a typed scalar. Only the member matching Type is meaningful.
type Value struct {
	Type ValueType
	F    float64
	I    int64
	B    bool
	S    string
}

// Float, Int, Bool and String build values.
func Float(f float64) Value { return Value{Type: ValueFloat, F: f} }

// Int builds an integer value.
func Int(i int64) Value { return Value{Type: ValueInt, I: i} }

// Bool builds a boolean value.
func Bool(b bool) Value { return Value{Type: ValueBool, B: b} }

// String builds a string value.
func String(s string) Value { return Value{Type: ValueString, S: s} }

// AsFloat returns the value as a number, for thresholds; bools are 0/1.
func (v Value) AsFloat() (float64, bool) {
	switch v.Type {
	case ValueFloat:
		return v.F, true
	case ValueInt:
		return float64(v.I), true
	case ValueBool:
		if v.B {
			return 1, true
		}
		return 0, true
	}
	return math.NaN(), false
}

// Equal reports whether two values are identical in type and content.
func (v Value) Equal(o Value) bool {
	if v.Type != o.Type {
		return false
	}
	switch v.Type {
	case ValueFloat:
		return v.F == o.F || (math.IsNaN(v.F) && math.IsNaN(o.F))
	case ValueInt:
		return v.I == o.I
	case ValueBool:
		return v.B == o.B
	case ValueString:
		return v.S == o.S
	}
	return true
}

func (v Value) String() string {
	switch v.Type {
	case ValueFloat:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case ValueInt:
		return strconv.FormatInt(v.I, 10)
	case ValueBool:
		return strconv.FormatBool(v.B)
	case ValueString:
		return strconv.Quote(v.S)
	}
	return "none"
}

// MarshalJSON writes the bare value (number, bool, string or null).
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Type {
	case ValueFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return []byte("null"), nil
		}
		return strconv.AppendFloat(nil, v.F, 'g', -1, 64), nil
	case ValueInt:
		return strconv.AppendInt(nil, v.I, 10), nil
	case ValueBool:
		return strconv.AppendBool(nil, v.B), nil
	case ValueString:
		return json.Marshal(v.S)
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads a bare JSON value back: a number is a float, then a
// bool, a string, or null for no value.
func (v *Value) UnmarshalJSON(b []byte) error {
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	switch t := x.(type) {
	case nil:
		*v = Value{}
	case float64:
		*v = Float(t)
	case bool:
		*v = Bool(t)
	case string:
		*v = String(t)
	default:
		return fmt.Errorf("a value must be a number, boolean, string or null, not %s", b)
	}
	return nil
}

// Point is one reading of one field of one asset.
type Point struct {
	Asset   string
	Kind    AssetKind
	Field   string
	Value   Value
	Unit    string
	Quality Quality
	Time    time.Time
}

func (p Point) String() string {
	return fmt.Sprintf("%s.%s=%s%s (%s) @%s", p.Asset, p.Field, p.Value, p.Unit, p.Quality, p.Time.Format(time.RFC3339Nano))
}
