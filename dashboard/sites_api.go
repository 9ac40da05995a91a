package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/replication"
)

// SiteOverview is the monitoring center's view of its sites (the center
// store, internal/store/postgres).
type SiteOverview interface {
	Sites(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]replication.Site, error)
}

// Sites are what MountSites needs.
type Sites struct {
	Overview     SiteOverview
	OfflineAfter time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// MountSites adds GET /api/v1/sites: every site the center hears from,
// online or not since when, its active alarms by priority and open
// incidents (no personal data: any logged-in role, the wall token too).
func (a *API) MountSites(s Sites) {
	a.mux.HandleFunc("GET /api/v1/sites", func(w http.ResponseWriter, r *http.Request) {
		sites, err := s.Overview.Sites(r.Context(), s.Now(), s.OfflineAfter)
		if err != nil {
			s.Log.Error("sites overview", "err", err)
			httpjson.Error(w, http.StatusInternalServerError, "the center's database did not answer; see the gateway log")
			return
		}
		httpjson.Write(w, http.StatusOK, sites)
	})
}
