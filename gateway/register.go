package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/dashboard"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/rules/inspection"
	"github.com/propgate/gateway/rules/maintenance"
	"github.com/propgate/gateway/rules/register"
	"github.com/propgate/gateway/rules/workorder"
)

// upkeep is the register, inspection rounds, night lighting and PM plans
// (issue #13), each present when its section is configured. Their tables
// live in the rules database (SQLite or PostgreSQL), each under its own
// migration set.
type upkeep struct {
	register    *register.Service
	inspections *inspection.Service
	night       *inspection.NightWatch
	maintenance *maintenance.Service
}

func newUpkeep(ctx context.Context, cfg *config.Config, assets []collectors.Asset, store rulesStore, sink collectors.Sink,
	state *collectors.State, orders *workorder.Service, log *slog.Logger) (*upkeep, error) {
	d := &upkeep{}
	if cfg.Register == nil && cfg.Inspections == nil && cfg.Maintenance == nil {
		return d, nil
	}
	if cfg.Register != nil {
		st, err := openRegisterStore(ctx, store)
		if err != nil {
			return nil, err
		}
		d.register = register.NewService(*cfg.Register, assets, st, sink, log.With("component", "register"), time.Now)
		if err := d.register.Load(ctx); err != nil {
			return nil, err
		}
	}
	if c := cfg.Inspections; c != nil {
		st, err := openInspectionStore(ctx, store)
		if err != nil {
			return nil, err
		}
		d.inspections = inspection.NewService(*c, assets, inspection.Deps{Store: st, Telemetry: state, WorkOrders: orders, Sink: sink,
			Log: log.With("component", "inspections"), Now: time.Now})
		if err := d.inspections.Load(ctx); err != nil {
			return nil, err
		}
		if c.NightLighting != nil {
			d.night = inspection.NewNightWatch(*c.NightLighting, assets, state, sink, log.With("component", "night-lighting"), time.Now)
		}
	}
	if cfg.Maintenance != nil {
		st, err := openMaintenanceStore(ctx, store)
		if err != nil {
			return nil, err
		}
		d.maintenance = maintenance.NewService(*cfg.Maintenance, maintenance.Deps{Store: st, Orders: orders, OrderRead: store, Telemetry: state,
			Log: log.With("component", "maintenance"), Now: time.Now})
	}
	return d, nil
}

func (d *upkeep) services() []service {
	var out []service
	if d.register != nil {
		out = append(out, service{"register", d.register.Run})
	}
	if d.inspections != nil {
		out = append(out, service{"inspections", d.inspections.Run})
	}
	if d.night != nil {
		out = append(out, service{"night-lighting", d.night.Run})
	}
	if d.maintenance != nil {
		out = append(out, service{"maintenance", d.maintenance.Run})
	}
	return out
}

func (d *upkeep) mount(api *dashboard.API, incidents dashboard.IncidentReader, publicURL string) {
	p := dashboard.RegisterPorts{Incidents: incidents, PublicURL: publicURL}
	if d.register != nil {
		p.Register = d.register
	}
	if d.inspections != nil {
		p.Inspections = d.inspections
	}
	if d.maintenance != nil {
		p.Maintenance = d.maintenance
	}
	api.MountRegister(p)
}
