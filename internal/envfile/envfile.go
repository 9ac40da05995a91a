// Package envfile reads the KEY=VALUE files systemd's EnvironmentFile=
// reads, so `gateway check -env /etc/propgate-gateway/gateway.env` sees the
// same secrets the service does without exporting them in a shell.
package envfile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Read parses path: blank lines and lines starting with # or ; are skipped,
// "export " before a name is allowed, a value may be wrapped in single or
// double quotes (no escapes are interpreted inside single quotes; \" \\ \$
// and \n inside double quotes). Errors name the file and line, never the
// value (it is a secret).
func Read(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	return Parse(path, raw)
}

// Parse parses the contents of an env file named file.
func Parse(file string, raw []byte) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || !validName(name) {
			return nil, fmt.Errorf("%s:%d: not NAME=value (names are letters, digits and _, not starting with a digit)", file, n)
		}
		v, err := unquote(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", file, n, name, err)
		}
		vars[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return vars, nil
}

func validName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func unquote(v string) (string, error) {
	if len(v) < 2 || (v[0] != '"' && v[0] != '\'') {
		return v, nil
	}
	q := v[0]
	if v[len(v)-1] != q {
		return "", fmt.Errorf("unterminated %c quote", q)
	}
	body := v[1 : len(v)-1]
	if q == '\'' {
		return body, nil
	}
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\\' && i+1 < len(body) {
			i++
			switch body[i] {
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(body[i])
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// Lookup returns a lookup function for config substitution: the file's
// values first (they are what the service gets), then the environment.
func Lookup(vars map[string]string, env func(string) (string, bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		return env(name)
	}
}
