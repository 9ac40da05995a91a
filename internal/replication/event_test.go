package replication

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	ok := `{"v":1,"site":"north-1","seq":7,"kind":"alarm","key":"r:a","op":"upsert","doc":{"state":"acknowledged"}}`
	if e, err := DecodeAt("propgate/v1/site/north-1/event/alarm", []byte(ok), time.Time{}); err != nil || e.Seq != 7 || e.Key != "r:a" {
		t.Fatalf("%+v %v", e, err)
	}
	for _, c := range []struct{ name, topic, payload, want string }{
		{"another site's prefix", "propgate/v1/site/south-2/event/alarm", ok, `the envelope says site "north-1"`},
		{"kind differs from the topic", "propgate/v1/site/north-1/event/workorder", ok, "incomplete envelope"},
		{"no seq", "propgate/v1/site/north-1/event/alarm", strings.Replace(ok, `"seq":7`, `"seq":0`, 1), "incomplete envelope"},
		{"no doc", "propgate/v1/site/north-1/event/alarm", strings.Replace(ok, `,"doc":{"state":"acknowledged"}`, ``, 1), "incomplete envelope"},
		{"not json", "propgate/v1/site/north-1/event/alarm", `{"v":`, "not an envelope"},
		{"version 0", "propgate/v1/site/north-1/event/alarm", strings.Replace(ok, `"v":1`, `"v":0`, 1), "not a version-1 event"},
		{"wildcard site", "propgate/v1/site/+/event/alarm", strings.Replace(ok, `"north-1"`, `"+"`, 1), `the envelope says site "+"`},
	} {
		if _, err := DecodeAt(c.topic, []byte(c.payload), time.Time{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := DecodeAt("propgate/v1/site/north-1/event/alarm", []byte(strings.Replace(ok, `"v":1`, `"v":2`, 1)), time.Time{}); !errors.Is(err, ErrNewerVersion) {
		t.Errorf("newer version: %v", err)
	}
}

// What a site sends is bounded: a malicious or broken site cannot make the
// center store huge envelopes or keys that break its indexes, a NUL that
// breaks every query reading that field, a made-up kind, or an epoch that
// would outrank its real one for ever.
func TestDecodeRefusesWhatWouldHurtTheCenter(t *testing.T) {
	ok := `{"v":1,"site":"north-1","seq":7,"kind":"alarm","key":"r:a","op":"upsert","epoch":"20261205090000000a1b2c3d4","doc":{"state":"acknowledged"}}`
	topic := "propgate/v1/site/north-1/event/alarm"
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	if _, err := DecodeAt(topic, []byte(ok), now); err != nil {
		t.Fatalf("a good envelope: %v", err)
	}
	for _, c := range []struct{ name, topic, payload, want string }{
		{"huge", topic, strings.Replace(ok, `"acknowledged"`, `"`+strings.Repeat("x", MaxEnvelope)+`"`, 1), "more than 1048576"},
		{"NUL in the doc", topic, strings.Replace(ok, `"acknowledged"`, `"a\u0000"`, 1), "NUL character"},
		{"long key", topic, strings.Replace(ok, `"r:a"`, `"`+strings.Repeat("k", MaxKey+1)+`"`, 1), "key of 201 bytes"},
		{"odd kind", "propgate/v1/site/north-1/event/Alarm!", strings.Replace(ok, `"alarm"`, `"Alarm!"`, 1), "is not a kind"},
		{"epoch not an epoch", topic, strings.Replace(ok, `20261205090000000a1b2c3d4`, `~`, 1), "is not an outbox epoch"},
		{"epoch from the future", topic, strings.Replace(ok, `20261205090000000a1b2c3d4`, `29991231000000000a1b2c3d4`, 1), "after now"},
	} {
		if _, err := DecodeAt(c.topic, []byte(c.payload), now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A day's skew is allowed (a site clock a little ahead).
	if _, err := DecodeAt(topic, []byte(strings.Replace(ok, `20261205090000000`, `20261206090000000`, 1)), now); err != nil {
		t.Errorf("an epoch 23 h ahead: %v", err)
	}
}
