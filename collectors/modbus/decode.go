package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/propgate/gateway/collectors"
)

// normalise turns register bytes as received (each register big-endian)
// into big-endian ABCD order.
func normalise(raw []byte, o Order) []byte {
	b := slices.Clone(raw)
	words, bytes := o.swaps()
	if words {
		n := len(b) / 2
		for i := 0; i < n/2; i++ {
			j := n - 1 - i
			b[2*i], b[2*j] = b[2*j], b[2*i]
			b[2*i+1], b[2*j+1] = b[2*j+1], b[2*i+1]
		}
	}
	if bytes {
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	return b
}

// Decode interprets a register's bytes (as received, 2 per register) as a
// value. A sentinel or NaN gives bad quality and no value.
func Decode(r *Register, raw []byte) (collectors.Value, collectors.Quality) {
	if len(raw) != r.rawLen() {
		return collectors.Value{}, collectors.QualityBad // a short or garbled reply is no reading
	}
	if r.Type == TypeBool {
		if r.Bit != nil {
			w := binary.BigEndian.Uint16(raw)
			return collectors.Bool(w>>uint(*r.Bit)&1 == 1), collectors.QualityGood
		}
		return collectors.Bool(raw[0] != 0), collectors.QualityGood
	}
	b := normalise(raw, r.Order)
	if r.Type == TypeString {
		return collectors.String(strings.TrimRight(string(b), "\x00 ")), collectors.QualityGood
	}
	var u uint64
	for _, x := range b {
		u = u<<8 | uint64(x)
	}
	bits := len(b) * 8
	for _, s := range r.Sentinels {
		if !s.NaN && s.Raw&mask(bits) == u {
			return collectors.Value{}, collectors.QualityBad
		}
	}
	var f float64
	var i int64
	isInt := true
	switch r.Type {
	case TypeInt16:
		i = int64(int16(u))
	case TypeUint16, TypeUint32:
		i = int64(u)
	case TypeInt32:
		i = int64(int32(u))
	case TypeInt64:
		i = int64(u)
	case TypeUint64:
		if u > math.MaxInt64 && !r.scaled() {
			// Too large for a signed field: store as a float rather than wrap.
			return collectors.Float(float64(u)), collectors.QualityGood
		}
		i = int64(u)
		if u > math.MaxInt64 {
			f, isInt = float64(u), false
		}
	case TypeFloat32:
		f, isInt = float64(math.Float32frombits(uint32(u))), false
	case TypeFloat64:
		f, isInt = math.Float64frombits(u), false
	}
	if isInt {
		if !r.scaled() {
			return collectors.Int(i), collectors.QualityGood
		}
		f = float64(i)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return collectors.Value{}, collectors.QualityBad
	}
	return collectors.Float(f*r.Scale + r.Offset), collectors.QualityGood
}

func mask(bits int) uint64 {
	if bits >= 64 {
		return math.MaxUint64
	}
	return 1<<uint(bits) - 1
}

// Encode turns a value into register bytes (as sent, 2 per register), the
// inverse of Decode. Bools in a register bit are handled by the caller
// (read-modify-write).
func Encode(r *Register, v collectors.Value) ([]byte, error) {
	if r.Type == TypeString {
		if v.Type != collectors.ValueString {
			return nil, fmt.Errorf("field %s is a string, got %s", r.Name, v.Type)
		}
		b := make([]byte, 2*r.Length)
		if len(v.S) > len(b) {
			return nil, fmt.Errorf("field %s holds %d bytes, got %d", r.Name, len(b), len(v.S))
		}
		copy(b, v.S)
		return normalise(b, r.Order), nil
	}
	f, ok := v.AsFloat()
	if !ok {
		return nil, fmt.Errorf("field %s is numeric, got %s", r.Name, v.Type)
	}
	f = (f - r.Offset) / r.Scale
	n := r.Type.registers() * 2
	isFloat := r.Type == TypeFloat32 || r.Type == TypeFloat64
	lo, hi := intRange(r.Type)
	var u uint64
	switch {
	case r.Type == TypeFloat32:
		u = uint64(math.Float32bits(float32(f)))
	case r.Type == TypeFloat64:
		u = math.Float64bits(f)
	case v.Type == collectors.ValueInt && !r.scaled() && !isFloat:
		// Exact: 64-bit integers do not survive a trip through float64.
		if (v.I < 0 && float64(v.I) < lo) || float64(v.I) > hi {
			return nil, fmt.Errorf("field %s: %v is outside the %s range", r.Name, v, r.Type)
		}
		u = uint64(v.I)
	default:
		x := math.Round(f)
		if x < lo || x > hi {
			return nil, fmt.Errorf("field %s: %v is outside the %s range", r.Name, v, r.Type)
		}
		if x < 0 {
			u = uint64(int64(x))
		} else {
			u = uint64(x)
		}
	}
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, u)
	return normalise(b[8-n:], r.Order), nil
}

func intRange(t DataType) (float64, float64) {
	switch t {
	case TypeInt16:
		return math.MinInt16, math.MaxInt16
	case TypeUint16:
		return 0, math.MaxUint16
	case TypeInt32:
		return math.MinInt32, math.MaxInt32
	case TypeUint32:
		return 0, math.MaxUint32
	case TypeInt64:
		return math.MinInt64, math.MaxInt64
	}
	return 0, math.MaxUint64
}
