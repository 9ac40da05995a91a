package influx

import (
	"math"
	"strconv"
	"strings"

	"github.com/propgate/gateway/collectors"
)

// Schema (docs/api.md, "InfluxDB schema"):
//
//	measurement = asset kind            (pump_room, elevator, ...)
//	tags        = asset, building, floor, site
//	fields      = one per point: <field>=<value> for good readings,
//	              <field>_quality="bad"|"stale" when the reading is not good
//	time        = the reading's timestamp, nanoseconds
//
// Consecutive points of one asset with one timestamp share a line.

var tagEscaper = strings.NewReplacer(",", `\,`, " ", `\ `, "=", `\=`, "\n", `\n`)
var measurementEscaper = strings.NewReplacer(",", `\,`, " ", `\ `)
var stringEscaper = strings.NewReplacer(`"`, `\"`, `\`, `\\`, "\n", `\n`)

// appendKey appends a field key, escaping only when needed (a Replacer
// allocates even when it changes nothing; this runs for every point).
func appendKey(buf []byte, k string) []byte {
	if strings.ContainsAny(k, ", =\n") {
		return append(buf, tagEscaper.Replace(k)...)
	}
	return append(buf, k...)
}

func appendString(buf []byte, s string) []byte {
	if strings.ContainsAny(s, "\"\\\n") {
		return append(buf, stringEscaper.Replace(s)...)
	}
	return append(buf, s...)
}

// seriesKeys precomputes "measurement,tags" per asset.
func seriesKeys(site string, assets []collectors.Asset) map[string]string {
	out := make(map[string]string, len(assets))
	for _, a := range assets {
		var b strings.Builder
		b.WriteString(measurementEscaper.Replace(string(a.Kind)))
		b.WriteString(",asset=")
		b.WriteString(tagEscaper.Replace(a.ID))
		if a.Building != "" {
			b.WriteString(",building=")
			b.WriteString(tagEscaper.Replace(a.Building))
		}
		if a.Floor != "" {
			b.WriteString(",floor=")
			b.WriteString(tagEscaper.Replace(a.Floor))
		}
		if site != "" {
			b.WriteString(",site=")
			b.WriteString(tagEscaper.Replace(site))
		}
		out[a.ID] = b.String()
	}
	return out
}

// appendField writes one point as a field; it returns false when the point
// carries nothing to store (a good point without a value).
func appendField(buf []byte, p *collectors.Point) ([]byte, bool) {
	if p.Quality != collectors.QualityGood {
		buf = appendKey(buf, p.Field)
		buf = append(buf, `_quality="`...)
		buf = append(buf, p.Quality.String()...)
		return append(buf, '"'), true
	}
	v := p.Value
	switch v.Type {
	case collectors.ValueFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return buf, false
		}
		buf = appendKey(buf, p.Field)
		buf = append(buf, '=')
		return strconv.AppendFloat(buf, v.F, 'g', -1, 64), true
	case collectors.ValueInt:
		buf = appendKey(buf, p.Field)
		buf = append(buf, '=')
		buf = strconv.AppendInt(buf, v.I, 10)
		return append(buf, 'i'), true
	case collectors.ValueBool:
		buf = appendKey(buf, p.Field)
		buf = append(buf, '=')
		return strconv.AppendBool(buf, v.B), true
	case collectors.ValueString:
		buf = appendKey(buf, p.Field)
		buf = append(buf, `="`...)
		buf = appendString(buf, v.S)
		return append(buf, '"'), true
	}
	return buf, false
}

// encode appends pts as line protocol. It returns the buffer, the number of
// fields written (one per stored point) and the number of points skipped
// because they carried nothing storable.
func encode(buf []byte, series map[string]string, pts []collectors.Point) ([]byte, int, int) {
	written, skipped := 0, 0
	for i := 0; i < len(pts); {
		key, ok := series[pts[i].Asset]
		if !ok {
			skipped++
			i++
			continue
		}
		ts := pts[i].Time.UnixNano()
		lineStart := len(buf)
		buf = append(buf, key...)
		buf = append(buf, ' ')
		fields := 0
		j := i
		for ; j < len(pts) && pts[j].Asset == pts[i].Asset && pts[j].Time.UnixNano() == ts; j++ {
			mark := len(buf)
			if fields > 0 {
				buf = append(buf, ',')
			}
			var stored bool
			buf, stored = appendField(buf, &pts[j])
			if !stored {
				buf = buf[:mark]
				skipped++
				continue
			}
			fields++
		}
		if fields == 0 {
			buf = buf[:lineStart]
		} else {
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, ts, 10)
			buf = append(buf, '\n')
			written += fields
		}
		i = j
	}
	return buf, written, skipped
}

// countFields counts the fields of one line-protocol line (the points it holds).
func countFields(line string) int {
	// Skip measurement and tags: up to the first unescaped space.
	i := 0
	for ; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == ' ' {
			break
		}
	}
	n, inStr := 1, false
	for i++; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case c == ',' && !inStr:
			n++
		case c == ' ' && !inStr:
			return n
		}
	}
	return n
}
