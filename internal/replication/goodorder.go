package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/rules"
)

// KindGoodOrder is a site's equipment in good order (设备完好率) for one
// day of its calendar (key YYYY-MM-DD): the center cannot compute it (it
// needs the site's assets and which alarm rules mean a device fault), so
// the site sends its own figure, as asset-time and down time, which the
// center sums over a month per site and in total.
const KindGoodOrder = "good_order"

// GoodOrderDay is the doc of a good_order event.
type GoodOrderDay struct {
	Day          string                   `json:"day"`           // 2026-11-10, in the site's calendar time zone
	From         time.Time                `json:"from"`          // the day's midnight
	To           time.Time                `json:"to"`            // the next midnight, or when it was computed (today)
	AssetSeconds float64                  `json:"asset_seconds"` // assets × (To − From)
	DownSeconds  float64                  `json:"down_seconds"`  // asset-time in a device fault
	Kinds        map[string]GoodOrderTime `json:"kinds"`         // the same per asset kind
}

// GoodOrderTime is asset-time and down time.
type GoodOrderTime struct {
	AssetSeconds float64 `json:"asset_seconds"`
	DownSeconds  float64 `json:"down_seconds"`
}

// GoodOrderSource is the site's figure (rules.Equipment).
type GoodOrderSource interface {
	GoodOrder(ctx context.Context, from, to time.Time) (*rules.GoodOrder, error)
}

// GoodOrderReporter appends, every Every (and at start), each of the last
// Days days' equipment in good order whose figure changed since it last
// sent it (today's changes as the day goes on; a closed day changes when a
// late transition reaches the site's history), so the center holds the
// figure per day. After a restart it sends the days again (the center
// keeps the newest per day).
type GoodOrderReporter struct {
	site   string
	src    GoodOrderSource
	assets []collectors.Asset
	loc    *time.Location
	outbox Outbox
	kick   func()
	now    func() time.Time
	log    *slog.Logger
	Every  time.Duration // default 1h
	Days   int           // default 35: the whole of last month on the 1st
	sent   map[string][]byte
}

// NewGoodOrderReporter reports src's figure over assets, days split at
// loc's midnights (the site's calendar), into outbox; kick wakes the
// publisher.
func NewGoodOrderReporter(site string, src GoodOrderSource, assets []collectors.Asset, loc *time.Location, outbox Outbox, kick func(), log *slog.Logger, now func() time.Time) *GoodOrderReporter {
	return &GoodOrderReporter{site: site, src: src, assets: assets, loc: loc, outbox: outbox, kick: kick, now: now, log: log,
		Every: time.Hour, Days: 35, sent: map[string][]byte{}}
}

// Day computes one day's figure from g (the source's answer for [from, to)).
func (r *GoodOrderReporter) Day(day string, from, to time.Time, g *rules.GoodOrder) GoodOrderDay {
	period := to.Sub(from).Seconds()
	d := GoodOrderDay{Day: day, From: from, To: to, Kinds: map[string]GoodOrderTime{}}
	for _, a := range r.assets {
		k := d.Kinds[string(a.Kind)]
		k.AssetSeconds += period
		d.Kinds[string(a.Kind)] = k
		d.AssetSeconds += period
	}
	if g != nil {
		for _, a := range g.Assets {
			k := d.Kinds[a.Kind]
			k.DownSeconds += a.Down
			d.Kinds[a.Kind] = k
			d.DownSeconds += a.Down
		}
	}
	return d
}

// Report appends the days whose figure changed (one pass).
func (r *GoodOrderReporter) Report(ctx context.Context) error {
	if len(r.assets) == 0 {
		return nil
	}
	now := r.now()
	l := now.In(r.loc)
	today := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, r.loc)
	appended := false
	keep := map[string][]byte{}
	for i := r.Days - 1; i >= 0; i-- {
		from := today.AddDate(0, 0, -i)
		to := from.AddDate(0, 0, 1)
		if now.Before(to) {
			to = now
		}
		if !to.After(from) {
			continue
		}
		day := from.Format("2006-01-02")
		g, err := r.src.GoodOrder(ctx, from, to)
		if err != nil {
			return fmt.Errorf("replication: good order of %s: %w", day, err)
		}
		d := r.Day(day, from, to, g)
		doc, err := json.Marshal(d)
		if err != nil {
			return err
		}
		keep[day] = doc
		if bytes.Equal(r.sent[day], doc) { // a closed day unchanged (today's end moves: sent every pass)
			continue
		}
		e := Event{V: Version, Site: r.site, Kind: KindGoodOrder, Key: day, At: to, Op: "upsert", Doc: doc, Changed: []string{"down_seconds"}}
		if err := r.outbox.Append(ctx, &e); err != nil {
			return fmt.Errorf("replication: good order of %s: %w", day, err)
		}
		appended = true
	}
	r.sent = keep // the days in the window only: bounded
	if appended && r.kick != nil {
		r.kick()
	}
	return nil
}

// Run reports at start and every Every until ctx ends; a failed pass is
// logged and tried again at the next.
func (r *GoodOrderReporter) Run(ctx context.Context) error {
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		if err := r.Report(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("replication: equipment in good order not reported", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
