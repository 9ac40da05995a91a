// Package rules turns readings into alarms: rule definitions, their
// conditions (one type per kind) and the ISA-18.2 alarm lifecycle, evaluated
// by the Engine on every point and every tick.
//
// Subpackages own the rest of the rules layer: workorder (work orders,
// SLAs, KPIs, the CMMS webhook), playbook (emergency plans, incidents,
// reports) and event (the bus the dashboard and alerting listen to).
package rules
