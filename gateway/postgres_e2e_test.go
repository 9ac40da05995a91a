package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/testenv"
)

// postgresConfig writes the demo config with its three databases (rules,
// alerts, audit) in one PostgreSQL database; the register, inspections,
// maintenance, duty and planned works keep their tables in the rules one.
func postgresConfig(t *testing.T, url string) string {
	t.Helper()
	root := testenv.RepoRoot(t)
	raw := demoYAML(t)
	s := string(raw)
	for _, file := range []string{"gateway.db", "alerts.db", "audit.db"} {
		old := "${GATEWAY_DATA:-data}/" + file
		if !strings.Contains(s, old) {
			t.Fatalf("configs/demo.yaml no longer has %s", old)
		}
		s = strings.Replace(s, old, url, 1)
	}
	s = strings.Replace(s, "  dir: playbooks", "  dir: "+filepath.Join(root, "configs", "playbooks"), 1)
	path := filepath.Join(t.TempDir(), "postgres.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The gateway on PostgreSQL: a pump fault raises an alarm that opens a work
// order; the alarm is acknowledged and the order dispatched; a power outage
// starts an incident whose step a person completes. After a SIGKILL the
// gateway comes back with all of it from PostgreSQL, and the rows are
// there (no SQLite file was made).
func TestGatewayOnPostgresIntegration(t *testing.T) {
	testenv.Integration(t)
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.config = postgresConfig(t, url)
	s.start()

	// Alarm → work order.
	if code, body := s.postJSON("/api/v1/simulator/scenarios/pump-fault", `{"target": "b3-pump-room"}`); code != 200 {
		t.Fatalf("inject: %d %s", code, body)
	}
	s.waitFor("low-pressure alarm", 30*time.Second, func() bool { return s.alarm(lowPressure).State == "unacknowledged" })
	ws := s.workOrdersFor("pump-low-pressure", "b3-pump-room")
	if len(ws) != 1 || ws[0].Status != "opened" {
		t.Fatalf("work orders: %+v", ws)
	}
	if code, body := s.postJSON("/api/v1/alarms/"+lowPressure+"/ack", `{"note": "1号泵过载跳闸，复位中"}`); code != 200 {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, body := s.postJSON(fmt.Sprintf("/api/v1/workorders/%d/transition", ws[0].ID), `{"to": "dispatched", "note": "派给张伟"}`); code != 200 {
		t.Fatalf("dispatch: %d %s", code, body)
	}
	// Incident.
	s.postJSON("/api/v1/simulator/scenarios/power-outage", `{"target": "b3-power-panel"}`)
	out := s.waitIncident("power-outage", "b3-power-panel")
	s.complete(out.ID, "expected-restoration", "国网95598：15:00前恢复")
	stepNote := func() string {
		for _, st := range s.incident(out.ID).Steps {
			if st.ID == "expected-restoration" {
				return st.Note
			}
		}
		return ""
	}
	if stepNote() != "国网95598：15:00前恢复" {
		t.Fatalf("step note %q", stepNote())
	}

	// The register and the contacts directory, seeded into PostgreSQL;
	// an admin's edit is kept across the restart.
	var lift struct {
		ContractorPhone string `json:"contractor_phone"`
		Version         int
	}
	s.getJSON("/api/v1/assets/b3-lift-1/register", &lift)
	if lift.ContractorPhone != "400-820-0870" || lift.Version != 1 {
		t.Fatalf("register: %+v", lift)
	}
	if code, body := s.do("PUT", "/api/v1/contacts/power-company", "demo-admin-token",
		`{"version":1,"name":"供电公司（国网客服）","category":"utility","phone":"95598","notes":"户号 3100-1188-02"}`); code != 200 {
		t.Fatalf("edit contact: %d %s", code, body)
	}

	s.stop(syscall.SIGKILL)
	s.start()
	var power struct{ Notes string }
	s.getJSON("/api/v1/contacts/power-company", &power)
	if power.Notes != "户号 3100-1188-02" {
		t.Fatalf("contact after the restart: %+v", power)
	}
	// (The outage may since have suppressed the pump alarm: its history
	// keeps the acknowledgement.)
	var alarm struct {
		History []struct{ To, Note string }
	}
	s.getJSON("/api/v1/alarms/"+lowPressure, &alarm)
	if len(alarm.History) < 2 || alarm.History[0].To != "unacknowledged" || alarm.History[1].To != "acknowledged" || alarm.History[1].Note != "1号泵过载跳闸，复位中" {
		t.Fatalf("alarm history after the restart: %+v", alarm.History)
	}
	var wo struct {
		Status  string
		History []struct{ From, To, Note string }
	}
	s.getJSON(fmt.Sprintf("/api/v1/workorders/%d", ws[0].ID), &wo)
	if wo.Status != "dispatched" || len(wo.History) != 2 || wo.History[1].Note != "派给张伟" {
		t.Fatalf("work order after the restart: %+v", wo)
	}
	if in := s.incident(out.ID); in.Playbook != "power-outage" || stepNote() != "国网95598：15:00前恢复" {
		t.Fatalf("incident after the restart: %+v", in)
	}
	s.stop(syscall.SIGTERM)

	// The records are PostgreSQL's, and no SQLite database was made.
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var transitions, history, incidents, sessionsTable, registerRows, upkeepTables int
	if err := c.QueryRow(ctx, `SELECT (SELECT count(*) FROM alarm_transitions WHERE alarm_id = $1), (SELECT count(*) FROM workorder_history),
		(SELECT count(*) FROM incidents WHERE playbook = 'power-outage'), (SELECT count(*) FROM pg_tables WHERE tablename IN ('sessions', 'alerts', 'audit')),
		(SELECT count(*) FROM register_entries), (SELECT count(*) FROM pg_tables WHERE tablename IN ('register_contacts', 'inspection_rounds', 'pm_items'))`,
		lowPressure).Scan(&transitions, &history, &incidents, &sessionsTable, &registerRows, &upkeepTables); err != nil {
		t.Fatal(err)
	}
	if transitions < 2 || history < 2 || incidents != 1 || sessionsTable != 3 || registerRows < 5 || upkeepTables != 3 {
		t.Fatalf("in PostgreSQL: %d transitions, %d history rows, %d outage incidents, %d of the alerts/audit tables, %d register entries, %d of the upkeep tables",
			transitions, history, incidents, sessionsTable, registerRows, upkeepTables)
	}
	dbs, _ := filepath.Glob(filepath.Join(s.data, "*.db"))
	if len(dbs) != 0 {
		t.Fatalf("SQLite files made: %v", dbs)
	}
}
