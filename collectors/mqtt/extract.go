package mqtt

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// extractor pulls the configured paths out of a JSON payload without
// building the whole document: the payload is first checked with json.Valid,
// then one pass over the bytes records the raw token at each wanted path.
type extractor struct {
	root  *trie
	paths int
}

type trie struct {
	id       int   // path id when a path ends here, else -1
	subtree  []int // every path id at or below this node
	children map[string]*trie
}

func newExtractor(paths []string) (*extractor, map[string]int) {
	x := &extractor{root: &trie{id: -1}}
	ids := map[string]int{}
	for _, p := range paths {
		if _, ok := ids[p]; ok {
			continue
		}
		ids[p] = x.paths
		n := x.root
		n.subtree = append(n.subtree, x.paths)
		for _, key := range strings.Split(p, ".") {
			if n.children == nil {
				n.children = map[string]*trie{}
			}
			c := n.children[key]
			if c == nil {
				c = &trie{id: -1}
				n.children[key] = c
			}
			n = c
			n.subtree = append(n.subtree, x.paths)
		}
		n.id = x.paths
		x.paths++
	}
	return x, ids
}

// extract fills vals (len x.paths) with the raw JSON token at each path (a
// sub-slice of b), nil where a path is missing or null. The payload must be
// valid JSON.
func (x *extractor) extract(b []byte, vals [][]byte) {
	x.walk(b, skipWS(b, 0), x.root, vals)
}

func (x *extractor) walk(b []byte, i int, n *trie, vals [][]byte) int {
	if n == nil {
		return skipValue(b, i)
	}
	// A repeated key replaces everything an earlier occurrence set, as in
	// encoding/json.
	for _, id := range n.subtree {
		vals[id] = nil
	}
	start := i
	if n.children != nil && (b[i] == '{' || b[i] == '[') {
		if b[i] == '{' {
			i = skipWS(b, i+1)
			for b[i] != '}' {
				keyStart := i
				i = skipString(b, i)
				key := b[keyStart+1 : i-1]
				var child *trie
				if needsDecode(key) {
					var k string
					_ = json.Unmarshal(b[keyStart:i], &k)
					child = n.children[k]
				} else {
					child = n.children[string(key)] // no allocation for a map lookup
				}
				i = skipWS(b, i)
				i = skipWS(b, i+1) // ':'
				i = skipWS(b, x.walk(b, i, child, vals))
				if b[i] == ',' {
					i = skipWS(b, i+1)
				}
			}
		} else {
			i = skipWS(b, i+1)
			for idx := 0; b[i] != ']'; idx++ {
				i = skipWS(b, x.walk(b, i, n.children[strconv.Itoa(idx)], vals))
				if b[i] == ',' {
					i = skipWS(b, i+1)
				}
			}
		}
		i++
	} else {
		i = skipValue(b, i)
	}
	if n.id >= 0 && b[start] != 'n' { // null counts as missing
		vals[n.id] = b[start:i]
	}
	return i
}

// token decodes a raw token as encoding/json with UseNumber would: string,
// json.Number, bool, or a map or slice for compound values.
func token(t []byte) any {
	if t == nil {
		return nil
	}
	switch t[0] {
	case '"':
		s := t[1 : len(t)-1]
		if !needsDecode(s) {
			return string(s)
		}
		var out string
		_ = json.Unmarshal(t, &out)
		return out
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	case '{', '[':
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		var out any
		_ = dec.Decode(&out)
		return out
	}
	return json.Number(t)
}

// needsDecode reports whether a JSON string body needs encoding/json to
// decode it: it has escapes, or bytes that are not valid UTF-8 (which
// encoding/json replaces with U+FFFD).
func needsDecode(s []byte) bool {
	ascii := true
	for _, c := range s {
		if c == '\\' {
			return true
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return !ascii && !utf8.Valid(s)
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
