package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/propgate/gateway/gateway/config"
)

func demoWith(t *testing.T, edits ...string) *config.Config {
	t.Helper()
	path := filepath.Join("..", "configs", "demo.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for i := 0; i < len(edits); i += 2 {
		if !strings.Contains(text, edits[i]) {
			t.Fatalf("demo.yaml has no %q", edits[i])
		}
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	cfg, err := config.Parse(path, []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// What a reload applies is not listed as needing a restart; what it does
// not apply is, by section.
func TestRestartNeededListsWhatAReloadCannotApply(t *testing.T) {
	run := demoWith(t)
	applied := demoWith(t, `name: "Incoming supply lost"`, `name: "Mains lost"`,
		`location: "B1 北端，车库坡道后"`, `location: "B1 北端"`,
		"  client_id: gateway-yushan-garden\n", "  client_id: gateway-yushan-garden\n  keep_alive: 20s\n")
	if got := restartNeeded(run, applied); len(got) != 0 {
		t.Fatalf("rules, names and MQTT listed as needing a restart: %v", got)
	}
	next := demoWith(t, "listen: ${GATEWAY_LISTEN:-127.0.0.1:8080}", "listen: ${GATEWAY_LISTEN:-127.0.0.1:8081}",
		`building: "5号楼", floor: "1",  location: "首层大堂"`, `building: "6号楼", floor: "1",  location: "首层大堂"`,
		"  reopen_window: 24h\n", "  reopen_window: 12h\n")
	got := fmt.Sprint(restartNeeded(run, next))
	for _, want := range []string{"http", "rules (work orders", "assets[].building in InfluxDB's building tag"} {
		if !strings.Contains(got, want) {
			t.Errorf("restart needed %s: lacks %q", got, want)
		}
	}
	if strings.Contains(got, "assets (added") {
		t.Errorf("a moved asset listed as added or removed: %s", got)
	}
	assets, n := relabel(run.CollectorAssets(), applied.CollectorAssets())
	if n != 1 || assets[0].Location != "B1 北端" {
		t.Fatalf("relabel: %d, %+v", n, assets[0])
	}
}
