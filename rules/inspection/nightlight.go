package inspection

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/propgate/gateway/collectors"
)

// NightField is the derived reading the night-lighting watch publishes on
// every lighting circuit: true while it is night at the site and the
// circuit is off. A rule alarms on it at a priority quiet hours do not
// hold (configs/demo.yaml: night-lighting-off, medium).
const NightField = "night_unlit"

// NightWatch checks lighting circuits between dusk and dawn.
type NightWatch struct {
	cfg    NightLighting
	tel    Readings
	sink   collectors.Sink
	assets []collectors.Asset
	log    *slog.Logger
	now    func() time.Time
}

// NewNightWatch builds the watch over the assets of cfg.Kind.
func NewNightWatch(cfg NightLighting, assets []collectors.Asset, tel Readings, sink collectors.Sink, log *slog.Logger, now func() time.Time) *NightWatch {
	w := &NightWatch{cfg: cfg, tel: tel, sink: sink, log: log, now: now}
	for _, a := range assets {
		if string(a.Kind) == cfg.Kind {
			w.assets = append(w.assets, a)
		}
	}
	sort.Slice(w.assets, func(i, j int) bool { return w.assets[i].ID < w.assets[j].ID })
	return w
}

// Night reports whether it is night at the site at t.
func (w *NightWatch) Night(t time.Time) bool {
	return SunElevation(t, w.cfg.Latitude, w.cfg.Longitude) < *w.cfg.SunBelow
}

// Check publishes night_unlit for each circuit whose on/off reading is good
// (a circuit without a good reading is the no-data rules' business).
func (w *NightWatch) Check() {
	now := w.now()
	night := w.Night(now)
	pts := make([]collectors.Point, 0, len(w.assets))
	for _, a := range w.assets {
		f, ok := w.tel.Get(a.ID, w.cfg.Field)
		if !ok || f.Quality != collectors.QualityGood {
			continue
		}
		on, ok := f.Value.AsFloat()
		if !ok {
			continue
		}
		pts = append(pts, collectors.Point{Asset: a.ID, Kind: a.Kind, Field: NightField, Value: collectors.Bool(night && on == 0),
			Quality: collectors.QualityGood, Time: now})
	}
	if len(pts) > 0 && w.sink != nil {
		w.sink.Publish(Source, pts)
	}
}

// Run checks every cfg.Every until ctx ends.
func (w *NightWatch) Run(ctx context.Context) error {
	w.Check()
	collectors.Every(ctx, w.cfg.Every, w.Check)
	return nil
}
