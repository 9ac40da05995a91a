package config

import (
	"fmt"
	"strings"

	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/register"
)

// The register:, inspections: and maintenance: sections (issue #13).

// DutySection is the duty: section: the overdue-handover alarm.
type DutySection struct {
	Handover *duty.HandoverCheck `yaml:"handover"` // nil: handovers are not watched
}

func (c *Config) registerDefaults() {
	if c.Duty.Handover != nil {
		c.Duty.Handover.SetDefaults()
	}
	if c.Register != nil {
		c.Register.SetDefaults()
	}
	if c.Inspections != nil {
		c.Inspections.SetDefaults()
	}
	if c.Maintenance != nil {
		c.Maintenance.SetDefaults()
	}
}

// validateRegister checks the three sections and that the playbooks' step
// contacts name directory entries (done after the playbooks load).
func (c *Config) validateRegister(add func(string, error), ids map[string]int) {
	known := func(id string) bool { return ids[id] > 0 }
	if c.Register != nil {
		add("register", c.Register.Validate(known))
	}
	if h := c.Duty.Handover; h != nil {
		team := func(id string) bool {
			if c.Alerts == nil {
				return false
			}
			for _, t := range c.Alerts.Teams {
				if t.ID == id {
					return true
				}
			}
			return false
		}
		if err := h.Validate(known, team); err != nil {
			add("duty", cfgerr.Prefix("handover", err))
		}
	}
	if c.Inspections != nil {
		add("inspections", c.Inspections.Validate(known))
		for i, r := range c.Inspections.Routes {
			if err := c.Rules.Orders.CheckCategory(r.Category); err != nil {
				add("inspections", cfgerr.Errorf(fmt.Sprintf("routes[%d].category", i), "%q is not under rules.categories (abnormal items open work orders in it); fix: one of %s", r.Category, strings.Join(c.Rules.Orders.CategoryIDs(), ", ")))
			}
		}
	}
	if c.Maintenance != nil {
		add("maintenance", c.Maintenance.Validate(known))
		for i, p := range c.Maintenance.Plans {
			if err := c.Rules.Orders.CheckCategory(p.Category); err != nil {
				add("maintenance", cfgerr.Errorf(fmt.Sprintf("plans[%d].category", i), "%q is not under rules.categories (PM work orders are opened in it); fix: one of %s", p.Category, strings.Join(c.Rules.Orders.CategoryIDs(), ", ")))
			}
		}
	}
}

// checkStepContacts: a playbook step's contacts: must be directory entries
// (or asset_contractor).
func (c *Config) checkStepContacts() error {
	if c.Register == nil { // without a directory the steps' contacts resolve to nothing
		return nil
	}
	c.Register.StepContacts = map[string]string{}
	for _, p := range c.Playbooks.Loaded {
		for _, st := range p.Steps {
			for j, id := range st.Contacts {
				if !c.Register.HasContact(id) {
					return cfgerr.Errorf(fmt.Sprintf("playbook %s, step %s: contacts[%d]", p.ID, st.ID, j),
						"%q is not in register.contacts; fix: add it to the directory, or use asset_contractor (the asset's 维保单位 from the register)", id)
				}
				if _, seen := c.Register.StepContacts[id]; !seen && id != register.AssetContractor {
					c.Register.StepContacts[id] = fmt.Sprintf("playbook %s, step %s", p.ID, st.ID)
				}
			}
		}
	}
	return nil
}
