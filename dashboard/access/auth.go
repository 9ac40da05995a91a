// Package access owns who may do what on the dashboard: users, roles, logins
// and sessions, the route-role guard in front of every handler, and the audit log.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/propgate/gateway/dashboard/audit"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Role is what a user may do; each includes the ones below it.
type Role int

// Roles.
const (
	NoRole   Role = iota
	Viewer        // the wall display's read-only token
	Engineer      // reads; works through work orders and playbook steps
	Operator      // the duty room: alarms, incidents, work orders, drills
	Admin         // everything
)

func (r Role) String() string {
	return [...]string{"none", "viewer", "engineer", "operator", "admin"}[r]
}

var (
	_ encoding.TextMarshaler = Role(0)
	_ http.ResponseWriter    = (*statusRecorder)(nil)
)

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func parseRole(s string) (Role, bool) {
	for r := Viewer; r <= Admin; r++ {
		if r.String() == s {
			return r, true
		}
	}
	return NoRole, false
}

// User is someone who logs in to the console or calls the API.
type User struct {
	Username     string `yaml:"username"`
	Name         string `yaml:"name"`
	Role         string `yaml:"role"`          // engineer, operator or admin
	Password     string `yaml:"password"`      // from ${ENV}; hashed with bcrypt at start, then forgotten; or
	PasswordHash string `yaml:"password_hash"` // bcrypt
	Token        string `yaml:"token"`         // bearer token for API clients (header only, never ?token=)
	// Sites, at a monitoring center, are the sites this user sees and acts
	// on: site ids, or prefixes ending in * ("north-*"); none: every site.
	Sites []string `yaml:"sites"`
}

// Config is the dashboard: section.
type Config struct {
	WallToken      string        `yaml:"wall_token"` // read-only: the wall display (the only token accepted as ?token=)
	Users          []User        `yaml:"users"`
	AllowedOrigins []string      `yaml:"allowed_origins"` // browser origins besides the gateway's own (websocket, console)
	SessionTTL     time.Duration `yaml:"session_ttl"`
	AuditDatabase  string        `yaml:"audit_database"`
	AuditMaxRows   int           `yaml:"audit_max_rows"` // the audit log keeps its newest rows; default 100000
	// SecureCookie marks the session cookie Secure even though this process
	// speaks plain HTTP: set it behind a TLS-terminating proxy. With
	// http.tls_cert the cookie is Secure anyway.
	SecureCookie bool `yaml:"secure_cookie"`
}

// Limits on what outside input may make the access control keep.
const (
	maxUsername     = 64    // bytes of a username that are logged or audited
	maxAuditPath    = 256   // bytes of a path that are audited
	sessionsPerUser = 10    // the oldest session of a user goes beyond this
	limiterEntries  = 10000 // per-IP and per-user failed-login buckets kept (least recently failed go first)
	auditPage       = 500   // rows GET /api/v1/audit returns
)

// Failed-login limits: a burst, then one more try per interval.
const (
	ipBurst, ipEvery     = 10, 6 * time.Second // per client IP: 10 a minute after the burst
	userBurst, userEvery = 5, 12 * time.Second // per username: 5 a minute after the burst
	refusalBurst         = 100                 // 401/429 audit rows: a burst, then refusalRate a second;
	refusalRate          = rate.Limit(5)       // refusals beyond are counted, not written
)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.AuditDatabase == "" {
		c.AuditDatabase = "data/audit.db"
	}
	if c.AuditMaxRows == 0 {
		c.AuditMaxRows = 100000
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	if len(c.WallToken) < 12 {
		return cfgerr.Errorf("wall_token", "must be at least 12 characters; fix: ${WALL_TOKEN} (e.g. openssl rand -hex 24)")
	}
	if c.AuditMaxRows < 100 {
		return cfgerr.Errorf("audit_max_rows", "%d is too small to be useful; fix: at least 100 (default 100000)", c.AuditMaxRows)
	}
	if c.SessionTTL < time.Minute {
		return cfgerr.Errorf("session_ttl", "%s is shorter than a minute; fix: e.g. 12h", c.SessionTTL)
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		p := fmt.Sprintf("users[%d]", i)
		if !usernameRE.MatchString(u.Username) || seen[u.Username] {
			return cfgerr.Errorf(p+".username", "%q is empty, used twice, or not 1-64 letters, digits, '.', '_', '@' or '-'", u.Username)
		}
		seen[u.Username] = true
		if r, ok := parseRole(u.Role); !ok || r == Viewer {
			return cfgerr.Errorf(p+".role", "%q is not engineer, operator or admin", u.Role)
		}
		if (u.Password == "") == (u.PasswordHash == "") {
			return cfgerr.Errorf(p, "set exactly one of password (from ${ENV}) or password_hash (bcrypt)")
		}
		if u.PasswordHash != "" {
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				return cfgerr.Errorf(p+".password_hash", "is not a bcrypt hash; fix: htpasswd -bnBC 10 \"\" PASSWORD | tr -d ':'")
			}
		}
		for j, site := range u.Sites {
			if !siteScopeRE.MatchString(site) {
				return cfgerr.Errorf(fmt.Sprintf("%s.sites[%d]", p, j), "%q is not a site id or a prefix ending in *; fix: e.g. yushan-garden or north-*", site)
			}
		}
		if u.Token != "" && len(u.Token) < 12 {
			return cfgerr.Errorf(p+".token", "must be at least 12 characters")
		}
		if u.Token != "" && u.Token == c.WallToken {
			return cfgerr.Errorf(p+".token", "is the wall token; fix: give each its own value")
		}
	}
	for i, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Host == "" {
			return cfgerr.Errorf(fmt.Sprintf("allowed_origins[%d]", i), "%q is not an origin like https://wall.example", o)
		}
	}
	return nil
}

// Principal is who a request is from.
type Principal struct {
	Username string   `json:"username"`
	Name     string   `json:"name"`
	Role     Role     `json:"role"`
	Sites    []string `json:"sites,omitempty"` // at a center: the sites in scope (ids or prefix*); none: all
}

// SeesSite reports whether site is in the principal's scope.
func (p Principal) SeesSite(site string) bool {
	if len(p.Sites) == 0 {
		return true
	}
	for _, s := range p.Sites {
		if prefix, ok := strings.CutSuffix(s, "*"); ok && strings.HasPrefix(site, prefix) || s == site {
			return true
		}
	}
	return false
}

var siteScopeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\*?$|^\*$`)

type ctxKey struct{}

// PrincipalOf returns the request's authenticated principal, if any.
func PrincipalOf(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(ctxKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p as the authenticated principal. The
// guard sets it from a credential; in-process callers (tests) may set it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// Actor is who the history records: the authenticated principal, always,
// never a request body's "by": a client must not be able to act in someone
// else's name.
func Actor(r *http.Request) string {
	if p, ok := PrincipalOf(r); ok {
		return p.Username
	}
	return "anonymous"
}

// reqInfo lets a handler tell the audit middleware who acted when the
// credential was not a login (a signed acknowledgement link).
type reqInfo struct{ actor string }

type infoKey struct{}

// AuditAs records name as who acted on r (e.g. the person a signed link
// names) and makes the guard audit the request whatever its method.
func AuditAs(r *http.Request, name string) {
	if ri, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		ri.actor = cleanUsername(name)
	}
}

// Metrics count what the access control refused or dropped.
type Metrics struct {
	LoginFailures      atomic.Uint64 // wrong username or password
	LoginsLimited      atomic.Uint64 // refused with 429: too many failures from the IP or for the user
	LimiterEvictions   atomic.Uint64 // failed-login buckets evicted to keep the map bounded
	RefusalsNotAudited atomic.Uint64 // 401/429 refusals beyond the audit rate (counted, not written)
	AuditErrors        atomic.Uint64 // audit rows that could not be written
	SessionsPruned     atomic.Uint64 // expired sessions deleted
}

// Collectors exports the counters for a Prometheus registry.
func (m *Metrics) Collectors() []prometheus.Collector {
	c := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		c("gateway_auth_login_failures_total", "Failed logins (wrong username or password).", &m.LoginFailures),
		c("gateway_auth_logins_limited_total", "Logins refused with 429 after too many failures.", &m.LoginsLimited),
		c("gateway_auth_limiter_evictions_total", "Failed-login buckets evicted to keep the map bounded.", &m.LimiterEvictions),
		c("gateway_auth_refusals_not_audited_total", "401/429 refusals beyond the audit rate limit, counted instead of written.", &m.RefusalsNotAudited),
		c("gateway_auth_audit_errors_total", "Audit rows that could not be written.", &m.AuditErrors),
		c("gateway_auth_sessions_pruned_total", "Expired console sessions deleted.", &m.SessionsPruned),
	}
}

type account struct {
	p    Principal
	hash []byte // bcrypt
}

type tokenEntry struct {
	digest [32]byte
	p      Principal
}

// Auth checks credentials and roles and audits every change.
type Auth struct {
	cfg      Config
	store    audit.Store
	log      *slog.Logger
	now      func() time.Time
	wall     [32]byte
	accounts map[string]account
	tokens   []tokenEntry
	dummy    []byte // a bcrypt hash compared when the user does not exist
	byIP     *limiter
	byUser   *limiter
	refusals *rate.Limiter
	Metrics  Metrics
}

// NewAuth builds the access control over store (sessions and the audit
// log: internal/store/sqlite.OpenAudit). Plaintext passwords are hashed
// here with bcrypt and not kept.
func NewAuth(cfg Config, store audit.Store, log *slog.Logger) (*Auth, error) {
	cfg.SetDefaults()
	a := &Auth{store: store, log: log, now: time.Now, wall: sha256.Sum256([]byte(cfg.WallToken)), accounts: map[string]account{}}
	cost := bcrypt.DefaultCost
	for _, u := range cfg.Users {
		r, _ := parseRole(u.Role)
		name := u.Name
		if name == "" {
			name = u.Username
		}
		p := Principal{Username: u.Username, Name: name, Role: r, Sites: u.Sites}
		hash := []byte(u.PasswordHash)
		if u.Password != "" {
			var err error
			if hash, err = bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.DefaultCost); err != nil {
				return nil, fmt.Errorf("dashboard: users %s: %w", u.Username, err)
			}
		}
		if c, err := bcrypt.Cost(hash); err == nil && c > cost {
			cost = c
		}
		a.accounts[u.Username] = account{p: p, hash: hash}
		if u.Token != "" {
			a.tokens = append(a.tokens, tokenEntry{digest: sha256.Sum256([]byte(u.Token)), p: p})
		}
	}
	dummy := make([]byte, 18)
	rand.Read(dummy)
	var err error
	if a.dummy, err = bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(dummy)), cost); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	cfg.Users, cfg.WallToken = nil, "" // only hashes and digests are kept
	a.cfg = cfg
	a.byIP = newLimiter(limiterEntries, rate.Every(ipEvery), ipBurst, &a.Metrics.LimiterEvictions)
	a.byUser = newLimiter(limiterEntries, rate.Every(userEvery), userBurst, &a.Metrics.LimiterEvictions)
	a.refusals = rate.NewLimiter(refusalRate, refusalBurst)
	return a, nil
}

// Run deletes expired sessions every minute until ctx ends.
func (a *Auth) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		a.pruneSessions(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Auth) pruneSessions(ctx context.Context) {
	n, err := a.store.PruneSessions(ctx, a.now())
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("pruning expired sessions", "err", err)
		}
		return
	}
	a.Metrics.SessionsPruned.Add(uint64(n))
}

// digestEq compares fixed-length digests in constant time.
func digestEq(a, b [32]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// via is how a request proved who it is from.
type via int

const (
	viaNone via = iota
	viaHeader
	viaQuery // the wall token in ?token=
	viaCookie
)

// identify finds the principal: a bearer token in the Authorization header,
// the wall token as ?token= (on the websocket only, which browsers cannot
// open with a header; every other token is refused there, so it never lands
// in logs, history or Referer), or a session cookie.
func (a *Auth) identify(r *http.Request, pattern string) (Principal, via) {
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Principal{}, viaNone
		}
		return a.byToken(token, true)
	}
	if token := r.URL.Query().Get("token"); token != "" {
		if pattern != "GET /ws" {
			return Principal{}, viaNone
		}
		p, v := a.byToken(token, false)
		if v == viaNone {
			return p, v
		}
		return p, viaQuery
	}
	if c, err := r.Cookie("gw_session"); err == nil && len(c.Value) == 64 {
		key := sessionKey(c.Value)
		s, err := a.store.Session(r.Context(), key)
		switch {
		case errors.Is(err, audit.ErrNoSession):
			return Principal{}, viaNone
		case err != nil:
			a.log.Warn("session lookup", "err", err)
			return Principal{}, viaNone
		case !a.now().Before(s.Expires):
			_ = a.store.DeleteSession(r.Context(), key)
			return Principal{}, viaNone
		}
		if acct, ok := a.accounts[s.Username]; ok { // a user removed from the config is logged out
			return acct.p, viaCookie
		}
	}
	return Principal{}, viaNone
}

func (a *Auth) byToken(token string, userTokens bool) (Principal, via) {
	d := sha256.Sum256([]byte(token))
	if digestEq(d, a.wall) {
		return Principal{Username: "wall-display", Name: "Wall display", Role: Viewer}, viaHeader
	}
	found := -1
	for i, t := range a.tokens { // no early exit: the time does not say which token matched
		if digestEq(d, t.digest) {
			found = i
		}
	}
	if found < 0 || !userTokens {
		return Principal{}, viaNone
	}
	return a.tokens[found].p, viaHeader
}

func sessionKey(cookie string) string {
	d := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(d[:])
}

// routeRole is the role of the routes that need something other than the
// default, by the pattern the router matched: the role check and the router
// always agree on the route, whatever the path's encoding (an escaped "/"
// cannot make an operator route look like an engineer one).
func routeRole(pattern string) (Role, bool) {
	switch pattern {
	case "GET /{$}", // the wall display page (its data needs the token)
		"GET /console", "GET /console/{page}", // the console pages (their data needs a login)
		"GET /static/", "GET /static/i18n.js", "GET /healthz", "GET /metrics", "POST /login", "POST /logout",
		"GET /api/v1/alerts/{id}/ack",     // signed acknowledgement links are their own credential:
		"POST /api/v1/alerts/{id}/ack",    // GET shows the confirmation page, POST acknowledges
		"GET /m/a/{id}", "POST /m/a/{id}", // the engineer's phone: the signed link is the credential
		"GET /m/i/{id}", "POST /m/i/{id}",
		"POST /demo/receiver": // the demo channel posts here
		return NoRole, true
	case "GET /api/v1/photos/{name}": // photos from phones may show residents
		return Engineer, true
	case "GET /api/v1/audit":
		return Admin, true
	// The asset register, contacts, inspections (issue #13): phone numbers and
	// what inspectors wrote are not for the wall token; admins edit the register.
	case "GET /api/v1/register", "GET /api/v1/assets/{id}/register", "GET /api/v1/contacts", "GET /api/v1/contacts/{id}", "GET /api/v1/incidents/{id}/contacts",
		"GET /api/v1/inspections/checkpoint", "GET /api/v1/inspections/{id}/photos/{checkpoint}/{item}":
		return Engineer, true
	case "GET /api/v1/inspections/codes":
		return Operator, true
	case "PUT /api/v1/assets/{id}/register", "POST /api/v1/register/import",
		"POST /api/v1/contacts", "PUT /api/v1/contacts/{id}", "DELETE /api/v1/contacts/{id}":
		return Admin, true
	case "GET /demo/receiver":
		return Operator, true
	// The duty room's records (交接班, 值班记录, 值班表): what people wrote
	// and the roster's names are for engineers and above; the wall reads
	// only GET /api/v1/duty/now (names on duty, no phones). Writing them
	// needs an operator (the default); the roster, an admin.
	case "GET /api/v1/handovers", "GET /api/v1/handovers/draft", "GET /api/v1/handovers/overdue", "GET /api/v1/handovers/{id}", "GET /api/v1/handovers/{id}/print",
		"GET /api/v1/duty-log", "GET /api/v1/duty-log/print", "GET /api/v1/roster", "GET /api/v1/roster/versions",
		"GET /api/v1/roster/schedule", "GET /api/v1/roster/print":
		return Engineer, true
	case "PUT /api/v1/roster":
		return Admin, true
	case "GET /api/v1/reports/monthly": // the monthly report lists residents' complaints and who handled them
		return Engineer, true
	case "PATCH /api/v1/workorders/{id}", "POST /api/v1/workorders/{id}/transition",
		"POST /api/v1/incidents/{id}/steps/{step}/complete", "POST /api/v1/incidents/{id}/steps/{step}/skip",
		"POST /api/v1/incidents/{id}/evidence":
		return Engineer, true
	case "GET /api/v1/planned-works/{id}", "GET /api/v1/planned-works/{id}/notice": // the site contact, who entered it
		return Engineer, true
	// The monitoring center (docs/multisite.md): engineers move work orders
	// and complete steps at their sites as they would at the site; the
	// commands name who sent them. Acknowledging needs an operator (default).
	case "POST /api/v1/sites/{site}/workorders/{id}/transition", "POST /api/v1/sites/{site}/incidents/{id}/steps/{step}/complete",
		"GET /api/v1/sites/{site}/commands", "GET /api/v1/commands/{id}":
		return Engineer, true
	}
	return NoRole, false
}

// roleFor is the role a request needs, from the route pattern the router
// matched ("" when none did: the router answers 404 or 405, to those allowed
// to ask). Routes not named in routeRole need Viewer for GET and HEAD,
// Operator for everything else.
func roleFor(method, pattern string) Role {
	if r, ok := routeRole(pattern); ok {
		return r
	}
	if method == http.MethodGet || method == http.MethodHead {
		return Viewer
	}
	return Operator
}

func changesState(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// Guard enforces roles in front of mux and audits every request that changes
// state and every refusal. With a nil Auth (no dashboard: section) it fails
// closed: only what a viewer may do is served, and nothing changes state
// except through a signed link.
func Guard(a *Auth, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		need := roleFor(r.Method, pattern)
		ri := &reqInfo{}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		if a == nil {
			if need > Viewer {
				httpjson.Error(w, http.StatusForbidden, "本网关未配置 dashboard: 部分（用户与登录），只能读取 / this gateway has no dashboard: section (users and logins), so the API is read-only; fix: configure dashboard: (docs/security.md)")
				return
			}
			mux.ServeHTTP(w, r)
			return
		}
		p, v := a.identify(r, pattern)
		if v != viaNone {
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		if need > NoRole {
			switch {
			case v == viaNone:
				a.refuse(r, Principal{}, http.StatusUnauthorized)
				httpjson.Error(w, http.StatusUnauthorized, "请先登录 /console，或发送 Authorization: Bearer <token> / log in at /console, or send Authorization: Bearer <token>")
				return
			case p.Role < need:
				a.record(r, p.Username, p.Role.String(), http.StatusForbidden)
				httpjson.Error(w, http.StatusForbidden, fmt.Sprintf("权限不足 / %s may not do this: it needs the %s role", p.Role, need))
				return
			case v == viaCookie && changesState(r.Method):
				if !a.sameOrigin(r) {
					a.record(r, p.Username, p.Role.String(), http.StatusForbidden)
					httpjson.Error(w, http.StatusForbidden, "请求来源不是本网关 / the request's Origin is missing or not this gateway's: cross-site requests cannot use the console's login")
					return
				}
				if !isJSON(r) {
					a.record(r, p.Username, p.Role.String(), http.StatusUnsupportedMediaType)
					httpjson.Error(w, http.StatusUnsupportedMediaType, "请求须为 JSON / send Content-Type: application/json")
					return
				}
			}
		}
		if !changesState(r.Method) {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		switch {
		case pattern == "POST /login": // the handler audits logins itself
		case ri.actor != "":
			a.record(r, ri.actor, "link", rec.status)
		case v != viaNone || need > NoRole:
			a.record(r, p.Username, p.Role.String(), rec.status)
		}
	})
}

// isJSON: the body is declared JSON. A form or text/plain body (what a
// cross-site page can send without a preflight) is refused.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// sameOrigin: a cookie-authenticated change must come from the gateway's own
// page (or a configured origin). Browsers send Origin on every POST, PATCH
// and DELETE; its absence means a client that should use a token.
func (a *Auth) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	return a.CheckOrigin(r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// cleanUsername makes an outside-supplied name safe to log and audit: at
// most maxUsername bytes, control and invisible characters replaced.
func cleanUsername(s string) string {
	truncated := false
	if len(s) > maxUsername {
		s, truncated = s[:maxUsername], true
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if truncated {
		s += "…"
	}
	return s
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (a *Auth) record(r *http.Request, username, role string, status int) {
	path := r.URL.EscapedPath()
	if len(path) > maxAuditPath {
		path = path[:maxAuditPath] + "…"
	}
	username = cleanUsername(username)
	if username == "" {
		username = "anonymous"
	}
	e := audit.Entry{At: a.now(), Username: username, Role: role, Method: r.Method, Path: path, Remote: clientIP(r), Status: status}
	// The request's context may end with the response; the row must still be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := a.store.Record(ctx, e); err != nil {
		a.Metrics.AuditErrors.Add(1)
		a.log.Error("audit write failed", "err", err)
	}
	a.log.Info("audit", "user", e.Username, "role", e.Role, "method", e.Method, "path", e.Path, "remote", e.Remote, "status", status)
}

// refuse audits a 401 or 429, at most refusalRate a second after a burst:
// anonymous requests cannot flood the audit table or the log.
func (a *Auth) refuse(r *http.Request, p Principal, status int) {
	if !a.refusals.AllowN(a.now(), 1) {
		a.Metrics.RefusalsNotAudited.Add(1)
		return
	}
	a.record(r, p.Username, p.Role.String(), status)
}

// AuditEntry is one audited request.
type AuditEntry = audit.Entry

// Mount adds login, logout, the current user and the audit log to mux.
func (a *Auth) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /api/v1/me", a.me)
	mux.HandleFunc("GET /api/v1/audit", a.auditLog)
}

func (a *Auth) auditLog(w http.ResponseWriter, r *http.Request) {
	out, err := a.store.Recent(r.Context(), auditPage)
	if err != nil {
		a.log.Error("reading the audit log", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "审计日志无法读取 / the audit log could not be read")
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}

// LoginRequest is the body of POST /login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	var b LoginRequest
	if !httpjson.Decode(w, r, &b) {
		return
	}
	now, ip := a.now(), clientIP(r)
	name := cleanUsername(b.Username)
	if wait := max(a.byIP.wait(ip, now), a.byUser.wait(name, now)); wait > 0 {
		a.Metrics.LoginsLimited.Add(1)
		a.refuse(r, Principal{Username: name}, http.StatusTooManyRequests)
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		httpjson.Error(w, http.StatusTooManyRequests, fmt.Sprintf("登录失败次数过多，请 %d 秒后再试 / too many failed logins; try again in %d s", secs, secs))
		return
	}
	acct, known := a.accounts[b.Username]
	hash := a.dummy // unknown users cost the same bcrypt comparison as known ones
	if known {
		hash = acct.hash
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(b.Password)) == nil && known
	if !ok {
		a.Metrics.LoginFailures.Add(1)
		a.byIP.fail(ip, now)
		a.byUser.fail(name, now)
		a.refuse(r, Principal{Username: name}, http.StatusUnauthorized)
		httpjson.Error(w, http.StatusUnauthorized, "用户名或密码错误 / wrong username or password")
		return
	}
	buf := make([]byte, 32)
	rand.Read(buf)
	id := hex.EncodeToString(buf)
	if err := a.store.SaveSession(r.Context(), audit.Session{Key: sessionKey(id), Username: acct.p.Username, Expires: now.Add(a.cfg.SessionTTL)}, sessionsPerUser); err != nil {
		a.log.Error("saving a session", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "无法保存登录 / the login could not be saved")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "gw_session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || a.cfg.SecureCookie, MaxAge: int(a.cfg.SessionTTL.Seconds())})
	a.record(r, acct.p.Username, acct.p.Role.String(), http.StatusOK)
	httpjson.Write(w, http.StatusOK, acct.p)
}

func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("gw_session"); err == nil {
		if err := a.store.DeleteSession(r.Context(), sessionKey(c.Value)); err != nil {
			a.log.Warn("deleting a session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: "gw_session", Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || a.cfg.SecureCookie})
	w.WriteHeader(http.StatusNoContent)
}

func (a *Auth) me(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalOf(r)
	if !ok {
		httpjson.Error(w, http.StatusUnauthorized, "未登录 / not logged in")
		return
	}
	httpjson.Write(w, http.StatusOK, p)
}

// CheckOrigin allows the gateway's own origin and the configured ones; a nil
// Auth (no dashboard: section) allows the gateway's own origin only.
func (a *Auth) CheckOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) || (a != nil && slices.Contains(a.cfg.AllowedOrigins, origin))
}
