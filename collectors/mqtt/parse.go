package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/propgate/gateway/collectors"
)

// pattern is a compiled topic pattern: the MQTT filter and, per level, the
// literal to match ("+" and "#" for wildcards) and the capture name.
type pattern struct {
	filter string
	levels []string
	names  []string
}

type capture struct{ name, value string }

// match matches topic level by level without allocating (captures are
// sub-strings of topic, appended to buf); ok is false when it does not match.
func (p *pattern) match(topic string, buf []capture) (caps []capture, ok bool) {
	caps = buf[:0]
	rest, more := topic, true
	for i, lit := range p.levels {
		if lit == "#" {
			return caps, true
		}
		if !more {
			return nil, false
		}
		var level string
		level, rest, more = strings.Cut(rest, "/")
		if lit != "+" && lit != level {
			return nil, false
		}
		if p.names[i] != "" {
			caps = append(caps, capture{p.names[i], level})
		}
	}
	return caps, !more
}

func lookupCapture(caps []capture, name string) string {
	for _, c := range caps {
		if c.name == name {
			return c.value
		}
	}
	return ""
}

// expand fills {name} placeholders from captures.
func expand(tmpl string, caps []capture) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	if strings.HasPrefix(tmpl, "{") && strings.IndexByte(tmpl, '}') == len(tmpl)-1 {
		return lookupCapture(caps, tmpl[1:len(tmpl)-1]) // the common "{asset}": no copy
	}
	var b strings.Builder
	for rest := tmpl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.IndexByte(rest[i:], '}')
		b.WriteString(rest[:i])
		b.WriteString(lookupCapture(caps, rest[i+1:i+j]))
		rest = rest[i+j+1:]
	}
}

var (
	defaultTrue  = []string{"true", "1", "on", "yes", "wet", "alarm", "active", "open", "running", "high", "tripped", "fault", "trapped"}
	defaultFalse = []string{"false", "0", "off", "no", "dry", "normal", "inactive", "closed", "stopped", "low", "ok", "clear"}
)

// ParseBool normalises the many ways devices say true and false; a field's
// own words take precedence over the defaults.
func ParseBool(s string, extraTrue, extraFalse []string) (bool, error) {
	s = strings.TrimSpace(s)
	for _, words := range []struct {
		list []string
		val  bool
	}{{extraTrue, true}, {extraFalse, false}, {defaultTrue, true}, {defaultFalse, false}} {
		for _, w := range words.list {
			if strings.EqualFold(s, w) {
				return words.val, nil
			}
		}
	}
	return false, fmt.Errorf("%q is not a boolean word; fix: add it to true_values or false_values", s)
}

// alias views payload bytes as a string without copying: a raw value's
// text is only parsed, except by convert for string fields, which copies
// it. The payload is not modified while a message is parsed.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// raw is a value as it arrived: a JSON token, or a whole plain payload.
// text may alias the payload (see alias): copy it to keep it.
type raw struct {
	text  string // the string's content, or the literal's text
	isStr bool   // a JSON string or a plain payload (text to interpret)
	lit   byte   // JSON literal: 't', 'f', '0' for numbers, '{' for compound
}

func rawToken(tok []byte) raw {
	switch tok[0] {
	case '"':
		body := tok[1 : len(tok)-1]
		if !needsDecode(body) {
			return raw{text: alias(body), isStr: true}
		}
		var s string
		_ = json.Unmarshal(tok, &s)
		return raw{text: s, isStr: true}
	case 't', 'f', '{', '[':
		return raw{lit: tok[0]}
	}
	return raw{text: alias(tok), lit: '0'}
}

func (r raw) describe() string {
	switch {
	case r.isStr:
		return fmt.Sprintf("%q", r.text)
	case r.lit == '{' || r.lit == '[':
		return "a JSON object or array"
	case r.lit == 't' || r.lit == 'f':
		return "a boolean"
	}
	return r.text
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// convert turns a raw value into the field type.
func convert(f *Field, r raw) (collectors.Value, error) {
	switch f.Type {
	case TypeString:
		switch {
		case r.isStr, r.lit == '0':
			return collectors.String(strings.Clone(r.text)), nil
		case r.lit == 't' || r.lit == 'f':
			return collectors.String(strconv.FormatBool(r.lit == 't')), nil
		}
	case TypeBool:
		switch {
		case r.lit == 't' || r.lit == 'f':
			return collectors.Bool(r.lit == 't'), nil
		case r.lit == '0':
			fl, err := strconv.ParseFloat(r.text, 64)
			if err != nil {
				return collectors.Value{}, err
			}
			return collectors.Bool(fl != 0), nil
		case r.isStr:
			b, err := ParseBool(r.text, f.TrueValues, f.FalseValues)
			return collectors.Bool(b), err
		}
	case TypeFloat:
		switch {
		case r.lit == 't' || r.lit == 'f':
			return collectors.Float(float64(b2i(r.lit == 't'))), nil
		case r.isStr || r.lit == '0':
			s := strings.TrimSpace(r.text)
			fl, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(fl) || math.IsInf(fl, 0) {
				return collectors.Value{}, fmt.Errorf("%q is not a finite number", s)
			}
			return collectors.Float(fl), nil
		}
	case TypeInt:
		switch {
		case r.lit == 't' || r.lit == 'f':
			return collectors.Int(b2i(r.lit == 't')), nil
		case r.isStr || r.lit == '0':
			s := strings.TrimSpace(r.text)
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return collectors.Int(i), nil
			}
			fl, err := strconv.ParseFloat(s, 64)
			if err != nil || fl != math.Trunc(fl) || math.Abs(fl) > 1<<53 {
				return collectors.Value{}, fmt.Errorf("%q is not an integer", s)
			}
			return collectors.Int(int64(fl)), nil
		}
	}
	return collectors.Value{}, fmt.Errorf("%s cannot be a %s", r.describe(), f.Type)
}

// decodeError explains why a payload is not valid JSON, as encoding/json says it.
func decodeError(payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("payload is not JSON: %w", err)
	}
	return errors.New("payload has data after the JSON value")
}

func parseTime(ts *Timestamp, r raw) (time.Time, error) {
	if ts.Format == TimeRFC3339 {
		if !r.isStr {
			return time.Time{}, fmt.Errorf("timestamp is %s, want an RFC 3339 string", r.describe())
		}
		return time.Parse(time.RFC3339Nano, r.text)
	}
	if !r.isStr && r.lit != '0' {
		return time.Time{}, fmt.Errorf("timestamp is %s, want a number", r.describe())
	}
	n := r.text
	if i, err := strconv.ParseInt(n, 10, 64); err == nil {
		switch ts.Format {
		case TimeUnix:
			return time.Unix(i, 0), nil
		case TimeUnixMs:
			return time.UnixMilli(i), nil
		case TimeUnixUs:
			return time.UnixMicro(i), nil
		}
		return time.Unix(0, i), nil
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("timestamp %q is not a number", n)
	}
	scale := map[TimeFormat]float64{TimeUnix: 1e9, TimeUnixMs: 1e6, TimeUnixUs: 1e3, TimeUnixNs: 1}[ts.Format]
	ns := f * scale
	if math.Abs(ns) > math.MaxInt64 {
		return time.Time{}, fmt.Errorf("timestamp %q is out of range", n)
	}
	return time.Unix(0, int64(ns)), nil
}

// ErrNoMatch means the topic does not match the subscription's pattern.
var ErrNoMatch = errors.New("topic does not match")

// Parse turns one message into points (see ParseInto).
func Parse(s *Subscription, topic string, payload []byte, now time.Time) ([]collectors.Point, error) {
	return ParseInto(nil, s, topic, payload, now)
}

// ParseInto is Parse appending to dst[:0], so a caller can reuse one buffer. Every problem is an error naming the
// field; points decoded before a bad optional field are still returned.
// It is a pure function of its inputs (fuzzed in parse_fuzz_test.go).
func ParseInto(dst []collectors.Point, s *Subscription, topic string, payload []byte, now time.Time) ([]collectors.Point, error) {
	var capBuf [4]capture
	caps, ok := s.pat.match(topic, capBuf[:])
	if !ok {
		return nil, ErrNoMatch
	}
	asset := expand(s.Asset, caps)
	if asset == "" {
		return nil, fmt.Errorf("topic %s gives an empty asset id", topic)
	}
	at := now
	if s.Format == FormatValue {
		f := &s.Fields[0]
		v, err := convert(f, raw{text: alias(payload), isStr: true})
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		return append(dst[:0], collectors.Point{Asset: asset, Field: expand(f.Name, caps), Value: v, Unit: f.Unit, Quality: collectors.QualityGood, Time: at}), nil
	}
	if !json.Valid(payload) {
		return nil, decodeError(payload)
	}
	var buf [8][]byte
	vals := buf[:0]
	if s.extract.paths > len(buf) {
		vals = make([][]byte, s.extract.paths)
	}
	vals = vals[:s.extract.paths]
	s.extract.extract(payload, vals)
	if s.Timestamp != nil {
		tok := vals[s.tsPath]
		if tok == nil {
			return nil, fmt.Errorf("timestamp path %q is missing", s.Timestamp.Path)
		}
		t, err := parseTime(s.Timestamp, rawToken(tok))
		if err != nil {
			return nil, fmt.Errorf("timestamp: %w", err)
		}
		at = t
	}
	pts := dst[:0]
	var errs []error
	for i := range s.Fields {
		f := &s.Fields[i]
		tok := vals[s.fieldPath[i]]
		if tok == nil {
			if !f.Optional {
				errs = append(errs, fmt.Errorf("field %s: path %q is missing", f.Name, f.Path))
			}
			continue
		}
		v, err := convert(f, rawToken(tok))
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", f.Name, err))
			continue
		}
		pts = append(pts, collectors.Point{Asset: asset, Field: expand(f.Name, caps), Value: v, Unit: f.Unit, Quality: collectors.QualityGood, Time: at})
	}
	return pts, errors.Join(errs...)
}
