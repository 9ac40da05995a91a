package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/propgate/gateway/dashboard/audit"
	"github.com/propgate/gateway/internal/store/storetest"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/register"
)

// The shared store suite (internal/store/storetest), the one the
// PostgreSQL backend passes too.
func TestRulesStoreSuite(t *testing.T) {
	storetest.Rules(t, func(t *testing.T, outbox bool) storetest.RulesStore {
		s, err := OpenRules(filepath.Join(t.TempDir(), "gateway.db"), outbox)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestAlertsStoreSuite(t *testing.T) {
	storetest.Alerts(t, func(t *testing.T) storetest.AlertsStore {
		s, err := OpenAlerts(filepath.Join(t.TempDir(), "alerts.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestAuditStoreSuite(t *testing.T) {
	storetest.Audit(t, func(t *testing.T, maxRows int) audit.Store {
		s, err := OpenAudit(filepath.Join(t.TempDir(), "audit.db"), maxRows)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestDutyStoreSuite(t *testing.T) {
	storetest.Duty(t, func(t *testing.T) duty.Store {
		r, err := OpenRules(filepath.Join(t.TempDir(), "gateway.db"), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		s, err := NewDuty(r.DB)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// openRulesDB is a fresh rules database file the upkeep stores add their
// tables to.
func openRulesDB(t *testing.T) *DB {
	r, err := OpenRules(filepath.Join(t.TempDir(), "gateway.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.DB
}

func TestRegisterStoreSuite(t *testing.T) {
	storetest.Register(t, func(t *testing.T) register.Store {
		s, err := OpenRegister(openRulesDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestInspectionStoreSuite(t *testing.T) {
	storetest.Inspections(t, func(t *testing.T) inspection.Store {
		s, err := OpenInspections(openRulesDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMaintenanceStoreSuite(t *testing.T) {
	storetest.Maintenance(t, func(t *testing.T) maintenance.Store {
		s, err := OpenMaintenance(openRulesDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
