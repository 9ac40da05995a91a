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
//
// What a link may act on is what it was issued for: an alarm's link, the
// work order its rule opened for that alarm by the time the activation
// began and the incidents that activation started or triggered again; an
// incident's link, that incident, the work orders its steps opened and
// those of the activations that triggered it. A later incident or work
// order on the same asset is out of its reach, and every action checks the
// link's signature, expiry and single use before the request's body (a
// photo) is read.

// MobileConfig is the mobile: section.
type MobileConfig struct {
	PhotoDir    string       `yaml:"photo_dir"`    // where photos from phones are kept; default <rules database dir>/photos
	MaxPhotoMB  int          `yaml:"max_photo_mb"` // default 8
	Contractors []Contractor `yaml:"contractors"`  // the phone's tel: links by work-order category, when the register has none for the asset
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
	MobileActionUsed(ctx context.Context, l alerts.Link, incident int64, action string) (time.Time, bool, error)
}

// AssetContractors is the asset register as the phone page reads it: the
// asset's maintenance contractor and their number (register.Service).
type AssetContractors interface {
	Entry(asset string) (register.Entry, error)
}

// Mobile is what the phone pages work with.
type Mobile struct {
	Links  MobileLinks
	Config MobileConfig
	// Register, when set, names the contractor the page offers to call: the
	// asset's maintenance contractor; Config.Contractors only when the
	// register has no number for it.
	Register AssetContractors
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
	AckUsed              bool // the alarm link's acknowledgement was used
	CanAccept            bool
	Contractor           *Contractor
	Action               string // the page's own path; its forms post there with the link's parameters
	By, Exp, Sig         string
	MaxMB                int
	Help                 string
}

// Post is where a button posts: the page's path with the signed link and
// the action in the query, so the link is checked before the body is read
// (the body carries only a step's note and photo).
func (v *mobileView) Post(act, step string) string {
	q := url.Values{"by": {v.By}, "exp": {v.Exp}, "sig": {v.Sig}, "act": {act}}
	if step != "" {
		q.Set("step", step)
	}
	return v.Action + "?" + q.Encode()
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
		v.AckUsed = !lv.UsedAt.IsZero()
		v.CanAck = al.State == alerts.Firing && !v.AckUsed
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
			for _, in := range ins { // only what this activation of the alarm started or triggered again
				if in.TriggeredBy(al.AlarmID, al.Since) && (v.Incident == nil || in.Started.After(v.Incident.Started)) {
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
		// Only the order this page is about (ownOrder), never a resident's
		// report or another job on the same asset, nor one opened after the
		// link was issued, that the link's holder could otherwise take over.
		for _, wo := range wos {
			if ownOrder(v, wo) {
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
		}
	}
	v.Contractor = x.contractor(v, asset)
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

// sameActivation is how long apart two records of one instant may be
// (stores keep times to the second, the millisecond or the microsecond).
const sameActivation = time.Second

// ownOrder: wo is a work order the page's link was issued for. An alarm's
// link: the order the alarm's rule opened (or reused) by the time this
// activation began; an order opened for a later activation is not its. An
// incident's link: the orders its steps opened, and those of the alarm
// activations that triggered it.
func ownOrder(v *mobileView, wo *workorder.WorkOrder) bool {
	opened := func(alarm string, since time.Time) bool {
		return wo.Source == "rule" && wo.AlarmID == alarm && !wo.Created.After(since.Add(sameActivation))
	}
	if v.Alert != nil {
		return opened(v.Alert.AlarmID, v.Alert.Since)
	}
	in := v.Incident
	if in == nil {
		return false
	}
	return slices.Contains(in.WorkOrders, wo.ID) || slices.ContainsFunc(in.Activations, func(a playbook.Activation) bool { return opened(a.Alarm, a.Since) })
}

// contractor is whom the page offers to call: the asset's maintenance
// contractor from the register; the configured contractor for the work
// order's (or the alarm's) category when the register has no number.
func (x *mobileAPI) contractor(v *mobileView, asset string) *Contractor {
	if x.m.Register != nil && asset != "" {
		if e, err := x.m.Register.Entry(asset); err == nil && strings.TrimSpace(e.ContractorPhone) != "" {
			return &Contractor{Category: "register", Name: e.Contractor, Phone: strings.TrimSpace(e.ContractorPhone)}
		}
	}
	category := ""
	switch {
	case v.WorkOrder != nil:
		category = v.WorkOrder.Category
	case v.Alert != nil:
		category = v.Alert.Category
	}
	if category == "" {
		return nil
	}
	for i, c := range x.m.Config.Contractors {
		if c.Category == category {
			return &x.m.Config.Contractors[i]
		}
	}
	return nil
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

// act is a button on the page: the signed link and the action in the
// query (see Post), and for a step its note and an optional photo in the
// body (multipart). The link's signature, expiry and single use are checked
// before the body is read, and the body is read within a limit: a step's
// photo and note, or a few fields. Then back to the page.
func (x *mobileAPI) act(w http.ResponseWriter, r *http.Request) {
	alertID, incident, ok := target(r)
	if !ok {
		x.refuse(w, http.StatusNotFound, x.t("m.tampered"))
		return
	}
	q := r.URL.Query()
	l := link(q, alertID)
	ctx := r.Context()
	act, step := q.Get("act"), q.Get("step")
	switch act {
	case "ack", "accept", "on_site", "step":
	default:
		x.refuse(w, http.StatusBadRequest, x.t("m.not_now"))
		return
	}
	v, err := x.build(ctx, l, alertID, incident) // the signature and the expiry first
	if err != nil {
		x.fail(w, err)
		return
	}
	if err := x.unused(ctx, l, incident, act, step, v); err != nil {
		x.fail(w, err)
		return
	}
	limit := int64(64 << 10) // the form's few fields
	if act == "step" {
		limit += int64(x.m.Config.MaxPhotoMB) << 20
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			x.refuse(w, http.StatusRequestEntityTooLarge, i18n.Tf(i18n.ZH, "m.photo_bad", x.m.Config.MaxPhotoMB))
			return
		}
		x.refuse(w, http.StatusBadRequest, x.t("m.not_now"))
		return
	}
	if r.MultipartForm != nil {
		defer r.MultipartForm.RemoveAll()
	} else if err := r.ParseForm(); err != nil {
		x.refuse(w, http.StatusBadRequest, x.t("m.not_now"))
		return
	}
	note := strings.TrimSpace(r.PostForm.Get("note"))
	name := v.Person.Name
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	switch act {
	case "ack":
		if incident != 0 {
			x.refuse(w, http.StatusBadRequest, x.t("m.not_now"))
			return
		}
		if _, err := x.m.Links.AckByLink(ctx, l, ip); err != nil {
			x.fail(w, err)
			return
		}
	case "accept", "on_site":
		if act == "accept" && !v.CanAccept || act == "on_site" && !v.CanOnSite {
			x.fail(w, workorder.ErrConflict)
			return
		}
		if _, err := x.m.Links.UseMobileAction(ctx, l, incident, act); err != nil {
			x.fail(w, err)
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
		photo, err := x.readPhoto(r)
		if err != nil {
			x.refuse(w, http.StatusUnsupportedMediaType, err.Error())
			return
		}
		if _, err := x.m.Links.UseMobileAction(ctx, l, incident, "step:"+step); err != nil {
			x.fail(w, err)
			return
		}
		name, err := x.storePhoto(photo, v)
		if err != nil {
			x.fail(w, err)
			return
		}
		if name != "" {
			if note != "" {
				note += " "
			}
			note += "（" + i18n.T(i18n.ZH, "tl.photo") + " " + name + "）"
			if _, err := x.a.incidents.Act.AddEvidence(ctx, v.Incident.ID, v.Person.Name, i18n.T(i18n.ZH, "tl.photo")+" photo: /api/v1/photos/"+name); err != nil {
				x.fail(w, err)
				return
			}
		}
		if note == "" {
			note = x.t("m.done")
		}
		if _, err := x.a.incidents.Steps.Complete(ctx, v.Incident.ID, step, v.Person.Name, note); err != nil {
			x.fail(w, err)
			return
		}
	}
	access.AuditAs(r, l.Person) // recorded as the person the link was made for
	back := url.Values{"by": {l.Person}, "exp": {l.Exp}, "sig": {l.Sig}, "done": {act}}
	http.Redirect(w, r, r.URL.EscapedPath()+"?"+back.Encode(), http.StatusSeeOther)
}

// unused checks, before anything is read from the body, that the page's
// link may still do act: an acknowledgement link not used yet, an action
// (or a step) not done with this link yet, a step of the person's roles
// open on the page's incident. It spends nothing.
func (x *mobileAPI) unused(ctx context.Context, l alerts.Link, incident int64, act, step string, v *mobileView) error {
	switch act {
	case "ack":
		if v.Alert == nil {
			return workorder.ErrConflict
		}
		if v.AckUsed {
			return alerts.ErrLinkUsed
		}
		return nil // AckByLink spends it, and says when the alarm was acknowledged already
	case "step":
		if v.Incident == nil || !slices.ContainsFunc(v.Steps, func(s mobileStep) bool { return s.ID == step && s.Mine && s.Open }) {
			return errNotYours
		}
		act = "step:" + step
	}
	_, used, err := x.m.Links.MobileActionUsed(ctx, l, incident, act)
	if err != nil {
		return err
	}
	if used {
		return alerts.ErrLinkUsed
	}
	return nil
}

// errNotYours: the step is not open, or not one of the person's roles.
var errNotYours = errors.New("the step is not open or not for this person's roles")

// photoUpload is a step's photo, read and checked, not stored yet.
type photoUpload struct {
	data []byte
	ext  string
}

// readPhoto reads the step's photo, if any: an image by its content (not
// its name or the header the phone sent), within the size limit.
func (x *mobileAPI) readPhoto(r *http.Request) (*photoUpload, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File["photo"]) == 0 {
		return nil, nil
	}
	fh := r.MultipartForm.File["photo"][0]
	if fh.Size == 0 {
		return nil, nil
	}
	bad := errors.New(i18n.Tf(i18n.ZH, "m.photo_bad", x.m.Config.MaxPhotoMB) + " / " + i18n.Tf(i18n.EN, "m.photo_bad", x.m.Config.MaxPhotoMB))
	if fh.Size > int64(x.m.Config.MaxPhotoMB)<<20 {
		return nil, bad
	}
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(x.m.Config.MaxPhotoMB)<<20+1))
	if err != nil {
		return nil, err
	}
	ext, ok := imageTypes[http.DetectContentType(data)]
	if !ok || len(data) > x.m.Config.MaxPhotoMB<<20 {
		return nil, bad
	}
	return &photoUpload{data: data, ext: ext}, nil
}

// storePhoto keeps a checked photo under a name of its own ("" for none).
func (x *mobileAPI) storePhoto(p *photoUpload, v *mobileView) (string, error) {
	if p == nil {
		return "", nil
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("incident-%d-%s.%s", v.Incident.ID, hex.EncodeToString(rnd[:]), p.ext)
	if err := os.MkdirAll(x.m.Config.PhotoDir, 0o750); err != nil {
		return "", fmt.Errorf("photo directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(x.m.Config.PhotoDir, name), p.data, 0o640); err != nil {
		return "", fmt.Errorf("saving the photo: %w", err)
	}
	return name, nil
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
	case errors.Is(err, errNotYours):
		x.refuse(w, http.StatusForbidden, x.t("m.refused_help"))
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
{{if $.CanAck}}<form method="post" data-act="ack" action="{{$.Post "ack" ""}}"><button id="ack" class="big red">{{t "m.ack"}}</button></form>{{end}}
</section>{{end}}
{{with .Incident}}<section id="incident" data-incident="{{.ID}}"><h2>{{t "m.incident"}} · {{.Name}}</h2>
{{if not $.Alert}}<dl><dt>{{t "where"}}</dt><dd>{{$.Where}}</dd><dt>{{t "since"}}</dt><dd>{{$.Since}}</dd></dl>{{end}}
{{if $.Current}}<h2>{{t "m.current_step"}}</h2>{{range $.Current}}<p class="current">{{.Title}} <span class="muted">{{.Role}} · {{t "deadline"}} {{.Due}}</span>{{if .Overdue}} <b class="overdue">{{t "overdue"}}</b>{{end}}</p>{{end}}{{end}}
</section>{{end}}
{{if or .CanOnSite .CanAccept .WorkOrder}}<section id="work">
{{with .WorkOrder}}<h2>{{t "m.workorder"}} #{{.ID}} · <span id="wostatus">{{$.WOStatus}}</span></h2>{{end}}
{{if .CanAccept}}<form method="post" data-act="accept" action="{{.Post "accept" ""}}"><button id="accept" class="big">{{t "m.accept"}}</button></form>{{end}}
{{if .CanOnSite}}<form method="post" data-act="on_site" action="{{.Post "on_site" ""}}"><button id="onsite" class="big">{{t "m.on_site"}}</button></form>{{end}}
{{with .Contractor}}<p><a class="big tel" id="tel" href="tel:{{.Phone}}">📞 {{t "m.call_contractor"}}：{{.Name}} {{.Phone}}</a></p>{{end}}
</section>{{end}}
{{if .Steps}}<section id="steps"><h2>{{t "report.steps"}}</h2><ol>
{{range .Steps}}<li class="st {{if .Mine}}mine{{end}}" data-step="{{.ID}}"><div>{{.Title}}</div><div class="muted">{{.Role}} · {{.Status}}{{if .By}} · {{.By}} {{.Done}}{{end}}{{if .Overdue}} · <b class="overdue">{{t "overdue"}}</b>{{end}}</div>
{{if and .Mine .Open}}<form method="post" data-act="step" action="{{$.Post "step" .ID}}" enctype="multipart/form-data">
<label>{{t "m.note"}}<textarea name="note" rows="2"></textarea></label>
<label>{{t "m.photo"}}<input type="file" name="photo" accept="image/*" capture="environment"></label>
<button class="big">{{t "m.complete"}}</button></form>{{end}}</li>
{{end}}</ol></section>{{end}}
{{if .Readings}}<section id="readings"><h2>{{t "m.readings"}}</h2><table>{{range .Readings}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</table></section>{{end}}
{{if .ForLine}}<p class="muted small">{{.ForLine}}</p>{{end}}
</body></html>
`))
