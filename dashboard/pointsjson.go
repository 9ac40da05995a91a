package dashboard

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/propgate/gateway/collectors"
)

// appendPointsMsg appends PointsMsg{Type: "points", Points: changes} as
// encoding/json would write it, byte for byte (FuzzPointsMsgMatchesJSON),
// without reflection: the hub sends every changed field ten times a second,
// and encoding/json (a Marshaler per value, compacted and checked
// afterwards) was a sixth of the gateway's CPU at 10,000 messages a second
// (docs/benchmarks.md).
func appendPointsMsg(b []byte, changes []collectors.FieldChange) []byte {
	start := len(b)
	b = append(b, `{"type":"points","points":`...)
	if changes == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range changes {
		c := &changes[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"asset":`...)
		b = appendJSONString(b, c.Asset)
		b = append(b, `,"field":`...)
		b = appendJSONString(b, c.Field)
		b = append(b, `,"value":`...)
		b = appendValue(b, c.Value)
		if c.Unit != "" {
			b = append(b, `,"unit":`...)
			b = appendJSONString(b, c.Unit)
		}
		b = append(b, `,"quality":`...)
		b = appendJSONString(b, c.Quality.String())
		b = append(b, `,"time":"`...)
		var err error
		if b, err = c.Time.AppendText(b); err != nil {
			// A year outside 0-9999: let encoding/json say what it says.
			out, _ := json.Marshal(PointsMsg{Type: "points", Points: changes})
			return append(b[:start], out...)
		}
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// appendValue writes a Value as its MarshalJSON does.
func appendValue(b []byte, v collectors.Value) []byte {
	switch v.Type {
	case collectors.ValueFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, v.F, 'g', -1, 64)
	case collectors.ValueInt:
		return strconv.AppendInt(b, v.I, 10)
	case collectors.ValueBool:
		return strconv.AppendBool(b, v.B)
	case collectors.ValueString:
		return appendJSONString(b, v.S)
	}
	return append(b, "null"...)
}

// appendJSONString writes s as encoding/json does (HTML characters and
// control characters escaped, invalid UTF-8 replaced): plain ASCII is
// copied, anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := json.Marshal(s)
			return append(b, out...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
