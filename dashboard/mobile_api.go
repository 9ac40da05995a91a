package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/propgate/gateway/alerts"
	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/internal/cfgerr"
	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/register"
	"github.com/propgate/gateway/rules/workorder"
)

// The engineer's phone: /m/a/<alert> (the link in an alarm message) and
// /m/i/<incident> (the link in a playbook message) are mobile pages that the
// link's signature authorises, without a login or a cookie: the alarm or
// incident with where it is, the live readings, the instructions and the
// plan's current step, and buttons to acknowledge, accept the work order,
// say "I'm on site", and complete the steps of the person's roles with a
// note and a photo. Opening a page changes nothing; each action works once
// per link (alerts.UseMobileAction); an expired or changed link answers 403
// with a Chinese page.

// MobileConfig is the mobile: section.
type MobileConfig struct {
	PhotoDir    string       `yaml:"photo_dir"`    // where photos from phones are kept; default <rules database dir>/photos
	MaxPhotoMB  int          `yaml:"max_photo_mb"` // default 8
	Contractors []Contractor `yaml:"contractors"`  // the phone's tel: links, by work-order category
}

// ContactResolver resolves contact ids for an asset (register.Service).
type ContactResolver interface {
	Resolve(ids []string, asset string) []register.Contact
}

// Contractor is who the phone page offers to call for a category.
type Contractor struct {
	Category string `yaml:"category"` // e.g. elevator
	Name     string `yaml:"name"`     // 奥的斯电梯维保
	Phone    string `yaml:"phone"`    // +86 400 820 0000
}

var phoneRE = regexp.MustCompile(`^\+?[0-9][0-9 -]{2,24}$`)

// SetDefaults fills unset values; dataDir is where the rules database is.
func (c *MobileConfig) SetDefaults(dataDir string) {
	if c.PhotoDir == "" {
		c.PhotoDir = filepath.Join(dataDir, "photos")
	}
	if c.MaxPhotoMB == 0 {
		c.MaxPhotoMB = 8
	}
}

// Validate checks the section without touching the disk.
func (c *MobileConfig) Validate() error {
	if c.MaxPhotoMB < 0 || c.MaxPhotoMB > 64 {
		return cfgerr.Errorf("max_photo_mb", "%d is out of range; fix: 1 to 64 (MB)", c.MaxPhotoMB)
	}
	for i, ct := range c.Contractors {
		if ct.Category == "" {
			return cfgerr.Errorf(fmt.Sprintf("contractors[%d].category", i), "is required; fix: the work-order category they serve, e.g. elevator")
		}
		if !phoneRE.MatchString(ct.Phone) {
			return cfgerr.Errorf(fmt.Sprintf("contractors[%d].phone", i), "%q is not a phone number; fix: digits, spaces and '-', optionally starting with +, e.g. \"+86 400 820 0000\"", ct.Phone)
		}
	}
	return nil
}

// MobileLinks are the signed links as the phone pages need them (the alerts Router).
type MobileLinks interface {
	CheckLink(ctx context.Context, l alerts.Link) (*alerts.LinkView, error)
	AckByLink(ctx context.Context, l alerts.Link, clientIP string) (*alerts.Alert, error)
	CheckMobileLink(l alerts.Link, incident int64) (*alerts.MobilePerson, error)
	UseMobileAction(ctx context.Context, l alerts.Link, incident int64, action string) (*alerts.MobilePerson, error)
}

// Mobile is what the phone pages work with.
type Mobile struct {
	Links  MobileLinks
	Config MobileConfig
	// Register, when the site keeps one, names the asset's own maintenance
	// contractor (this car's 维保单位), which the page offers instead of
	// the category's in Config.Contractors.
	Register ContactResolver
	Loc      *time.Location // the site's time zone for times on the page
	Log      *slog.Logger
}

// MountMobile adds the phone pages. Call it after MountRules and MountIncidents.
func (a *API) MountMobile(m Mobile) {
	if m.Loc == nil {
		m.Loc = time.Local
	}
	if m.Log == nil {
		m.Log = slog.Default()
	}
	x := &mobileAPI{a: a, m: m}
	a.mux.HandleFunc("GET /m/a/{id}", x.page)
	a.mux.HandleFunc("POST /m/a/{id}", x.act)
	a.mux.HandleFunc("GET /m/i/{id}", x.page)
	a.mux.HandleFunc("POST /m/i/{id}", x.act)
	a.mux.HandleFunc("GET /api/v1/photos/{name}", x.photo) // Engineer+ (routeRole): photos may show residents
}

type mobileAPI struct {
	a *API
	m Mobile
}

// photoNameRE is the name the gateway gives a stored photo.
var photoNameRE = regexp.MustCompile(`^(incident|alarm)-[0-9a-z_.:@-]{1,80}-[0-9a-f]{16}\.(jpg|png|gif|webp)$`)

// imageTypes are the photos accepted, by their sniffed content type.
var imageTypes = map[string]string{"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}

// mobileView is everything a phone page shows.
type mobileView struct {
	Lang                 i18n.Lang
	Title, Class, Notice string
	Person               *alerts.MobilePerson
	ForLine              string
	Alert                *alerts.Alert
	Alarm                *rules.Alarm
	AlarmName            string
	Priority             string
	Where                string
	Since                string
	AlertState           string
	Instructions         string
	Readings             [][2]string
	Incident             *playbook.Incident
	Steps                []mobileStep
	Current              []mobileStep
	WorkOrder            *workorder.WorkOrder
	WOStatus             string
	CanAck, CanOnSite    bool
	CanAccept            bool
	Contractor           *Contractor
	Action               string // the form's action: the page's own path
	By, Exp, Sig         string
	MaxMB                int
	Help                 string
}

type mobileStep struct {
	ID, Title, Role, Status, Due, By, Done string
	Mine, Open, Overdue                    bool
}

func (x *mobileAPI) t(key string) string { return i18n.T(i18n.ZH, key) }

// link reads the signed parameters from the query (GET) or the form (POST).
func link(v url.Values, id string) alerts.Link {
	return alerts.Link{AlertID: id, Person: v.Get("by"), Exp: v.Get("exp"), Sig: v.Get("sig")}
}

// target is the page's alert id or incident id from its path.
func target(r *http.Request) (alertID string, incident int64, ok bool) {
	id := r.PathValue("id")
	if strings.HasPrefix(r.URL.Path, "/m/i/") {
		n, err := strconv.ParseInt(id, 10, 64)
		return "", n, err == nil && n > 0
	}
	return id, 0, id != ""
}

func (x *mobileAPI) page(w http.ResponseWriter, r *http.Request) {
	alertID, incident, ok := target(r)
	if !ok {
		x.refuse(w, http.StatusNotFound, x.t("m.tampered"))
		return
	}
	l := link(r.URL.Query(), alertID)
	v, err := x.build(r.Context(), l, alertID, incident)
	if err != nil {
		x.fail(w, err)
		return
	}
	v.Action = r.URL.EscapedPath()
	switch r.URL.Query().Get("done") {
	case "ack", "accept", "on_site", "step":
		v.Notice = x.t("m.saved")
	}
	x.render(w, http.StatusOK, v)
}

// build reads what the page shows for the link's person.
func (x *mobileAPI) build(ctx context.Context, l alerts.Link, alertID string, incident int64) (*mobileView, error) {
	v := &mobileView{Lang: i18n.ZH, By: l.Person, Exp: l.Exp, Sig: l.Sig, MaxMB: x.m.Config.MaxPhotoMB}
	p, err := x.m.Links.CheckMobileLink(l, incident)
	if err != nil {
		return nil, err
	}
	v.Person = p
	asset := ""
	if incident == 0 {
		lv, err := x.m.Links.CheckLink(ctx, l)
		if err != nil {
			return nil, err
		}
		al := lv.Alert
		v.Alert, asset = al, al.Asset
		v.AlarmName = i18n.Pick(i18n.ZH, al.NameZH, al.Name)
		v.Priority = i18n.T(i18n.ZH, "priority."+string(al.Priority))
		v.Where = al.Location
		v.Since = al.Since.In(x.m.Loc).Format("01-02 15:04:05")
		v.CanAck = al.State == alerts.Firing && lv.UsedAt.IsZero()
		if x.a.rules != nil {
			if alarm, ok := x.a.rules.Alarms.Alarm(al.AlarmID); ok {
				v.Alarm = &alarm
				v.Instructions = i18n.Pick(i18n.ZH, alarm.InstructionsZH, alarm.Instructions)
				v.AlertState = i18n.T(i18n.ZH, "state."+string(alarm.State))
				if alarm.AckBy != "" {
					v.AlertState += "（" + alarm.AckBy + "）"
				}
			}
		}
		v.Title = x.t("m.alarm") + " · " + v.AlarmName
		if x.a.incidents != nil {
			ins, err := x.a.incidents.Read.Incidents(ctx, true)
			if err != nil {
				return nil, err
			}
			for _, in := range ins {
				if in.Asset == asset && (v.Incident == nil || in.Started.After(v.Incident.Started)) {
					v.Incident = in
				}
			}
		}
	} else {
		if x.a.incidents == nil {
			return nil, alerts.ErrNotFound
		}
		in, err := x.a.incidents.Read.Incident(ctx, incident)
		if err != nil {
			return nil, err
		}
		v.Incident, asset = in, in.Asset
		v.Title = x.t("m.incident") + " · " + in.Name
		v.Where = in.Location
		v.Since = in.Started.In(x.m.Loc).Format("01-02 15:04:05")
	}
	v.ForLine = i18n.Tf(i18n.ZH, "m.for", p.Name, p.Expires.In(x.m.Loc).Format("01-02 15:04"))
	if in := v.Incident; in != nil {
		v.CanOnSite = in.Status == "open" && !slices.ContainsFunc(in.Timeline, func(e playbook.Entry) bool {
			return e.By == p.Name && e.Kind == "evidence" && e.Text == i18n.Both("tl.on_site")
		})
		for _, st := range in.Steps {
			ms := mobileStep{ID: st.ID, Title: i18n.Pick(i18n.ZH, st.TitleZH, st.Title), Role: i18n.T(i18n.ZH, "role."+st.Role),
				Status: i18n.T(i18n.ZH, "step."+string(st.Status)), By: st.By, Overdue: st.Overdue,
				Open: st.Status == playbook.StepActive, Mine: slices.Contains(p.Roles, st.Role)}
			if !st.Due.IsZero() {
				ms.Due = st.Due.In(x.m.Loc).Format("15:04:05")
			}
			if !st.Done.IsZero() {
				ms.Done = st.Done.In(x.m.Loc).Format("15:04:05")
			}
			v.Steps = append(v.Steps, ms)
			if st.Status == playbook.StepActive {
				v.Current = append(v.Current, ms)
			}
		}
	}
	if x.a.rules != nil && asset != "" {
		wos, err := x.a.rules.Orders.WorkOrders(ctx, workorder.Filter{Open: true, Asset: asset, Limit: 20})
		if err != nil {
			return nil, err
		}
		// Only the order this page is about: an alarm's own order, or on an
		// incident's page an order the gateway opened for the asset (a
		// plan's or a rule's), never a resident's report or another job on
		// the same asset that the link's holder could otherwise take over.
		for _, wo := range wos {
			if v.Alert != nil && wo.AlarmID == v.Alert.AlarmID || v.Alert == nil && wo.Source != "manual" {
				v.WorkOrder = wo
			}
		}
		if wo := v.WorkOrder; wo != nil {
			v.WOStatus = i18n.T(i18n.ZH, "wo."+string(wo.Status))
			v.CanAccept = wo.Status == workorder.Opened || wo.Status == workorder.Dispatched
			switch wo.Status {
			case workorder.Accepted:
				v.CanOnSite = true
			case workorder.OnSite, workorder.InProgress, workorder.Resolved:
				v.CanOnSite = false // arrived already
			}
			for i, c := range x.m.Config.Contractors {
				if c.Category == wo.Category {
					v.Contractor = &x.m.Config.Contractors[i]
				}
			}
		}
	}
	if x.m.Register != nil && asset != "" && (v.WorkOrder != nil || v.Incident != nil) {
		if cs := x.m.Register.Resolve([]string{register.AssetContractor}, asset); len(cs) > 0 && cs[0].Phone != "" {
			v.Contractor = &Contractor{Category: "asset", Name: cs[0].Name, Phone: cs[0].Phone}
		}
	}
	if st, ok := x.a.deps.State.Asset(asset); ok {
		if v.Where == "" {
			v.Where = strings.Join(nonEmpty(st.Building, st.Floor, st.Location), " ")
		}
		if v.AlarmName == "" && v.Incident != nil {
			v.AlarmName = st.Name
		}
	}
	for _, as := range x.a.deps.State.Snapshot() {
		if as.ID != asset {
			continue
		}
		keys := make([]string, 0, len(as.Fields))
		for k := range as.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f := as.Fields[k]
			val := strings.Trim(f.Value.String(), `"`)
			switch val {
			case "true":
				val = "是"
			case "false":
				val = "否"
			}
			if f.Unit != "" {
				val += " " + f.Unit
			}
			if f.Quality != collectors.QualityGood {
				val += "（" + f.Quality.String() + "）"
			}
			v.Readings = append(v.Readings, [2]string{i18n.T(i18n.ZH, "field."+k), val})
		}
	}
	return v, nil
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// act is a button on the page: the signed parameters, the action, and for
// a step its note and an optional photo (multipart). Then back to the page.
func (x *mobileAPI) act(w http.ResponseWriter, r *http.Request) {
	alertID, incident, ok := target(r)
	if !ok {
		x.refuse(w, http.StatusNotFound, x.t("m.tampered"))
		return
	}
	maxBytes := int64(x.m.Config.MaxPhotoMB) << 20
	r.Body = http.MaxBytesReader(w, r.Body, maxBytes+64<<10)
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			x.refuse(w, http.StatusRequestEntityTooLarge, i18n.Tf(i18n.ZH, "m.photo_bad", x.m.Config.MaxPhotoMB))
			return
		}
		x.refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.MultipartForm == nil {
		if err := r.ParseForm(); err != nil {
			x.refuse(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	f := r.PostForm
	l := link(f, alertID)
	ctx := r.Context()
	act, step, note := f.Get("act"), f.Get("step"), strings.TrimSpace(f.Get("note"))
	v, err := x.build(ctx, l, alertID, incident)
	if err != nil {
		x.fail(w, err)
		return
	}
	name := v.Person.Name
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	switch act {
	case "ack":
		if incident != 0 {
			x.refuse(w, http.StatusBadRequest, "no alarm on this page")
			return
		}
		if _, err := x.m.Links.AckByLink(ctx, l, ip); err != nil {
			x.fail(w, err)
			return
		}
	case "accept", "on_site":
		if _, err := x.m.Links.UseMobileAction(ctx, l, incident, act); err != nil {
			x.fail(w, err)
			return
		}
		if act == "accept" && !v.CanAccept || act == "on_site" && !v.CanOnSite {
			x.fail(w, workorder.ErrConflict)
			return
		}
		if wo := v.WorkOrder; wo != nil {
			to := workorder.Accepted
			if act == "on_site" {
				to = workorder.OnSite
			}
			if act == "accept" || wo.Status == workorder.Accepted {
				if _, err := x.a.rules.WorkOrders.Transition(ctx, wo.ID, to, name, x.t("m.title")); err != nil {
					x.fail(w, err)
					return
				}
				if act == "accept" && wo.Assignee == "" { // who accepted it is who does it
					if _, err := x.a.rules.WorkOrders.Update(ctx, wo.ID, workorder.Update{Assignee: &name}, name); err != nil {
						x.fail(w, err)
						return
					}
				}
			}
		}
		if act == "on_site" && v.Incident != nil {
			if _, err := x.a.incidents.Act.AddEvidence(ctx, v.Incident.ID, name, i18n.Both("tl.on_site")); err != nil {
				x.fail(w, err)
				return
			}
		}
	case "step":
		if v.Incident == nil || !slices.ContainsFunc(v.Steps, func(s mobileStep) bool { return s.ID == step && s.Mine && s.Open }) {
			x.refuse(w, http.StatusForbidden, x.t("m.refused_help"))
			return
		}
		photo, err := x.savePhoto(r, v)
		if err != nil {
			x.refuse(w, http.StatusUnsupportedMediaType, err.Error())
			return
		}
		if _, err := x.m.Links.UseMobileAction(ctx, l, incident, "step:"+step); err != nil {
			x.removePhoto(photo)
			x.fail(w, err)
			return
		}
		if photo != "" {
			if note != "" {
				note += " "
			}
			note += "（" + i18n.T(i18n.ZH, "tl.photo") + " " + photo + "）"
			if _, err := x.a.incidents.Act.AddEvidence(ctx, v.Incident.ID, name, i18n.T(i18n.ZH, "tl.photo")+" photo: /api/v1/photos/"+photo); err != nil {
				x.fail(w, err)
				return
			}
		}
		if note == "" {
			note = x.t("m.done")
		}
		if _, err := x.a.incidents.Steps.Complete(ctx, v.Incident.ID, step, name, note); err != nil {
			x.fail(w, err)
			return
		}
	default:
		x.refuse(w, http.StatusBadRequest, "unknown action")
		return
	}
	access.AuditAs(r, l.Person) // recorded as the person the link was made for
	q := url.Values{"by": {l.Person}, "exp": {l.Exp}, "sig": {l.Sig}, "done": {act}}
	http.Redirect(w, r, r.URL.EscapedPath()+"?"+q.Encode(), http.StatusSeeOther)
}

// savePhoto keeps the step's photo, if any: an image by its content (not
// its name or the header the phone sent), within the size limit.
func (x *mobileAPI) savePhoto(r *http.Request, v *mobileView) (string, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File["photo"]) == 0 {
		return "", nil
	}
	fh := r.MultipartForm.File["photo"][0]
	if fh.Size == 0 {
		return "", nil
	}
	bad := errors.New(i18n.Tf(i18n.ZH, "m.photo_bad", x.m.Config.MaxPhotoMB) + " / " + i18n.Tf(i18n.EN, "m.photo_bad", x.m.Config.MaxPhotoMB))
	if fh.Size > int64(x.m.Config.MaxPhotoMB)<<20 {
		return "", bad
	}
	f, err := fh.Open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(x.m.Config.MaxPhotoMB)<<20+1))
	if err != nil {
		return "", err
	}
	ext, ok := imageTypes[http.DetectContentType(data)]
	if !ok || len(data) > x.m.Config.MaxPhotoMB<<20 {
		return "", bad
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("incident-%d-%s.%s", v.Incident.ID, hex.EncodeToString(rnd[:]), ext)
	if err := os.MkdirAll(x.m.Config.PhotoDir, 0o750); err != nil {
		return "", fmt.Errorf("photo directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(x.m.Config.PhotoDir, name), data, 0o640); err != nil {
		return "", fmt.Errorf("saving the photo: %w", err)
	}
	return name, nil
}

func (x *mobileAPI) removePhoto(name string) {
	if name != "" {
		_ = os.Remove(filepath.Join(x.m.Config.PhotoDir, name))
	}
}

// photo serves a stored photo to engineers and above.
func (x *mobileAPI) photo(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !photoNameRE.MatchString(name) {
		httpjson.Error(w, http.StatusNotFound, "no photo "+name)
		return
	}
	data, err := os.ReadFile(filepath.Join(x.m.Config.PhotoDir, name))
	if err != nil {
		httpjson.Error(w, http.StatusNotFound, "no photo "+name)
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType(data))
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(data)
}

// fail maps a link or action error to its page.
func (x *mobileAPI) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, alerts.ErrBadSignature):
		x.refuse(w, http.StatusForbidden, x.t("m.tampered"))
	case errors.Is(err, alerts.ErrLinkExpired):
		x.refuse(w, http.StatusForbidden, x.t("m.expired"))
	case errors.Is(err, alerts.ErrLinkUsed):
		x.refuse(w, http.StatusConflict, x.t("m.used"))
	case errors.Is(err, alerts.ErrNotFound), errors.Is(err, rules.ErrNotFound):
		x.refuse(w, http.StatusNotFound, x.t("none"))
	case errors.Is(err, workorder.ErrConflict):
		x.refuse(w, http.StatusConflict, x.t("m.not_now"))
	default: // the details are for the log, not for whoever holds the link
		x.m.Log.Error("phone page failed", "err", err)
		x.refuse(w, http.StatusConflict, x.t("m.not_now"))
	}
}

func (x *mobileAPI) refuse(w http.ResponseWriter, status int, msg string) {
	x.render(w, status, &mobileView{Lang: i18n.ZH, Title: msg, Class: "no", Help: x.t("m.refused_help")})
}

func (x *mobileAPI) render(w http.ResponseWriter, status int, v *mobileView) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the page's URL holds the signature
	h.Set("X-Robots-Tag", "noindex")
	w.WriteHeader(status)
	if err := mobileTemplate.Execute(w, v); err != nil {
		x.m.Log.Error("phone page", "err", err)
	}
}

var mobileTemplate = template.Must(template.New("m").Funcs(template.FuncMap{"t": func(k string) string { return i18n.T(i18n.ZH, k) },
	"tf": func(k string, a ...any) string { return i18n.Tf(i18n.ZH, k, a...) }}).Parse(`<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title><link rel="stylesheet" href="/static/mobile.css"></head>
<body class="m">
<header><b>{{t "m.title"}}</b>{{with .Person}} <span>{{.Name}}</span>{{end}}</header>
<h1 class="{{.Class}}">{{.Title}}</h1>
{{if .Notice}}<p class="notice" id="notice">✓ {{.Notice}}</p>{{end}}
{{if .Help}}<p class="help">{{.Help}}</p>{{end}}
{{with .Alert}}<section id="alarm"><dl>
<dt>{{t "priority"}}</dt><dd class="p-{{.Priority}}">{{$.Priority}}</dd>
<dt>{{t "where"}}</dt><dd>{{$.Where}}</dd>
<dt>{{t "since"}}</dt><dd>{{$.Since}}</dd>
<dt>{{t "status"}}</dt><dd id="alarmstate">{{$.AlertState}}</dd>
</dl>
{{if $.Instructions}}<h2>{{t "m.instructions"}}</h2><p>{{$.Instructions}}</p>{{end}}
{{if $.CanAck}}<form method="post" action="{{$.Action}}"><input type="hidden" name="by" value="{{$.By}}"><input type="hidden" name="exp" value="{{$.Exp}}"><input type="hidden" name="sig" value="{{$.Sig}}">
<input type="hidden" name="act" value="ack"><button id="ack" class="big red">{{t "m.ack"}}</button></form>{{end}}
</section>{{end}}
{{with .Incident}}<section id="incident" data-incident="{{.ID}}"><h2>{{t "m.incident"}} · {{.Name}}</h2>
{{if not $.Alert}}<dl><dt>{{t "where"}}</dt><dd>{{$.Where}}</dd><dt>{{t "since"}}</dt><dd>{{$.Since}}</dd></dl>{{end}}
{{if $.Current}}<h2>{{t "m.current_step"}}</h2>{{range $.Current}}<p class="current">{{.Title}} <span class="muted">{{.Role}} · {{t "deadline"}} {{.Due}}</span>{{if .Overdue}} <b class="overdue">{{t "overdue"}}</b>{{end}}</p>{{end}}{{end}}
</section>{{end}}
{{if or .CanOnSite .CanAccept .WorkOrder}}<section id="work">
{{with .WorkOrder}}<h2>{{t "m.workorder"}} #{{.ID}} · <span id="wostatus">{{$.WOStatus}}</span></h2>{{end}}
{{if .CanAccept}}<form method="post" action="{{.Action}}"><input type="hidden" name="by" value="{{.By}}"><input type="hidden" name="exp" value="{{.Exp}}"><input type="hidden" name="sig" value="{{.Sig}}">
<input type="hidden" name="act" value="accept"><button id="accept" class="big">{{t "m.accept"}}</button></form>{{end}}
{{if .CanOnSite}}<form method="post" action="{{.Action}}"><input type="hidden" name="by" value="{{.By}}"><input type="hidden" name="exp" value="{{.Exp}}"><input type="hidden" name="sig" value="{{.Sig}}">
<input type="hidden" name="act" value="on_site"><button id="onsite" class="big">{{t "m.on_site"}}</button></form>{{end}}
{{with .Contractor}}<p><a class="big tel" id="tel" href="tel:{{.Phone}}">📞 {{t "m.call_contractor"}}：{{.Name}} {{.Phone}}</a></p>{{end}}
</section>{{end}}
{{if .Steps}}<section id="steps"><h2>{{t "report.steps"}}</h2><ol>
{{range .Steps}}<li class="st {{if .Mine}}mine{{end}}" data-step="{{.ID}}"><div>{{.Title}}</div><div class="muted">{{.Role}} · {{.Status}}{{if .By}} · {{.By}} {{.Done}}{{end}}{{if .Overdue}} · <b class="overdue">{{t "overdue"}}</b>{{end}}</div>
{{if and .Mine .Open}}<form method="post" action="{{$.Action}}" enctype="multipart/form-data"><input type="hidden" name="by" value="{{$.By}}"><input type="hidden" name="exp" value="{{$.Exp}}"><input type="hidden" name="sig" value="{{$.Sig}}">
<input type="hidden" name="act" value="step"><input type="hidden" name="step" value="{{.ID}}">
<label>{{t "m.note"}}<textarea name="note" rows="2"></textarea></label>
<label>{{t "m.photo"}}<input type="file" name="photo" accept="image/*" capture="environment"></label>
<button class="big">{{t "m.complete"}}</button></form>{{end}}</li>
{{end}}</ol></section>{{end}}
{{if .Readings}}<section id="readings"><h2>{{t "m.readings"}}</h2><table>{{range .Readings}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</table></section>{{end}}
{{if .ForLine}}<p class="muted small">{{.ForLine}}</p>{{end}}
</body></html>
`))
