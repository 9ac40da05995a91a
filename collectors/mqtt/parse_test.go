package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/collectors"
)

func compiled(t testing.TB, s Subscription) *Subscription {
	t.Helper()
	c := Config{Broker: "tcp://127.0.0.1:1883", ClientID: "x", Subs: []Subscription{s}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c.Subs[0]
}

func TestParse(t *testing.T) {
	now := time.Unix(1700000000, 0)
	leak := compiled(t, Subscription{Topic: "yushan/{building}/leak/{id}", Asset: "leak-{building}-{id}", Fields: []Field{
		{Name: "wet", Path: "state", Type: TypeBool},
		{Name: "battery", Path: "battery.level", Unit: "%"},
		{Name: "rssi", Path: "radio.0.rssi", Type: TypeInt, Optional: true},
	}, Timestamp: &Timestamp{Path: "ts", Format: TimeUnixMs}})
	lift := compiled(t, Subscription{Topic: "lift/{car}/{field}", Asset: "{car}", Format: FormatValue, Fields: []Field{{Name: "{field}", Type: TypeInt}}})
	door := compiled(t, Subscription{Topic: "lift/+/door", Asset: "lift", Format: FormatValue, Fields: []Field{{Name: "door_open", Type: TypeBool, TrueValues: []string{"OPENED"}, FalseValues: []string{"SHUT"}}}})

	cases := []struct {
		name    string
		sub     *Subscription
		topic   string
		payload string
		want    string // points, "asset.field=value@unixms" joined by space
		err     string
	}{
		{"json nested", leak, "yushan/B3/leak/7", `{"state":"wet","battery":{"level":87.5},"radio":[{"rssi":-71}],"ts":1700000001234}`,
			"leak-B3-7.wet=true@1700000001234 leak-B3-7.battery=87.5@1700000001234 leak-B3-7.rssi=-71@1700000001234", ""},
		{"json bool words", leak, "yushan/B3/leak/7", `{"state":"DRY","battery":{"level":"90"},"ts":1700000000000}`,
			"leak-B3-7.wet=false@1700000000000 leak-B3-7.battery=90@1700000000000", ""},
		{"json number bool", leak, "yushan/B3/leak/7", `{"state":1,"battery":{"level":1},"ts":"1700000000000"}`,
			"leak-B3-7.wet=true@1700000000000 leak-B3-7.battery=1@1700000000000", ""},
		{"missing field", leak, "yushan/B3/leak/7", `{"state":"wet","ts":1700000000000}`,
			"leak-B3-7.wet=true@1700000000000", `field battery: path "battery.level" is missing`},
		{"bad bool word", leak, "yushan/B3/leak/7", `{"state":"soggy","battery":{"level":5},"ts":1700000000000}`,
			"leak-B3-7.battery=5@1700000000000", `field wet: "soggy" is not a boolean word; fix: add it to true_values or false_values`},
		{"not json", leak, "yushan/B3/leak/7", `state=wet`, "", "payload is not JSON: invalid character 's' looking for beginning of value"},
		{"trailing data", leak, "yushan/B3/leak/7", `{} {}`, "", "payload has data after the JSON value"},
		{"missing ts", leak, "yushan/B3/leak/7", `{"state":true}`, "", `timestamp path "ts" is missing`},
		{"bad ts", leak, "yushan/B3/leak/7", `{"state":true,"ts":"soon"}`, "", `timestamp: timestamp "soon" is not a number`},
		{"value int from topic field", lift, "lift/car-2/floor", " 7 ", "car-2.floor=7@1700000000000", ""},
		{"value int from float text", lift, "lift/car-2/floor", "7.0", "car-2.floor=7@1700000000000", ""},
		{"value not int", lift, "lift/car-2/floor", "7.5", "", `field {field}: "7.5" is not an integer`},
		{"value custom words", door, "lift/x/door", "OPENED", "lift.door_open=true@1700000000000", ""},
		{"value ON/OFF", door, "lift/x/door", "off", "lift.door_open=false@1700000000000", ""},
		{"no match", lift, "lift/car-2", "1", "", "topic does not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pts, err := Parse(c.sub, c.topic, []byte(c.payload), now)
			var got []string
			for _, p := range pts {
				got = append(got, p.Asset+"."+p.Field+"="+strings.Trim(p.Value.String(), `"`)+"@"+itoa(p.Time.UnixMilli()))
				if p.Quality != collectors.QualityGood {
					t.Errorf("quality %s", p.Quality)
				}
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("points:\n got %s\nwant %s", strings.Join(got, " "), c.want)
			}
			if (err == nil && c.err != "") || (err != nil && err.Error() != c.err) {
				t.Errorf("err = %v, want %q", err, c.err)
			}
		})
	}
}

func itoa(i int64) string { return collectors.Int(i).String() }

func TestTimestampFormats(t *testing.T) {
	for format, raw := range map[TimeFormat]string{TimeUnix: "1700000001.5", TimeUnixMs: "1700000001500", TimeUnixUs: "1700000001500000", TimeUnixNs: "1700000001500000000", TimeRFC3339: `"2023-11-14T22:13:21.5Z"`} {
		s := compiled(t, Subscription{Topic: "t", Asset: "a", Fields: []Field{{Name: "v", Path: "v"}}, Timestamp: &Timestamp{Path: "t", Format: format}})
		pts, err := Parse(s, "t", []byte(`{"v":1,"t":`+raw+`}`), time.Time{})
		if err != nil || len(pts) != 1 || pts[0].Time.UnixMilli() != 1700000001500 {
			t.Errorf("%s: %v %v", format, pts, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		cfg  Config
		want string
	}{
		"no broker":        {Config{ClientID: "x"}, `broker: "" is not a broker URL; fix: e.g. tcp://127.0.0.1:1883`},
		"persistent no id": {Config{Broker: "tcp://h:1"}, "client_id: is required for a persistent session (the broker keeps messages for this id); fix: e.g. gateway-<site>"},
		"bad level":        {Config{Broker: "tcp://h:1", ClientID: "x", Subs: []Subscription{{Topic: "a/b+/c", Asset: "a", Fields: []Field{{Name: "v", Path: "v"}}}}}, `subscriptions[0].topic: "a/b+/c": level "b+" mixes text and wildcards; fix: a level is literal, +, #, or {name}`},
		"unknown capture":  {Config{Broker: "tcp://h:1", ClientID: "x", Subs: []Subscription{{Topic: "a/{id}", Asset: "{asset}", Fields: []Field{{Name: "v", Path: "v"}}}}}, `subscriptions[0].asset: "{asset}" uses {asset}, which the topic does not capture`},
		"json no path":     {Config{Broker: "tcp://h:1", ClientID: "x", Subs: []Subscription{{Topic: "a", Asset: "a", Fields: []Field{{Name: "v"}}}}}, "subscriptions[0].fields[0].path: is required for json payloads; fix: e.g. state or sensor.level"},
	}
	for name, c := range cases {
		c.cfg.SetDefaults()
		if err := c.cfg.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("%s: err = %v\nwant %s", name, err, c.want)
		}
	}
}

// Raw values are parsed straight from the payload's bytes; a string field
// keeps its own copy, so reusing the payload buffer (paho's next message)
// cannot change a point already published.
func TestStringFieldsDoNotAliasThePayload(t *testing.T) {
	s := compiled(t, Subscription{Topic: "lift/{car}", Asset: "{car}", Fields: []Field{
		{Name: "door", Path: "door", Type: TypeString}, {Name: "code", Path: "code", Type: TypeString}, {Name: "floor", Path: "floor", Type: TypeInt}}})
	plain := compiled(t, Subscription{Topic: "note/{car}", Asset: "{car}", Format: FormatValue, Fields: []Field{{Name: "note", Type: TypeString}}})
	payload := []byte(`{"door":"closed","code":17,"floor":3}`)
	pts, err := Parse(s, "lift/car-1", payload, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	note := []byte("door held")
	npts, err := Parse(plain, "note/car-1", note, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		payload[i] = 'x'
	}
	for i := range note {
		note[i] = 'x'
	}
	if pts[0].Value.S != "closed" || pts[1].Value.S != "17" || pts[2].Value.I != 3 || npts[0].Value.S != "door held" {
		t.Fatalf("points changed with the payload buffer: %v %v", pts, npts)
	}
}
