// Package i18n is the one message catalogue: every string a person reads on
// a screen, in a message or in a report, in Chinese (the default, in the
// seeds' vocabulary: docs/glossary.md) and English. Go code looks strings up
// with T; the screens load the same catalogue as /static/i18n.js (JS).
//
// Keys are grouped by prefix: priority.<p>, state.<alarm state>, wo.<status>,
// wo.do.<status> (the button that moves there), role.<playbook role>,
// cat.<category>, kpi.<name>, msg.* (notifications), report.* (the incident
// record), tl.<timeline kind>, m.* (the phone pages); the rest is the UI.
package i18n

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Lang is a language of the catalogue.
type Lang string

// The catalogue's languages; ZH is the default.
const (
	ZH Lang = "zh"
	EN Lang = "en"
)

// Parse maps a language setting ("zh", "zh-CN", "en", "en-GB", "") to a
// catalogue language: English when it says so, Chinese otherwise.
func Parse(s string) Lang {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "en") {
		return EN
	}
	return ZH
}

//go:embed catalog.json
var catalogJSON []byte

// catalog is read once from catalog.json and never changed.
var catalog = func() map[string]map[Lang]string {
	var c map[string]map[Lang]string
	if err := json.Unmarshal(catalogJSON, &c); err != nil {
		panic("internal/i18n: catalog.json: " + err.Error()) // caught by the package's tests
	}
	delete(c, "_comment")
	return c
}()

// Has reports whether key is in the catalogue.
func Has(key string) bool { _, ok := catalog[key]; return ok }

// T is key's text in lang. An unknown key is returned as it is (so a
// missing entry shows, and the DOM test catches it); a prefixed key whose
// last part is unknown (a site's own category) returns that last part.
func T(lang Lang, key string) string {
	if m, ok := catalog[key]; ok {
		if s := m[lang]; s != "" {
			return s
		}
		return m[ZH]
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 && i < len(key)-1 {
		return key[i+1:]
	}
	return key
}

// Tf formats key's text with args.
func Tf(lang Lang, key string, args ...any) string { return fmt.Sprintf(T(lang, key), args...) }

// Both is "中文 English" for things read by people of either language.
func Both(key string) string {
	zh, en := T(ZH, key), T(EN, key)
	if zh == en {
		return zh
	}
	return zh + " " + en
}

// Pick chooses the Chinese or English of a config's text pair: zh when the
// language is Chinese and it is set, else en (else zh).
func Pick(lang Lang, zh, en string) string {
	if lang == ZH && zh != "" || en == "" {
		return zh
	}
	return en
}

// Keys lists the catalogue's keys, sorted.
func Keys() []string {
	k := make([]string, 0, len(catalog))
	for key := range catalog {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// JS is the catalogue as a script for the screens: it defines CATALOG
// ({key: {zh, en}}), read by tr() in app.js and every console page.
func JS() []byte {
	b, _ := json.Marshal(catalog) // map keys sorted: the same bytes each time
	return append(append([]byte("\"use strict\";\n// Generated from internal/i18n/catalog.json; do not edit.\nconst CATALOG = "), b...), ";\n"...)
}
