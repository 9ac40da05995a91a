package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/rules/duty"
	"github.com/propgate/gateway/rules/planned"
	"github.com/propgate/gateway/rules/workorder"
)

// dutyOrders links duty-log entries to work orders: read from the store,
// opened through the service.
type dutyOrders struct {
	store   workorder.Store
	service *workorder.Service
}

func (o dutyOrders) WorkOrder(ctx context.Context, id int64) (*workorder.WorkOrder, []workorder.HistoryEntry, error) {
	return o.store.WorkOrder(ctx, id)
}

func (o dutyOrders) Create(ctx context.Context, w workorder.WorkOrder, by string) (*workorder.WorkOrder, error) {
	return o.service.Create(ctx, w, by)
}

var _ duty.WorkOrders = dutyOrders{}

// dutyPlanned is the planned works as a handover lists them: in their
// window, being verified or not recovered, and those starting within a day.
type dutyPlanned struct{ works *planned.Service }

func (p dutyPlanned) InProgress(_ context.Context, at time.Time) ([]duty.PlannedWork, error) {
	var out []duty.PlannedWork
	for _, w := range p.works.InProgress() {
		switch {
		case w.Status == planned.InProgress, w.Status == planned.Verifying, w.Status == planned.NotRecovered:
		case w.Status == planned.Scheduled && w.Start.Before(at.Add(24*time.Hour)):
		default:
			continue
		}
		title := w.Title
		if title == "" {
			title = w.Kind.ZH()
		}
		out = append(out, duty.PlannedWork{ID: w.ID, Title: title, Kind: string(w.Kind), Status: string(w.Status), Buildings: w.Buildings, Start: w.Start, End: w.End})
	}
	return out, nil
}

var _ duty.PlannedWorks = dutyPlanned{}

// newDuty builds the duty roster, handovers and log on the rules database,
// seeding the roster from the alerts: people and teams, and loads it;
// obs (the event bus) is told of each handover signed or accepted.
func newDuty(ctx context.Context, cfg *config.Config, store rulesStore, alarms duty.AlarmReader, incidents duty.IncidentReader,
	orders *workorder.Service, works *planned.Service, obs duty.Observer, log *slog.Logger) (*duty.Service, error) {
	dstore, err := openDutyStore(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("duty: %w", err)
	}
	d := duty.Deps{Store: dstore, Orders: dutyOrders{store, orders}, Observer: obs, Log: log, Now: time.Now, Location: time.Local,
		Sources: duty.Sources{Alarms: alarms, History: store, Incidents: incidents, WorkOrders: store, PlannedWorks: dutyPlanned{works}}}
	if a := cfg.Alerts; a != nil {
		if a.TimeZone != "" {
			if loc, err := time.LoadLocation(a.TimeZone); err == nil {
				d.Location = loc
			}
		}
		d.People = map[string]string{}
		for _, p := range a.People {
			d.People[p.ID] = p.Name
		}
		for _, t := range a.Teams {
			d.Required = append(d.Required, t.ID)
			team := duty.Team{ID: t.ID, Name: t.Name, Overrides: []duty.Override{},
				Rotation: duty.Rotation{Members: t.Rotation.Members, Start: t.Rotation.Start, Shift: duty.Duration(t.Rotation.Shift), TimeZone: t.Rotation.TimeZone}}
			for _, o := range t.Overrides {
				team.Overrides = append(team.Overrides, duty.Override{Person: o.Person, From: o.From, To: o.To})
			}
			d.Seed = append(d.Seed, team)
		}
	}
	svc := duty.NewService(d)
	if err := svc.Load(ctx); err != nil {
		return nil, err
	}
	return svc, nil
}

// newHandoverWatch is the overdue-handover alarm's reading (duty.handover:
// in the config), nil when the section is absent.
func newHandoverWatch(cfg *config.Config, assets []collectors.Asset, duties *duty.Service, sink collectors.Sink, log *slog.Logger) *duty.Watch {
	h := cfg.Duty.Handover
	if h == nil {
		return nil
	}
	var kind collectors.AssetKind
	for _, a := range assets {
		if a.ID == h.Asset {
			kind = a.Kind
		}
	}
	return duty.NewWatch(*h, duties, kind, sink, log)
}
