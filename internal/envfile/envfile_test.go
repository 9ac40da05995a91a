package envfile

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	vars, err := Parse("gateway.env", []byte(`# secrets
INFLUX_TOKEN=abc=def
export MQTT_PASSWORD="p a\"ss"
; another comment

WALL_TOKEN='x$y\n'
EMPTY=
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"INFLUX_TOKEN": "abc=def", "MQTT_PASSWORD": `p a"ss`, "WALL_TOKEN": `x$y\n`, "EMPTY": ""}
	if len(vars) != len(want) {
		t.Fatalf("got %v", vars)
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
}

func TestParseErrorsNameLineNotValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A=1\nnot a line secret-value\n", "gateway.env:2: not NAME=value"},
		{"1A=secret-value\n", "gateway.env:1: not NAME=value"},
		{"\n\nTOKEN=\"secret-value\n", "gateway.env:3: TOKEN: unterminated \" quote"},
	} {
		_, err := Parse("gateway.env", []byte(tc.in))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("error leaks the value: %v", err)
		}
	}
}

func TestLookupFileFirst(t *testing.T) {
	l := Lookup(map[string]string{"A": "file"}, func(n string) (string, bool) { return "env-" + n, n != "C" })
	if v, _ := l("A"); v != "file" {
		t.Errorf("A = %q", v)
	}
	if v, _ := l("B"); v != "env-B" {
		t.Errorf("B = %q", v)
	}
	if _, ok := l("C"); ok {
		t.Error("C found")
	}
}
