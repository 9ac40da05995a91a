package dashboard

import (
	"net/http"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/dashboard/httpjson"
)

// AlertEndpoints is the delivery endpoints' budgets and states (the alert
// router).
type AlertEndpoints interface {
	Endpoints() []alerts.EndpointStatus
}

// MountAlertEndpoints adds GET /api/v1/alerts/endpoints: per delivery
// endpoint (a robot, an SMS account, an SMTP relay, by its configured name,
// never its URL) its budget, queue, whether it is throttled or failing and
// since when, and what went elsewhere meanwhile. Who was diverted and the
// endpoint's error text are for operators; the wall token gets the rest.
func (a *API) MountAlertEndpoints(src AlertEndpoints) {
	a.mux.HandleFunc("GET /api/v1/alerts/endpoints", func(w http.ResponseWriter, r *http.Request) {
		if !checkQuery(w, r) {
			return
		}
		eps := src.Endpoints()
		if !seesContacts(r) {
			for i := range eps {
				eps[i] = eps[i].ForViewer()
			}
		}
		httpjson.Write(w, http.StatusOK, eps)
	})
}
