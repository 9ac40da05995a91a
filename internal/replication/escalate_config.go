package replication

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/propgate/gateway/internal/cfgerr"
)

// EscalateConfig is center.escalate: an alarm of these priorities left
// unacknowledged at its site for After is escalated by the center, once
// per occurrence, to the receivers of the routes covering the site
// (docs/multisite.md, alerts routed by region). It is singleton work: a
// single center does it, of a group (center.ha:) only the leader.
//
//	escalate:
//	  after: 10m
//	  priorities: [critical]
//	  routes:
//	    - {id: north, regions: [北区], webhook: "${NORTH_HOOK}"}
//	    - {id: hq, webhook: "${HQ_HOOK}"}        # no regions or sites: the default
type EscalateConfig struct {
	After       time.Duration `yaml:"after"`        // default 10m
	Priorities  []string      `yaml:"priorities"`   // default [critical]
	Every       time.Duration `yaml:"every"`        // how often the center looks; default 10s
	SendTimeout time.Duration `yaml:"send_timeout"` // default 10s
	// Routes: an escalation goes to every route naming its site or the
	// site's region (center.sites[].region); when none does, to the
	// default route (the one without regions and sites), if there is one.
	Routes []EscalationRoute `yaml:"routes"`
	// Webhook is the shorthand of one default route (the older form):
	// routes: [{id: default, webhook: …}].
	Webhook string `yaml:"webhook"`
}

// EscalationRoute is one receiver of escalations and what it covers.
type EscalationRoute struct {
	// ID names the route in each notification's key and in the logs;
	// default "default" for the default route, route-<n> (its place in
	// the list, from 1) for the others. Give ids so that editing the
	// list keeps notifications waiting to be sent on their route.
	ID      string   `yaml:"id" json:"id"`
	Regions []string `yaml:"regions" json:"regions,omitempty"` // 北区
	Sites   []string `yaml:"sites" json:"sites,omitempty"`     // site ids
	// Webhook receives each escalation: POST, JSON (a Notification),
	// headers Idempotency-Key and X-Attempt. It may carry a token (from
	// ${ENV}): it is never logged or shown.
	Webhook string `yaml:"webhook" json:"-"`
}

// Default says whether the route is the default one (covers no region
// or site of its own).
func (r EscalationRoute) Default() bool { return len(r.Regions) == 0 && len(r.Sites) == 0 }

// DefaultRoute is the id of the default route when it has none, and of
// the route the older single webhook becomes.
const DefaultRoute = "default"

// SetDefaults fills unset values.
func (e *EscalateConfig) SetDefaults() {
	if e.After == 0 {
		e.After = 10 * time.Minute
	}
	if len(e.Priorities) == 0 {
		e.Priorities = []string{"critical"}
	}
	if e.Every == 0 {
		e.Every = 10 * time.Second
	}
	if e.SendTimeout == 0 {
		e.SendTimeout = 10 * time.Second
	}
	for i := range e.Routes {
		r := &e.Routes[i]
		if r.ID == "" {
			if r.Default() {
				r.ID = DefaultRoute
			} else {
				r.ID = fmt.Sprintf("route-%d", i+1)
			}
		}
	}
}

// Receivers are the effective routes: Routes, or the single webhook as
// the default route.
func (e *EscalateConfig) Receivers() []EscalationRoute {
	if len(e.Routes) == 0 && e.Webhook != "" {
		return []EscalationRoute{{ID: DefaultRoute, Webhook: e.Webhook}}
	}
	return e.Routes
}

// Match returns the routes an escalation at site (in region, "" when
// center.sites does not say) goes to: every route naming the site or the
// region, else the default route; none when no route covers it.
func (e *EscalateConfig) Match(site, region string) []EscalationRoute {
	var out []EscalationRoute
	var def *EscalationRoute
	rs := e.Receivers()
	for i, r := range rs {
		switch {
		case r.Default():
			if def == nil {
				def = &rs[i]
			}
		case slices.Contains(r.Sites, site) || (region != "" && slices.Contains(r.Regions, region)):
			out = append(out, r)
		}
	}
	if len(out) == 0 && def != nil {
		out = append(out, *def)
	}
	return out
}

var routeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks the section; sites is center.sites (where the regions
// come from). Errors never carry a webhook's URL (it may hold a token).
func (e *EscalateConfig) Validate(sites []SiteInfo) error {
	if e.After < 0 || e.Every < 0 || e.SendTimeout < 0 {
		return cfgerr.Errorf("", "after, every and send_timeout must not be negative")
	}
	if e.Every > 0 && e.Every < 100*time.Millisecond {
		return cfgerr.Errorf("every", "%v is too often; fix: at least 100ms (default 10s)", e.Every)
	}
	for i, p := range e.Priorities {
		switch p {
		case "critical", "high", "medium", "low":
		default:
			return cfgerr.Errorf("priorities", "[%d] %q is not a priority; fix: critical, high, medium or low", i, p)
		}
	}
	switch {
	case e.Webhook != "" && len(e.Routes) > 0:
		return cfgerr.Errorf("webhook", "is set besides routes:; fix: one or the other: move it into routes as {id: default, webhook: …}")
	case e.Webhook != "":
		return checkWebhook("webhook", e.Webhook)
	case len(e.Routes) == 0:
		return cfgerr.Errorf("routes", "is required; fix: the receivers of the escalations, e.g. routes: [{regions: [北区], webhook: …}, {webhook: …}] (the one without regions is the default)")
	}
	regions := map[string]bool{}
	var known []string
	for _, s := range sites {
		if s.Region != "" && !regions[s.Region] {
			regions[s.Region] = true
			known = append(known, s.Region)
		}
	}
	ids := map[string]int{}
	defaults := 0
	for i, r := range e.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if !routeIDRE.MatchString(r.ID) {
			return cfgerr.Errorf(at+".id", "%q is not an id; fix: letters, digits, '.', '_' or '-', e.g. north", r.ID)
		}
		if j, ok := ids[r.ID]; ok {
			return cfgerr.Errorf(at+".id", "%q is also routes[%d]'s id; fix: give each route its own id", r.ID, j)
		}
		ids[r.ID] = i
		if r.Default() {
			if defaults++; defaults > 1 {
				return cfgerr.Errorf(at, "is a second route without regions or sites (a second default); fix: give it regions: or sites:, or remove it")
			}
		}
		for j, g := range r.Regions {
			if !regions[g] {
				fix := "name the region under center.sites (sites: [{id: …, region: " + g + "}])"
				if len(known) > 0 {
					fix = "one of " + strings.Join(known, ", ") + " (the regions under center.sites)"
				}
				return cfgerr.Errorf(fmt.Sprintf("%s.regions[%d]", at, j), "%q is no site's region, so this route would never be used; fix: %s", g, fix)
			}
		}
		for j, s := range r.Sites {
			if !siteRE.MatchString(s) {
				return cfgerr.Errorf(fmt.Sprintf("%s.sites[%d]", at, j), "%q is not a site id; fix: the site's site: setting", s)
			}
		}
		if err := checkWebhook(at+".webhook", r.Webhook); err != nil {
			return err
		}
	}
	return nil
}

func checkWebhook(at, raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return cfgerr.Errorf(at, "is required; fix: the URL that receives the escalations (a token in it from ${ENV})")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return cfgerr.Errorf(at, "is not an http(s) URL; fix: e.g. https://ops.example.com/hooks/center")
	}
	return nil
}
