package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/monthly"
	"github.com/propgate/gateway/rules/workorder"
)

// RulesSection is the rules: section: where the rules database lives, the
// alarm rules (package rules) and the work-order settings (package
// workorder) side by side, as the file has always had them.
type RulesSection struct {
	Database string           `yaml:"database"` // SQLite file (default data/gateway.db) or postgres:// URL
	Rules    []rules.Rule     `yaml:"rules"`
	Orders   workorder.Config `yaml:",inline"` // reopen_window, sla, webhook, categories, calendar, callback, targets, daily_review
	// AlarmKPIs sets the alarm-system health figures (operators, flood threshold, stale after).
	AlarmKPIs alarmkpi.Config `yaml:"alarm_kpis"`
	// MonthlyReport sends the previous month's report on the 1st (at, to, no_attachment).
	MonthlyReport monthly.ScheduleConfig `yaml:"monthly_report"`
}

// Alarms is the alarm-rule part, for the engine.
func (s *RulesSection) Alarms() rules.Config { return rules.Config{Rules: s.Rules} }

// SetDefaults fills unset values.
func (s *RulesSection) SetDefaults() {
	if s.Database == "" {
		s.Database = "data/gateway.db"
	}
	a := s.Alarms()
	a.SetDefaults()
	s.Orders.SetDefaults()
	s.AlarmKPIs.SetDefaults()
	s.MonthlyReport.SetDefaults()
}

// Validate checks the section and compiles the rules' conditions.
func (s *RulesSection) Validate(assets []collectors.Asset) error {
	a := s.Alarms()
	if err := a.Validate(assets); err != nil {
		return err
	}
	if err := s.Orders.Validate(); err != nil {
		return err
	}
	if err := s.MonthlyReport.Validate(); err != nil {
		return err
	}
	// With a category table, a rule's work orders use its categories too.
	if ids := s.Orders.CategoryIDs(); len(ids) > 0 {
		for i, r := range s.Rules {
			if r.WorkOrder != nil && !slices.Contains(ids, r.WorkOrder.Category) {
				return cfgerr.Errorf(fmt.Sprintf("rules[%d].workorder.category", i), "%q is not under rules.categories; fix: one of %s", r.WorkOrder.Category, strings.Join(ids, ", "))
			}
		}
	}
	return nil
}
