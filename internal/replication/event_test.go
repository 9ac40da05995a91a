package replication

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	ok := `{"v":1,"site":"north-1","seq":7,"kind":"alarm","key":"r:a","op":"upsert","doc":{"state":"acknowledged"}}`
	if e, err := Decode("propgate/v1/site/north-1/event/alarm", []byte(ok)); err != nil || e.Seq != 7 || e.Key != "r:a" {
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
		if _, err := Decode(c.topic, []byte(c.payload)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Decode("propgate/v1/site/north-1/event/alarm", []byte(strings.Replace(ok, `"v":1`, `"v":2`, 1))); !errors.Is(err, ErrNewerVersion) {
		t.Errorf("newer version: %v", err)
	}
}
