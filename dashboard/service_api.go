package dashboard

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/rules/alarmkpi"
	"github.com/propgate/gateway/rules/monthly"
	"github.com/propgate/gateway/rules/workorder"
)

// AlarmHealth is the alarm system's health over a period (alarmkpi.Health).
type AlarmHealth interface {
	Report(ctx context.Context, from, to time.Time) (*alarmkpi.Report, error)
}

// MonthlyReports builds a month's report (monthly.Builder).
type MonthlyReports interface {
	Build(ctx context.Context, month string) (*monthly.Report, error)
}

// Service is what the service-standard endpoints need.
type Service struct {
	Health     AlarmHealth
	Monthly    MonthlyReports
	Location   *time.Location // the site's time zone: days and months begin at its midnight
	Categories []workorder.Category
}

// MountService adds GET /api/v1/alarm-kpis and GET /api/v1/reports/monthly.
func (a *API) MountService(d Service) {
	if d.Location == nil {
		d.Location = time.Local
	}
	s := &serviceAPI{d: d}
	a.mux.HandleFunc("GET /api/v1/alarm-kpis", s.alarmKPIs)
	a.mux.HandleFunc("GET /api/v1/reports/monthly", s.monthly) // engineer: it lists residents' complaints
	a.mux.HandleFunc("GET /api/v1/workorder-categories", s.categories)
}

// CategoryView is one repair category as the API shows it.
type CategoryView struct {
	ID         string  `json:"id"`
	NameZH     string  `json:"name_zh"`
	Name       string  `json:"name"`
	Resolution float64 `json:"resolution_seconds"` // from acceptance
	Arrival    float64 `json:"arrival_seconds,omitempty"`
}

// categories lists the configured repair categories with their time limits.
func (x *serviceAPI) categories(w http.ResponseWriter, _ *http.Request) {
	out := make([]CategoryView, 0, len(x.d.Categories))
	for _, c := range x.d.Categories {
		out = append(out, CategoryView{ID: c.ID, NameZH: c.NameZH, Name: c.Name, Resolution: c.Resolution.Seconds(), Arrival: c.Arrival.Seconds()})
	}
	httpjson.Write(w, http.StatusOK, out)
}

type serviceAPI struct{ d Service }

// maxRange bounds a figures request (a year and a day).
const maxRange = 367 * 24 * time.Hour

func (x *serviceAPI) alarmKPIs(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "from", "to") {
		return
	}
	now := time.Now().In(x.d.Location)
	from, to := now.Add(-24*time.Hour), now // default: the last 24 hours
	var err error
	if s := r.URL.Query().Get("from"); s != "" {
		if from, err = parseDayIn(s, x.d.Location); err != nil {
			httpjson.Error(w, http.StatusBadRequest, "from "+s+" is not a date (2026-11-01) or RFC 3339 time")
			return
		}
	}
	if s := r.URL.Query().Get("to"); s != "" {
		if to, err = parseDayIn(s, x.d.Location); err != nil {
			httpjson.Error(w, http.StatusBadRequest, "to "+s+" is not a date (2026-11-30) or RFC 3339 time")
			return
		}
	}
	if !to.After(from) {
		httpjson.Error(w, http.StatusBadRequest, "to must be after from")
		return
	}
	if to.Sub(from) > maxRange {
		httpjson.Error(w, http.StatusBadRequest, "the period is longer than a year; ask for a year or less")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	rep, err := x.d.Health.Report(ctx, from, to)
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, rep)
}

func parseDayIn(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02", s, loc)
}

func (x *serviceAPI) monthly(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "month", "format") {
		return
	}
	q := r.URL.Query()
	month := q.Get("month")
	if month == "" {
		month = time.Now().In(x.d.Location).Format("2006-01")
	}
	if _, _, err := monthly.ParseMonth(month, x.d.Location); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	format := q.Get("format")
	if format != "" && format != "html" && format != "xlsx" {
		httpjson.Error(w, http.StatusBadRequest, "format "+format+" is not html or xlsx")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	rep, err := x.d.Monthly.Build(ctx, month)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			httpjson.Error(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	var buf bytes.Buffer
	if format == "xlsx" {
		if err := rep.XLSX(&buf); err != nil {
			httpjson.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", `attachment; filename="monthly-report-`+month+`.xlsx"`)
	} else {
		if err := rep.HTML(&buf); err != nil {
			httpjson.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}
