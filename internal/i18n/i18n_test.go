package i18n

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

var han = regexp.MustCompile(`\p{Han}`)

// Every entry has both languages; the Chinese is Chinese and the English
// has no Chinese in it.
func TestCatalogueComplete(t *testing.T) {
	for _, k := range Keys() {
		zh, en := catalog[k][ZH], catalog[k][EN]
		if zh == "" || en == "" {
			t.Errorf("%s: zh %q en %q: both are needed", k, zh, en)
		}
		if han.MatchString(en) && k != "lang_switch" {
			t.Errorf("%s: English %q has Chinese in it", k, en)
		}
		if !han.MatchString(zh) && !strings.ContainsAny(zh, "/%") && k != "lang_switch" {
			t.Errorf("%s: Chinese %q has no Chinese in it", k, zh)
		}
	}
}

// The seeds' vocabulary (docs/glossary.md), not the words the review
// found wrong.
func TestCatalogueUsesTheSeedsVocabulary(t *testing.T) {
	avoid := map[string]string{"告警": "报警", "应急事件": "突发事件", "按时解决率": "维修及时率", "报告人": "报修人", "进水": "水浸", "干燥": "正常", "确认接单": "确认收到"}
	for _, k := range Keys() {
		zh := strings.ReplaceAll(catalog[k][ZH], "进水阀", "") // the inlet valve is 进水阀
		for bad, good := range avoid {
			if strings.Contains(zh, bad) {
				t.Errorf("%s: %q says %s; the documents say %s", k, catalog[k][ZH], bad, good)
			}
		}
	}
	for key, want := range map[string]string{"alarms": "报警", "incidents": "突发事件", "kpi.resolution_on_time_rate": "维修及时率",
		"reporter": "报修人", "val.wet": "水浸", "val.dry": "正常", "report.sign_duty": "值班人签字", "report.sign_manager": "工程部经理签字"} {
		if got := T(ZH, key); got != want {
			t.Errorf("T(zh, %s) = %q, want %q", key, got, want)
		}
	}
}

func TestLookups(t *testing.T) {
	if got := T(EN, "priority.critical"); got != "Critical" {
		t.Errorf("T(en, priority.critical) = %q", got)
	}
	if got := T(ZH, "cat.sewage_pit"); got != "sewage_pit" {
		t.Errorf("unknown category shows its id, got %q", got)
	}
	if got := Tf(ZH, "val.trapped", 3); got != "困3人" {
		t.Errorf("Tf = %q", got)
	}
	if Parse("en-GB") != EN || Parse("") != ZH || Parse("zh-CN") != ZH {
		t.Error("Parse")
	}
	if got := Pick(ZH, "", "Fire"); got != "Fire" {
		t.Errorf("Pick without zh = %q", got)
	}
	if got := Pick(EN, "火警", "Fire"); got != "Fire" {
		t.Errorf("Pick(en) = %q", got)
	}
}

func TestJSIsTheCatalogue(t *testing.T) {
	js := string(JS())
	start := strings.Index(js, "const CATALOG = ")
	if start < 0 || !strings.HasSuffix(js, ";\n") {
		t.Fatalf("JS: %.80s", js)
	}
	var c map[string]map[string]string
	if err := json.Unmarshal([]byte(strings.TrimSuffix(js[start+len("const CATALOG = "):], ";\n")), &c); err != nil {
		t.Fatal(err)
	}
	if len(c) != len(catalog) || c["incidents"]["zh"] != "突发事件" {
		t.Fatalf("JS catalogue differs: %d entries, incidents=%q", len(c), c["incidents"]["zh"])
	}
}
