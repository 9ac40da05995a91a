package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/audit"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/store/sqlite"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/planned"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/register"
	"github.com/propgate/gateway/rules/workorder"
)

// The stores the app opens, whichever backend holds them: a database
// setting that is a postgres:// URL opens internal/store/postgres, anything
// else is an SQLite file (internal/store/sqlite). Both pass the same suite
// (internal/store/storetest).

// rulesStore is what the rules database serves: the engine's alarms, work
// orders and their webhook outbox, incidents, the alarm history.
type rulesStore interface {
	rules.AlarmStore
	workorder.Store
	workorder.Outbox
	playbook.Store
	rules.FaultHistory
	alarmkpi.Events
	AlarmHistory(ctx context.Context, id string) ([]rules.Transition, error)
	Close() error
}

// alertsStore is what the alerts database serves.
type alertsStore interface {
	alerts.Store
	alerts.LinkLedger
	alerts.Log
	Close() error
}

// auditStore is the console's audit log and sessions.
type auditStore interface {
	audit.Store
	Close() error
}

var (
	_ rulesStore  = (*sqlite.Rules)(nil)
	_ rulesStore  = (*postgres.Rules)(nil)
	_ alertsStore = (*sqlite.Alerts)(nil)
	_ alertsStore = (*postgres.Alerts)(nil)
	_ auditStore  = (*sqlite.Audit)(nil)
	_ auditStore  = (*postgres.Audit)(nil)
)

// sqliteDir makes the directory an SQLite file goes in.
func sqliteDir(path string) error { return os.MkdirAll(filepath.Dir(path), 0o750) }

func openRulesStore(ctx context.Context, db string, outbox bool) (rulesStore, error) {
	if postgres.IsURL(db) {
		return postgres.OpenRules(ctx, db, outbox)
	}
	if err := sqliteDir(db); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return sqlite.OpenRules(db, outbox)
}

// openDutyStore adds the duty tables to the rules database, whichever
// backend holds it.
func openDutyStore(ctx context.Context, store rulesStore) (duty.Store, error) {
	switch s := store.(type) {
	case *sqlite.Rules:
		return sqlite.NewDuty(s.DB)
	case *postgres.Rules:
		return postgres.NewDuty(ctx, s.DB)
	}
	return nil, fmt.Errorf("no duty store for %T", store)
}

// openPlannedStore adds the planned-works tables to the rules database,
// whichever backend holds it.
func openPlannedStore(ctx context.Context, store rulesStore) (planned.Store, error) {
	switch s := store.(type) {
	case *sqlite.Rules:
		return sqlite.OpenPlanned(s.DB)
	case *postgres.Rules:
		return postgres.NewPlanned(ctx, s.DB)
	}
	return nil, fmt.Errorf("no planned-works store for %T", store)
}

// openRegisterStore adds the register's and the contacts directory's tables
// to the rules database, whichever backend holds it.
func openRegisterStore(ctx context.Context, store rulesStore) (register.Store, error) {
	switch s := store.(type) {
	case *sqlite.Rules:
		return sqlite.OpenRegister(s.DB)
	case *postgres.Rules:
		return postgres.NewRegister(ctx, s.DB)
	}
	return nil, fmt.Errorf("no register store for %T", store)
}

// openInspectionStore adds the inspection rounds' tables to the rules
// database, whichever backend holds it.
func openInspectionStore(ctx context.Context, store rulesStore) (inspection.Store, error) {
	switch s := store.(type) {
	case *sqlite.Rules:
		return sqlite.OpenInspections(s.DB)
	case *postgres.Rules:
		return postgres.NewInspections(ctx, s.DB)
	}
	return nil, fmt.Errorf("no inspection store for %T", store)
}

// openMaintenanceStore adds the PM items' tables to the rules database,
// whichever backend holds it.
func openMaintenanceStore(ctx context.Context, store rulesStore) (maintenance.Store, error) {
	switch s := store.(type) {
	case *sqlite.Rules:
		return sqlite.OpenMaintenance(s.DB)
	case *postgres.Rules:
		return postgres.NewMaintenance(ctx, s.DB)
	}
	return nil, fmt.Errorf("no maintenance store for %T", store)
}

func openAlertsStore(ctx context.Context, db string) (alertsStore, error) {
	if postgres.IsURL(db) {
		return postgres.OpenAlerts(ctx, db)
	}
	if err := sqliteDir(db); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return sqlite.OpenAlerts(db)
}

func openAuditStore(ctx context.Context, db string, maxRows int) (auditStore, error) {
	if postgres.IsURL(db) {
		return postgres.OpenAudit(ctx, db, maxRows)
	}
	if err := sqliteDir(db); err != nil {
		return nil, err
	}
	return sqlite.OpenAudit(db, maxRows)
}

// openAuth is the dashboard's logins and audit (nil without a dashboard:
// section: the API is read-only); closeAuth closes the audit store.
func openAuth(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (auth *access.Auth, closeAuth func(), err error) {
	if cfg.Dashboard == nil {
		return nil, func() {}, nil
	}
	audits, err := openAuditStore(ctx, cfg.Dashboard.AuditDatabase, cfg.Dashboard.AuditMaxRows)
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard: %w", err)
	}
	closeAuth = func() { closeLogged(log, "audit store", audits.Close) }
	if auth, err = access.NewAuth(*cfg.Dashboard, audits, log.With("component", "auth")); err != nil {
		closeAuth()
		return nil, nil, fmt.Errorf("dashboard: %w", err)
	}
	reg.MustRegister(auth.Metrics.Collectors()...)
	return auth, closeAuth, nil
}
