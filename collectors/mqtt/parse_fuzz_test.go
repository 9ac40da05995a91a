package mqtt

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
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

// lookupRef is the reference: decode everything with encoding/json, then walk.
func lookupRef(doc any, path string) any {
	cur := doc
	for _, key := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			cur = v[key]
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			cur = v[i]
		default:
			return nil
		}
	}
	return cur
}

// FuzzExtractMatchesEncodingJSON: on every valid JSON document the extractor
// finds exactly what encoding/json finds.
func FuzzExtractMatchesEncodingJSON(f *testing.F) {
	paths := []string{"state", "battery.level", "radio.0.rssi", "a.b.c", "x", "l.1", "e\u00e9"}
	x, ids := newExtractor(paths)
	f.Add([]byte(`{"state":"wet","battery":{"level":87.5},"radio":[{"rssi":-71}],"ts":1}`))
	f.Add([]byte(`{"a":{"b":{"c":[1,{"d":"}"}]}},"x":null,"l":[0,"\u00e9\"",2],"state":"a","state":"b"}`))
	f.Add([]byte(` [ {"state" : true } ] `))
	f.Add([]byte(`{"e\u00e9":{"k":"v"},"battery":[],"x":-1.5e-3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("valid JSON did not decode: %v", err)
		}
		vals := make([][]byte, x.paths)
		x.extract(b, vals)
		for _, p := range paths {
			want := lookupRef(doc, p)
			got := token(vals[ids[p]])
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("path %s in %s: extractor %#v, encoding/json %#v", p, b, got, want)
			}
		}
	})
}
