package postgres

import (
	"testing"

	"github.com/propgate/gateway/dashboard/audit"
	"github.com/propgate/gateway/internal/store/storetest"
	"github.com/propgate/gateway/internal/testenv"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/register"
)

// The shared store suite (internal/store/storetest), the one the SQLite
// backend passes, on a real PostgreSQL: one server, a fresh schema per
// subtest.
func TestStoreSuiteIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	t.Run("Rules", func(t *testing.T) {
		storetest.Rules(t, func(t *testing.T, outbox bool) storetest.RulesStore {
			s, err := OpenRules(t.Context(), pg.NewSchema(t), outbox)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("Alerts", func(t *testing.T) {
		storetest.Alerts(t, func(t *testing.T) storetest.AlertsStore {
			s, err := OpenAlerts(t.Context(), pg.NewSchema(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("Duty", func(t *testing.T) {
		storetest.Duty(t, func(t *testing.T) duty.Store {
			r, err := OpenRules(t.Context(), pg.NewSchema(t), false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			s, err := NewDuty(t.Context(), r.DB)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	// The upkeep stores (register and contacts, inspections, PM items) on
	// the rules database, as the gateway opens them.
	rulesDB := func(t *testing.T) *DB {
		r, err := OpenRules(t.Context(), pg.NewSchema(t), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r.DB
	}
	t.Run("Register", func(t *testing.T) {
		storetest.Register(t, func(t *testing.T) register.Store {
			s, err := NewRegister(t.Context(), rulesDB(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("Inspections", func(t *testing.T) {
		storetest.Inspections(t, func(t *testing.T) inspection.Store {
			s, err := NewInspections(t.Context(), rulesDB(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("Maintenance", func(t *testing.T) {
		storetest.Maintenance(t, func(t *testing.T) maintenance.Store {
			s, err := NewMaintenance(t.Context(), rulesDB(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("Audit", func(t *testing.T) {
		storetest.Audit(t, func(t *testing.T, maxRows int) audit.Store {
			s, err := OpenAudit(t.Context(), pg.NewSchema(t), maxRows)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}
