// Package centerkpi computes, at the monitoring center, the service
// figures each site computes of itself (处理率, 回访率, 维修及时率, 响应及时率,
// 突发事件到场及时率, 平均到场时间; issue 12) from the work orders the sites
// replicated, per site and in total, for a month in the company's time
// zone, and renders the center's monthly report (HTML and XLSX, Chinese
// first). The definitions are the site's: every figure comes from
// workorder.Compute over the decoded orders, so a site's row at the center
// equals the site's own figures for the orders the center holds. The total
// is computed over every order of the sites in the viewer's scope pooled
// (not an average of the sites' rates).
package centerkpi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/rules/monthly"
	"github.com/propgate/gateway/rules/workorder"
)

// Orders reads the work orders the sites replicated (the center store,
// internal/store/postgres): each site's newest doc of every order created
// in [from, to).
type Orders interface {
	WorkOrdersCreated(ctx context.Context, from, to time.Time) ([]replication.Record, error)
}

// GoodOrderDays reads the sites' equipment in good order per day
// (replication.KindGoodOrder, sent by each site); a store without it
// leaves the figure empty.
type GoodOrderDays interface {
	GoodOrderDays(ctx context.Context, fromDay, toDay string) ([]replication.Record, error)
}

// Row is one site's month, or the total over the sites shown.
type Row struct {
	Site   string          `json:"site,omitempty"` // "" for the total
	Name   string          `json:"name,omitempty"`
	Region string          `json:"region,omitempty"`
	KPIs   *workorder.KPIs `json:"kpis"`
	// Late is the orders of the month with a deadline missed (response,
	// arrival or resolution), as the site's monthly report counts them.
	Late int `json:"late"`
}

// Month is the center's figures for one month.
type Month struct {
	Month     string    `json:"month"` // 2026-11
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	TimeZone  string    `json:"time_zone"`
	Generated time.Time `json:"generated"`
	Partial   bool      `json:"partial"` // the month is not over
	Sites     []Row     `json:"sites"`
	Total     Row       `json:"total"`
	// Undecodable counts replicated docs left out because they are not a
	// work order (a site sending a newer or broken schema); logged too.
	Undecodable int `json:"undecodable"`
	// GoodOrderReported: the sites sent equipment in good order per day
	// (replication.KindGoodOrder); GoodOrderNote says how it is counted,
	// or why it has no value.
	GoodOrderReported bool   `json:"good_order_reported"`
	GoodOrderNote     string `json:"good_order_note"`
}

// Config is what the figures are judged by.
type Config struct {
	Targets  workorder.Targets // the center's rules.targets (defaults: the site's)
	Location *time.Location    // months begin at its midnight (rules.calendar.time_zone)
	Sites    []replication.SiteInfo
}

// Builder computes months from the center's records.
type Builder struct {
	orders Orders
	cfg    Config
	now    func() time.Time
}

// New builds the builder; Location nil is Asia/Shanghai's default via the
// work-order calendar.
func New(orders Orders, cfg Config, now func() time.Time) *Builder {
	cfg.Targets.SetDefaults()
	if cfg.Location == nil {
		c := workorder.Calendar{}
		c.SetDefaults()
		cfg.Location = c.Location()
	}
	return &Builder{orders: orders, cfg: cfg, now: now}
}

// Location is the time zone months begin in.
func (b *Builder) Location() *time.Location { return b.cfg.Location }

// ErrMonth is a month that cannot be reported (not YYYY-MM, or not begun).
var ErrMonth = errors.New("month")

// Build computes month (YYYY-MM; "" is the current month) for the sites
// sees accepts: known lists sites to show even without orders (the
// center's sites); every site with orders in the month is shown too.
func (b *Builder) Build(ctx context.Context, month string, sees func(site string) bool, known []string) (*Month, error) {
	now := b.now()
	if month == "" {
		month = now.In(b.cfg.Location).Format("2006-01")
	}
	from, to, err := monthly.ParseMonth(month, b.cfg.Location)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMonth, err)
	}
	if !from.Before(now) {
		return nil, fmt.Errorf("%w: %s has not begun", ErrMonth, month)
	}
	recs, err := b.orders.WorkOrdersCreated(ctx, from, to)
	if err != nil {
		return nil, err
	}
	m := &Month{Month: month, From: from, To: to, TimeZone: b.cfg.Location.String(), Generated: now, Partial: now.Before(to),
		GoodOrderNote: i18n.Both("center.kpis.good_order_note")}
	bySite := map[string][]*workorder.WorkOrder{}
	var all []*workorder.WorkOrder
	for _, r := range recs {
		if !sees(r.Site) {
			continue
		}
		w := new(workorder.WorkOrder)
		if err := json.Unmarshal(r.Doc, w); err != nil || w.Created.IsZero() {
			m.Undecodable++
			continue
		}
		bySite[r.Site] = append(bySite[r.Site], w)
		all = append(all, w)
	}
	good := map[string]*replication.GoodOrderDay{} // site → the month's sums
	if gd, ok := b.orders.(GoodOrderDays); ok {
		days, err := gd.GoodOrderDays(ctx, from.Format("2006-01-02"), to.Format("2006-01-02"))
		if err != nil {
			return nil, err
		}
		for _, r := range days {
			if !sees(r.Site) {
				continue
			}
			var d replication.GoodOrderDay
			if err := json.Unmarshal(r.Doc, &d); err != nil || !plausibleDay(r.Key, d) {
				m.Undecodable++
				continue
			}
			addGood(good, r.Site, d)
			addGood(good, "", d)
			if bySite[r.Site] == nil {
				bySite[r.Site] = []*workorder.WorkOrder{} // a row, orders or not
			}
		}
	}
	names := map[string]replication.SiteInfo{}
	for _, s := range b.cfg.Sites {
		names[s.ID] = s
	}
	sites := []string{}
	for _, s := range known {
		if sees(s) {
			sites = append(sites, s)
		}
	}
	for s := range bySite {
		sites = append(sites, s)
	}
	slices.Sort(sites)
	sites = slices.Compact(sites)
	for _, s := range sites {
		row := b.row(bySite[s], from, to, now)
		row.Site, row.Name, row.Region = s, names[s].Name, names[s].Region
		b.goodOrder(row.KPIs, good[s])
		m.Sites = append(m.Sites, row)
	}
	m.Total = b.row(all, from, to, now)
	b.goodOrder(m.Total.KPIs, good[""])
	if len(good) > 0 {
		m.GoodOrderReported, m.GoodOrderNote = true, i18n.Both("center.kpis.good_order_days")
	}
	if m.Sites == nil {
		m.Sites = []Row{}
	}
	return m, nil
}

// row is the site's figures over ws, as the site computes them (no
// equipment figure: see GoodOrderNote).
func (b *Builder) row(ws []*workorder.WorkOrder, from, to, now time.Time) Row {
	k := workorder.Compute(ws, from, to, now, b.cfg.Targets, nil)
	judged := now
	if judged.After(to) {
		judged = to
	}
	return Row{KPIs: k, Late: Late(ws, judged)}
}

// Late counts the counted orders (no drills, none cancelled) with a
// deadline missed at now, as the site's monthly report does.
func Late(ws []*workorder.WorkOrder, now time.Time) int {
	n := 0
	for _, w := range ws {
		if !workorder.Counts(w) || w.Status == workorder.Cancelled {
			continue
		}
		if workorder.ResponseLate(w, now) || workorder.ArrivalLate(w, now) || workorder.ResolutionLate(w, now) {
			n++
		}
	}
	return n
}

// Breached reports whether an open order is past a deadline at now (its
// response, its emergency arrival or its resolution): an SLA breach on
// the center's overview, as the site's daily review calls it breached.
// Drills never count.
func Breached(w *workorder.WorkOrder, now time.Time) bool {
	if w.Drill || !w.Status.Open() {
		return false
	}
	return w.ResponseBreached || w.ArrivalBreached || w.ResolutionBreached ||
		workorder.ResponseLate(w, now) || workorder.ArrivalLate(w, now) || workorder.ResolutionLate(w, now)
}

// Breaches counts each site's open orders past a deadline at now, from
// the records of open work orders; a doc that is not a work order is
// skipped and counted in bad.
func Breaches(recs []replication.Record, now time.Time) (bySite map[string]int, bad int) {
	bySite = map[string]int{}
	for _, r := range recs {
		var w workorder.WorkOrder
		if err := json.Unmarshal(r.Doc, &w); err != nil {
			bad++
			continue
		}
		if Breached(&w, now) {
			bySite[r.Site]++
		}
	}
	return bySite, bad
}

// addGood adds a day's asset-time and down time to site's sums.
func addGood(m map[string]*replication.GoodOrderDay, site string, d replication.GoodOrderDay) {
	g := m[site]
	if g == nil {
		g = &replication.GoodOrderDay{Kinds: map[string]replication.GoodOrderTime{}}
		m[site] = g
	}
	g.AssetSeconds += d.AssetSeconds
	g.DownSeconds += d.DownSeconds
	g.Day = "" // a month
	for k, t := range d.Kinds {
		s := g.Kinds[k]
		s.AssetSeconds += t.AssetSeconds
		s.DownSeconds += t.DownSeconds
		g.Kinds[k] = s
	}
	if g.From.IsZero() || d.From.Before(g.From) {
		g.From = d.From
	}
	if d.To.After(g.To) {
		g.To = d.To
	}
}

// goodOrder sets equipment in good order from the days' sums, as the site
// computes it: 1 − down time / asset-time; Of is the asset kinds.
func (b *Builder) goodOrder(k *workorder.KPIs, g *replication.GoodOrderDay) {
	if g == nil || g.AssetSeconds <= 0 {
		return
	}
	v := 1 - g.DownSeconds/g.AssetSeconds
	met := v >= k.GoodOrder.Target-1e-9
	k.GoodOrder.Value, k.GoodOrder.Met, k.GoodOrder.Of = &v, &met, len(g.Kinds)
	for kind, t := range g.Kinds {
		if t.AssetSeconds > 0 {
			k.Availability[kind] = 1 - t.DownSeconds/t.AssetSeconds
		}
	}
}

// maxAssetSeconds bounds one site's asset-time in a day: 100,000 assets.
const maxAssetSeconds = 100_000 * 86_400

// plausibleDay checks a site's day before it counts: the record's key is
// the day it says, a real date, and every figure finite with 0 ≤ down ≤
// asset ≤ maxAssetSeconds (a site cannot outweigh every other one in the
// total, nor make the sums infinite).
func plausibleDay(key string, d replication.GoodOrderDay) bool {
	if _, err := time.Parse("2006-01-02", key); err != nil || d.Day != key || len(d.Kinds) > 64 {
		return false
	}
	ok := func(asset, down float64) bool {
		return !math.IsNaN(asset) && !math.IsNaN(down) && asset > 0 && asset <= maxAssetSeconds && down >= 0 && down <= asset
	}
	if !ok(d.AssetSeconds, d.DownSeconds) {
		return false
	}
	for _, k := range d.Kinds {
		if !ok(k.AssetSeconds, k.DownSeconds) && !(k.AssetSeconds == 0 && k.DownSeconds == 0) {
			return false
		}
	}
	return true
}
