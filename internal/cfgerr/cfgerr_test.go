package cfgerr

import (
	"errors"
	"testing"
)

func TestPrefix(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{Errorf("x[1]", "bad"), "a.b.x[1]: bad"},
		{Errorf("", "bad"), "a.b: bad"},
		{errors.New("plain"), "a.b: plain"},
	}
	for _, c := range cases {
		if got := Prefix("a.b", c.err).Error(); got != c.want {
			t.Errorf("Prefix = %q, want %q", got, c.want)
		}
	}
}
