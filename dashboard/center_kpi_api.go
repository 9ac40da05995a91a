package dashboard

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/centerkpi"
	"github.com/propgate/gateway/internal/replication"
)

// CenterMonths computes the center's month of figures for the sites sees
// accepts (centerkpi.Builder).
type CenterMonths interface {
	Build(ctx context.Context, month string, sees func(site string) bool, known []string) (*centerkpi.Month, error)
}

// CenterSiteList lists the sites the center knows (the center store).
type CenterSiteList interface {
	Sites(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]replication.Site, error)
}

// CenterKPIs is what MountCenterKPIs needs.
type CenterKPIs struct {
	Months CenterMonths
	Sites  CenterSiteList         // every site the center has heard from gets a row, orders or not
	Known  []replication.SiteInfo // and every configured one (center.sites)
	Now    func() time.Time
	Log    *slog.Logger
}

// MountCenterKPIs adds the center's cross-site figures: GET
// /api/v1/center/kpis?month=YYYY-MM (per site and in total, JSON) and GET
// /api/v1/center/reports/monthly?month=…&format=html|xlsx, each limited to
// the user's sites (the total is over those sites only). The page is
// /static/center-kpis.html.
func (a *API) MountCenterKPIs(c CenterKPIs) {
	if c.Now == nil {
		c.Now = time.Now
	}
	x := &centerKPIAPI{c: c}
	a.mux.HandleFunc("GET /api/v1/center/kpis", x.kpis)
	a.mux.HandleFunc("GET /api/v1/center/reports/monthly", x.report)
}

type centerKPIAPI struct{ c CenterKPIs }

// month computes the request's month for its user, or answers the error.
func (x *centerKPIAPI) month(w http.ResponseWriter, r *http.Request) *centerkpi.Month {
	p := scope(r)
	known := []string{}
	for _, s := range x.c.Known {
		known = append(known, s.ID)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if x.c.Sites != nil {
		sites, err := x.c.Sites.Sites(ctx, x.c.Now(), time.Hour)
		if err != nil {
			x.c.Log.Error("center kpis: sites", "err", err)
			httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
			return nil
		}
		for _, s := range sites {
			known = append(known, s.Site)
		}
	}
	m, err := x.c.Months.Build(ctx, r.URL.Query().Get("month"), p.SeesSite, known)
	switch {
	case errors.Is(err, centerkpi.ErrMonth):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		httpjson.Error(w, http.StatusServiceUnavailable, "the figures took too long; try again")
		return nil
	case err != nil:
		x.c.Log.Error("center kpis", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
		return nil
	}
	if m.Undecodable > 0 {
		x.c.Log.Warn("center kpis: replicated work orders that could not be read were left out", "month", m.Month, "count", m.Undecodable)
	}
	return m
}

func (x *centerKPIAPI) kpis(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "month") {
		return
	}
	if m := x.month(w, r); m != nil {
		httpjson.Write(w, http.StatusOK, m)
	}
}

func (x *centerKPIAPI) report(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "month", "format") {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "html" && format != "xlsx" {
		httpjson.Error(w, http.StatusBadRequest, "format "+format+" is not html or xlsx")
		return
	}
	m := x.month(w, r)
	if m == nil {
		return
	}
	var buf bytes.Buffer
	if format == "xlsx" {
		if err := m.XLSX(&buf); err != nil {
			x.c.Log.Error("center monthly report", "err", err)
			httpjson.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", `attachment; filename="center-monthly-report-`+m.Month+`.xlsx"`)
	} else {
		if err := m.HTML(&buf); err != nil {
			x.c.Log.Error("center monthly report", "err", err)
			httpjson.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

// breachesMaxAge: the overview's SLA breaches are computed at most this
// often however many walls poll (decoding every open order: about 25 ms
// for 5,000, BenchmarkBreaches).
const breachesMaxAge = 5 * time.Second

// breaches is each site's open work orders past a deadline (every site:
// the caller filters by scope).
func (x *centerAPI) breaches(ctx context.Context) (map[string]int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.c.Now()
	if x.byBreach != nil && now.Sub(x.breachesAt) < breachesMaxAge && !now.Before(x.breachesAt) {
		return x.byBreach, nil
	}
	open, err := x.c.Store.Records(ctx, replication.KindWorkOrder, "", centerStates[replication.KindWorkOrder]["open"], 1_000_000)
	if err != nil {
		return nil, err
	}
	by, bad := centerkpi.Breaches(open, now)
	if bad > 0 {
		x.c.Log.Warn("sites overview: replicated work orders that could not be read were left out of the SLA breaches", "count", bad)
	}
	x.byBreach, x.breachesAt = by, now
	return by, nil
}
