package alerts

import (
	"context"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"
)

// The engineer's phone (/m/...): every message links to a mobile page that
// the link's signature authorises, without a login. The page link shows
// (it may be opened again until it expires); each action on it (acknowledge,
// accept, on site, complete a step) works once per link: its use is kept
// in the link store under the signature and the action's name.
//
//	/m/a/<alert id>?by&exp&sig        an alarm (the acknowledgement link)
//	/m/i/<incident id>?by&exp&sig     an incident (playbook messages)
//
// An incident link is signed over "incident:<id>", which no alert id can
// be (alert ids are <rule>:<asset>@<n>, and rule ids have no ':').

// MobilePerson is who a valid link was made for.
type MobilePerson struct {
	ID      string
	Name    string
	Expires time.Time
	Roles   []string // the playbook roles of the teams the person is in (alerts.roles)
}

// incidentSubject is what an incident link signs.
func incidentSubject(id int64) string { return "incident:" + strconv.FormatInt(id, 10) }

// IncidentLink is the signed link a playbook message carries for person.
func (r *Router) IncidentLink(id int64, person string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(r.linkTTL("")).Unix(), 10)
	q := url.Values{"by": {person}, "exp": {exp}, "sig": {r.sign(incidentSubject(id), person, exp)}}
	return r.baseURL() + "/m/i/" + strconv.FormatInt(id, 10) + "?" + q.Encode()
}

// CheckMobileLink verifies an alarm link (l.AlertID the alert) or, with
// incident > 0, an incident link: ErrBadSignature or ErrLinkExpired when it
// is not valid. It changes nothing.
func (r *Router) CheckMobileLink(l Link, incident int64) (*MobilePerson, error) {
	if incident > 0 {
		l.AlertID = incidentSubject(incident)
	}
	exp, err := r.verify(l)
	if err != nil {
		return nil, err
	}
	return &MobilePerson{ID: l.Person, Name: r.personName(l.Person), Expires: exp, Roles: r.rolesOf(l.Person)}, nil
}

// UseMobileAction verifies the link and spends it for action (e.g.
// "on_site", "step:reach-car"): the second use answers ErrLinkUsed.
func (r *Router) UseMobileAction(ctx context.Context, l Link, incident int64, action string) (*MobilePerson, error) {
	p, err := r.CheckMobileLink(l, incident)
	if err != nil {
		return nil, err
	}
	if _, err := r.d.Links.UseLink(ctx, l.Sig+"\n"+action, r.now(), p.Expires); err != nil {
		return nil, err
	}
	return p, nil
}

// MobileActionUsed verifies the link and says whether (and when) it was
// spent for action already, without spending it: the phone page checks
// this before it reads a request's body (a photo).
func (r *Router) MobileActionUsed(ctx context.Context, l Link, incident int64, action string) (time.Time, bool, error) {
	if _, err := r.CheckMobileLink(l, incident); err != nil {
		return time.Time{}, false, err
	}
	return r.d.Links.LinkUsed(ctx, l.Sig+"\n"+action)
}

// rolesOf are the playbook roles mapped to the teams person is a member of.
func (r *Router) rolesOf(person string) []string {
	r.conf.RLock()
	defer r.conf.RUnlock()
	var roles []string
	for role, team := range r.cfg.Roles {
		t := r.teams[team]
		if t != nil && (slices.Contains(t.Rotation.Members, person) || slices.ContainsFunc(t.Overrides, func(o Override) bool { return o.Person == person })) {
			roles = append(roles, role)
		}
	}
	sort.Strings(roles)
	return roles
}
