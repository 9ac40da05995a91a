package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/propgate/gateway/rules"
)

// Link errors, matched with errors.Is (ErrLinkUsed is in store.go).
var (
	ErrBadSignature = errors.New("this acknowledgement link is not valid (it was changed or is not ours)")
	ErrLinkExpired  = errors.New("this acknowledgement link has expired; acknowledge in the console")
)

// Link is what an acknowledgement link carries: the alert, the person it
// was made for, its expiry (Unix seconds) and the HMAC-SHA256 signature
// over "id\nperson\nexp" with alerts.link_secret.
type Link struct {
	AlertID string
	Person  string
	Exp     string
	Sig     string
}

// LinkView is what the confirmation page shows before anything happens.
type LinkView struct {
	Alert      *Alert
	Person     string // the id the link was made for
	PersonName string
	Expires    time.Time
	UsedAt     time.Time // zero: not used yet
}

// linkTTL is how long a link made now for an alert under policy works: the
// policy's escalation horizon (every level's wait, times the rounds), by
// when someone else has been told anyway; alerts.link_ttl, when set, caps it.
func (r *Router) linkTTL(policy string) time.Duration {
	r.conf.RLock()
	defer r.conf.RUnlock()
	var ttl time.Duration
	if p := r.policies[policy]; p != nil {
		for _, l := range p.Levels {
			ttl += l.Wait
		}
		ttl *= time.Duration(p.Repeat + 1)
	}
	if ttl == 0 || r.cfg.LinkTTL > 0 && r.cfg.LinkTTL < ttl {
		ttl = r.cfg.LinkTTL
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	return ttl
}

// AckLink makes the signed, expiring, single-use link a message carries.
func (r *Router) AckLink(al *Alert, person string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(r.linkTTL(al.Policy)).Unix(), 10)
	q := url.Values{"by": {person}, "exp": {exp}, "sig": {r.sign(al.ID, person, exp)}}
	return r.baseURL() + "/m/a/" + url.PathEscape(al.ID) + "?" + q.Encode() // the phone page (mobile_links.go)
}

func (r *Router) sign(alertID, person, exp string) string {
	r.conf.RLock()
	secret := r.cfg.LinkSecret
	r.conf.RUnlock()
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(alertID + "\n" + person + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// verify checks the signature, then the expiry.
func (r *Router) verify(l Link) (time.Time, error) {
	if !hmac.Equal([]byte(r.sign(l.AlertID, l.Person, l.Exp)), []byte(l.Sig)) {
		return time.Time{}, ErrBadSignature
	}
	e, err := strconv.ParseInt(l.Exp, 10, 64)
	if err != nil || !r.now().Before(time.Unix(e, 0)) {
		return time.Time{}, ErrLinkExpired
	}
	return time.Unix(e, 0), nil
}

// find returns a copy of the alert: the open one in memory, else the stored one.
func (r *Router) find(ctx context.Context, id string) (*Alert, bool, error) {
	r.mu.Lock()
	al, open := r.alerts[id]
	var c Alert
	if open {
		c = *al
	}
	r.mu.Unlock()
	if open {
		return &c, true, nil
	}
	stored, err := r.d.Store.Alert(ctx, id)
	return stored, false, err
}

// baseURL is how phones reach the gateway, without a trailing slash.
func (r *Router) baseURL() string {
	r.conf.RLock()
	defer r.conf.RUnlock()
	return strings.TrimSuffix(r.cfg.BaseURL, "/")
}

func (r *Router) personName(id string) string {
	r.conf.RLock()
	defer r.conf.RUnlock()
	if p := r.people[id]; p != nil && p.Name != "" {
		return p.Name
	}
	return id
}

// CheckLink verifies a link and says what it would acknowledge, for the
// confirmation page. It changes nothing (GET and HEAD, link previews and
// mail scanners land here).
func (r *Router) CheckLink(ctx context.Context, l Link) (*LinkView, error) {
	exp, err := r.verify(l)
	if err != nil {
		return nil, err
	}
	al, _, err := r.find(ctx, l.AlertID)
	if err != nil {
		return nil, err
	}
	v := &LinkView{Alert: al, Person: l.Person, PersonName: r.personName(l.Person), Expires: exp}
	usedAt, used, err := r.d.Links.LinkUsed(ctx, l.Sig)
	if err != nil {
		return nil, err
	}
	if used {
		v.UsedAt = usedAt
	}
	return v, nil
}

// AckByLink acknowledges the link's alert as its person (the POST from the
// confirmation page). Each link works once: a second use answers
// ErrLinkUsed with the alert as it stands. Every use is recorded as a
// link_ack attempt with the client's IP and told to the Auditor.
func (r *Router) AckByLink(ctx context.Context, l Link, clientIP string) (*Alert, error) {
	exp, err := r.verify(l)
	if err != nil {
		return nil, err
	}
	al, open, err := r.find(ctx, l.AlertID)
	if err != nil {
		return nil, err
	}
	now := r.now()
	name := r.personName(l.Person)
	result := "acked"
	defer func() {
		r.record(&Attempt{At: now, Kind: "link_ack", Alerts: []string{al.ID}, Alarms: []string{al.AlarmID}, Person: l.Person,
			Channel: "link", ClientIP: clientIP, Try: 1, Result: result})
		if r.d.Auditor != nil {
			r.d.Auditor.AuditLinkAck(ctx, LinkAudit{At: now, AlertID: al.ID, AlarmID: al.AlarmID, Person: l.Person, Name: name, ClientIP: clientIP, Result: result})
		}
	}()
	if _, err := r.d.Links.UseLink(ctx, l.Sig, now, exp); err != nil {
		if errors.Is(err, ErrLinkUsed) {
			result = "link_used"
			return al, err
		}
		result = "error"
		return nil, err
	}
	if !open || al.State != Firing {
		result = "already_" + map[bool]string{true: "acked", false: "closed"}[open]
		return al, nil // nothing to do; the page says what it was
	}
	// The alarm's note says how, not from where: the client's IP is in the
	// link_ack attempt and the audit log (operators and admins), never in
	// the alarm, which every screen shows.
	note := "手机链接确认 acknowledged from the message link"
	if _, err := r.d.Alarms.Ack(al.AlarmID, name, note); err != nil && !errors.Is(err, rules.ErrNothingToAck) {
		result = "error"
		return nil, err
	}
	r.mu.Lock()
	r.markAcked(al.AlarmID, name, now) // also when the alarm was acknowledged already
	c := *al
	if cur := r.alerts[al.ID]; cur != nil {
		c = *cur
	}
	r.mu.Unlock()
	return &c, nil
}
