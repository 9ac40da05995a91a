package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver

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
	Password     string `yaml:"password"`      // from ${ENV}; or
	PasswordHash string `yaml:"password_hash"` // bcrypt
	Token        string `yaml:"token"`         // bearer token for API clients
}

// AuthConfig is the dashboard: section.
type AuthConfig struct {
	WallToken      string        `yaml:"wall_token"` // read-only: the wall display
	Users          []User        `yaml:"users"`
	AllowedOrigins []string      `yaml:"allowed_origins"` // websocket origins besides the gateway's own
	SessionTTL     time.Duration `yaml:"session_ttl"`
	AuditDatabase  string        `yaml:"audit_database"`
}

// SetDefaults fills unset values.
func (c *AuthConfig) SetDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.AuditDatabase == "" {
		c.AuditDatabase = "data/audit.db"
	}
}

// Validate checks the section.
func (c *AuthConfig) Validate() error {
	if len(c.WallToken) < 12 {
		return cfgerr.Errorf("wall_token", "must be at least 12 characters; fix: ${WALL_TOKEN}")
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		p := fmt.Sprintf("users[%d]", i)
		if u.Username == "" || seen[u.Username] {
			return cfgerr.Errorf(p+".username", "%q is empty or used twice", u.Username)
		}
		seen[u.Username] = true
		if r, ok := parseRole(u.Role); !ok || r == Viewer {
			return cfgerr.Errorf(p+".role", "%q is not engineer, operator or admin", u.Role)
		}
		if (u.Password == "") == (u.PasswordHash == "") {
			return cfgerr.Errorf(p, "set exactly one of password (from ${ENV}) or password_hash (bcrypt)")
		}
		if u.Token != "" && len(u.Token) < 12 {
			return cfgerr.Errorf(p+".token", "must be at least 12 characters")
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
	Username string `json:"username"`
	Name     string `json:"name"`
	Role     Role   `json:"role"`
}

type ctxKey struct{}

// principal returns the request's authenticated principal, if any.
func principal(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(ctxKey{}).(Principal)
	return p, ok
}

// actor is who the history records: the logged-in user when there is one.
func actor(r *http.Request, by string) string {
	if p, ok := principal(r); ok && p.Role >= Engineer {
		return p.Username
	}
	return who(by)
}

type session struct {
	p       Principal
	expires time.Time
}

// Auth checks credentials and roles and audits every change.
type Auth struct {
	cfg      AuthConfig
	log      *slog.Logger
	mu       sync.Mutex
	sessions map[string]session
	audit    *sql.DB
	now      func() time.Time
}

// NewAuth opens the audit database.
func NewAuth(cfg AuthConfig, log *slog.Logger) (*Auth, error) {
	cfg.SetDefaults()
	db, err := sql.Open("sqlite", "file:"+cfg.AuditDatabase+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, username TEXT NOT NULL,
		role TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &Auth{cfg: cfg, log: log, sessions: map[string]session{}, audit: db, now: time.Now}, nil
}

// Close closes the audit database.
func (a *Auth) Close() error { return a.audit.Close() }

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (a *Auth) userPrincipal(u User) Principal {
	r, _ := parseRole(u.Role)
	name := u.Name
	if name == "" {
		name = u.Username
	}
	return Principal{Username: u.Username, Name: name, Role: r}
}

// identify finds the principal: a bearer token, the wall token (header or
// ?token=), or a session cookie.
func (a *Auth) identify(r *http.Request) (Principal, bool) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == r.Header.Get("Authorization") {
		token = r.URL.Query().Get("token")
	}
	if token != "" {
		if eq(token, a.cfg.WallToken) {
			return Principal{Username: "wall-display", Name: "Wall display", Role: Viewer}, true
		}
		for _, u := range a.cfg.Users {
			if u.Token != "" && eq(token, u.Token) {
				return a.userPrincipal(u), true
			}
		}
		return Principal{}, false
	}
	if c, err := r.Cookie("gw_session"); err == nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		if s, ok := a.sessions[c.Value]; ok && a.now().Before(s.expires) {
			return s.p, true
		}
	}
	return Principal{}, false
}

// required is the role a request needs; NoRole means public.
func required(r *http.Request) Role {
	p := r.URL.Path
	switch {
	case p == "/" || p == "/console" || strings.HasPrefix(p, "/static/") || p == "/healthz" || p == "/metrics" ||
		p == "/login" || p == "/logout" || strings.HasPrefix(p, "/demo/receiver") ||
		strings.HasPrefix(p, "/api/v1/alerts/") && strings.HasSuffix(p, "/ack"): // signed links are their own credential
		return NoRole
	case p == "/api/v1/audit":
		return Admin
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return Viewer
	case strings.HasPrefix(p, "/api/v1/workorders/") && (strings.HasSuffix(p, "/transition") || r.Method == http.MethodPatch),
		strings.HasPrefix(p, "/api/v1/incidents/") && (strings.Contains(p, "/steps/") || strings.HasSuffix(p, "/evidence")):
		return Engineer
	}
	return Operator
}

// Middleware enforces roles and audits every request that changes state.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need := required(r)
		p, ok := a.identify(r)
		if ok {
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, p))
		}
		if need > NoRole {
			switch {
			case !ok:
				writeError(w, http.StatusUnauthorized, "log in at /console, or send Authorization: Bearer <token>")
				return
			case p.Role < need:
				a.record(r, p, http.StatusForbidden)
				writeError(w, http.StatusForbidden, fmt.Sprintf("%s may not do this: it needs the %s role", p.Role, need))
				return
			}
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if ok || need > NoRole {
			a.record(r, p, rec.status)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func (a *Auth) record(r *http.Request, p Principal, status int) {
	if _, err := a.audit.Exec(`INSERT INTO audit (at, username, role, method, path, status) VALUES (?, ?, ?, ?, ?, ?)`,
		a.now().UnixMilli(), p.Username, p.Role.String(), r.Method, r.URL.Path, status); err != nil {
		a.log.Error("audit write failed", "err", err)
	}
	a.log.Info("audit", "user", p.Username, "role", p.Role, "method", r.Method, "path", r.URL.Path, "status", status)
}

// AuditEntry is one audited request.
type AuditEntry struct {
	At       time.Time `json:"at"`
	Username string    `json:"username"`
	Role     string    `json:"role"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Status   int       `json:"status"`
}

func (a *Auth) auditLog(w http.ResponseWriter, r *http.Request) {
	rows, err := a.audit.QueryContext(r.Context(), `SELECT at, username, role, method, path, status FROM audit ORDER BY id DESC LIMIT 500`)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Username, &e.Role, &e.Method, &e.Path, &e.Status); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
}

// LoginRequest is the body of POST /login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	var b LoginRequest
	if !decode(w, r, &b) {
		return
	}
	for _, u := range a.cfg.Users {
		if !eq(u.Username, b.Username) {
			continue
		}
		ok := u.PasswordHash != "" && bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(b.Password)) == nil ||
			u.Password != "" && eq(u.Password, b.Password)
		if !ok {
			break
		}
		buf := make([]byte, 32)
		rand.Read(buf)
		id := hex.EncodeToString(buf)
		p := a.userPrincipal(u)
		a.mu.Lock()
		a.sessions[id] = session{p: p, expires: a.now().Add(a.cfg.SessionTTL)}
		a.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "gw_session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
			MaxAge: int(a.cfg.SessionTTL.Seconds())})
		a.record(r, p, http.StatusOK)
		writeJSON(w, http.StatusOK, p)
		return
	}
	a.record(r, Principal{Username: b.Username}, http.StatusUnauthorized)
	writeError(w, http.StatusUnauthorized, "wrong username or password")
}

func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("gw_session"); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: "gw_session", Value: "", Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (a *Auth) me(w http.ResponseWriter, r *http.Request) {
	p, ok := principal(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not logged in")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// checkOrigin allows the gateway's own origin and the configured ones.
func (a *Auth) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) || slices.Contains(a.cfg.AllowedOrigins, origin)
}
