package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/internal/testenv"
)

// visibleText is what a person sees on the page: every visible text node,
// the placeholders, the choices in the selects and the window title.
const visibleText = `(() => {
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement, t = n.textContent.trim();
    if (!t || !el || el.closest("script,style") || !el.getClientRects().length) continue;
    out.push(t);
  }
  document.querySelectorAll("input[placeholder]").forEach(el => { if (el.getClientRects().length) out.push(el.placeholder); });
  document.querySelectorAll("select option").forEach(el => { if (el.parentElement.getClientRects().length) out.push(el.textContent); });
  return out;
})()`

var (
	hanRE  = regexp.MustCompile(`\p{Han}+`)
	wordRE = regexp.MustCompile(`[A-Za-z][A-Za-z_.]+[A-Za-z]`)
)

// uiWords are the English words of the catalogue's UI (not in zh): an
// English word of these on a Chinese screen is untranslated UI.
func uiWords() map[string]bool {
	words := map[string]bool{}
	for _, k := range i18n.Keys() {
		for _, w := range wordRE.FindAllString(i18n.T(i18n.EN, k), -1) {
			if len(w) >= 3 {
				words[strings.ToLower(w)] = true
			}
		}
		words[strings.ToLower(k)] = true // a raw key (priority.high, incidents)
	}
	// Units; the demo banner names itself; the language switch names the
	// other language in itself ("English"); file formats and products the
	// register's import names in either language.
	for _, w := range []string{"mpa", "kwh", "demo", "english", "excel", "csv", "utf", "gbk"} {
		delete(words, w)
	}
	return words
}

// uiHan are the catalogue's Chinese strings of two or more characters.
func uiHan() []string {
	var out []string
	for _, k := range i18n.Keys() {
		for _, h := range hanRE.FindAllString(i18n.T(i18n.ZH, k), -1) {
			if len([]rune(h)) >= 2 {
				out = append(out, h)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return slices.Compact(out)
}

// names are the site's data the screens show as they are in either
// language: asset names, buildings, locations, people, teams, incidents,
// rules' Chinese names are not among them (lang=en shows the English).
func (s *site) names() []string {
	var out []string
	var assets []struct{ ID, Name, Building, Location, Floor string }
	s.getJSON("/api/v1/assets", &assets)
	for _, a := range assets {
		out = append(out, a.ID, a.Name, a.Building, a.Location, a.Floor)
	}
	var ins []struct {
		ID             int64
		Name, Location string
	}
	s.getJSON("/api/v1/incidents", &ins)
	for _, in := range ins {
		out = append(out, in.Name, in.Location)
	}
	var wos []struct{ Location, Description string }
	s.getJSON("/api/v1/workorders", &wos)
	for _, w := range wos {
		out = append(out, w.Location, w.Description)
	}
	// Whom the steps say to call (the register's contacts: names, with the
	// register's own description of them, made by rules/register).
	for _, in := range ins {
		var steps []struct{ Contacts []struct{ Name string } }
		s.getJSON(fmt.Sprintf("/api/v1/incidents/%d/contacts", in.ID), &steps)
		for _, st := range steps {
			for _, c := range st.Contacts {
				out = append(out, c.Name)
			}
		}
	}
	var pbs []struct{ Name string }
	s.getJSON("/api/v1/playbooks", &pbs)
	for _, p := range pbs {
		out = append(out, p.Name)
	}
	out = append(out, s.consoleNames()...)
	out = append(out, "玉山花园", "王立", "张伟", "赵刚", "陈静", "李明", "周军", "孙华", "系统管理员",
		"工程部", "保安部", "物业服务部", "当班领班", "工程部经理", "总经理/值班领导")
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// consoleNames are the site's data the console pages show as they are:
// the register and contacts, inspection routes and PM plans, planned
// works, the roster, handovers and the duty log, the alert channels. The
// words of the pages themselves (statuses, kinds, headings) are not among
// them: those come from the catalogue.
func (s *site) consoleNames() []string {
	var out []string
	var reg []struct {
		Asset, Maker, Model, Serial, Location, Contractor, Notes string
		Phone                                                    string `json:"contractor_phone"`
		Code                                                     string `json:"registration_code"`
		Certificates                                             []struct{ Kind, Number, Issuer string }
		Documents                                                []struct{ Title, URL string }
	}
	s.getJSON("/api/v1/register", &reg)
	for _, e := range reg {
		out = append(out, e.Asset, e.Maker, e.Model, e.Serial, e.Location, e.Contractor, e.Notes, e.Phone, e.Code)
		for _, c := range e.Certificates {
			out = append(out, c.Kind, c.Number, c.Issuer)
		}
		for _, d := range e.Documents {
			out = append(out, d.Title, d.URL)
		}
	}
	var contacts []struct{ Name, Phone, Phone2, Notes string }
	s.getJSON("/api/v1/contacts", &contacts)
	for _, c := range contacts {
		out = append(out, c.Name, c.Phone, c.Phone2, c.Notes)
	}
	var insp struct {
		Routes []struct {
			Name, Schedule string
			Checkpoints    []struct{ Name, Location string }
		}
		Rounds []struct {
			Name, Note string
			Results    []struct{ By string }
		}
	}
	s.getJSON("/api/v1/inspections?limit=50", &insp)
	for _, r := range insp.Routes {
		out = append(out, r.Name, r.Schedule)
		for _, c := range r.Checkpoints {
			out = append(out, c.Name, c.Location)
		}
	}
	for _, r := range insp.Rounds {
		out = append(out, r.Name, r.Note)
		for _, x := range r.Results {
			out = append(out, x.By)
		}
	}
	var pm struct{ Plans []struct{ Name string } }
	s.getJSON("/api/v1/maintenance", &pm)
	for _, p := range pm.Plans {
		out = append(out, p.Name)
	}
	var works []struct{ Title, Reason, Area string }
	s.getJSON("/api/v1/planned-works", &works)
	for _, w := range works {
		out = append(out, w.Title, w.Reason, w.Area)
	}
	var roster struct {
		By    string `json:"updated_by"`
		Note  string
		Teams []struct{ ID, Name string }
	}
	s.getJSON("/api/v1/roster", &roster)
	out = append(out, roster.By, roster.Note)
	for _, t := range roster.Teams {
		out = append(out, t.ID, t.Name)
	}
	var handovers []struct {
		TeamName           string `json:"team_name"`
		Remarks            string
		Outgoing, Incoming *struct{ Name, Note string }
	}
	s.getJSON("/api/v1/handovers", &handovers)
	for _, h := range handovers {
		out = append(out, h.TeamName, h.Remarks)
		for _, sig := range []*struct{ Name, Note string }{h.Outgoing, h.Incoming} {
			if sig != nil {
				out = append(out, sig.Name, sig.Note)
			}
		}
	}
	var log []struct {
		Caller, Text, Author string
		AuthorName           string `json:"author_name"`
	}
	s.getJSON("/api/v1/duty-log?date=today", &log)
	for _, e := range log {
		out = append(out, e.Caller, e.Text, e.Author, e.AuthorName)
	}
	var eps []struct {
		Name     string
		Diverted []struct{ Person, To, Because string }
	}
	s.getJSON("/api/v1/alerts/endpoints", &eps)
	for _, e := range eps {
		out = append(out, e.Name)
		for _, d := range e.Diverted {
			out = append(out, d.Person, d.To, d.Because)
		}
	}
	return out
}

// consolePages are the console's further pages (web/console-<page>.html),
// each with what shows once its data is in; the duty page once per tab.
var consolePages = []struct {
	page, query string
	ready       []string
}{
	{"orders", "", []string{`#olist tr`, `#okpis .kpi`, `#oreview tr`}},
	{"duty", "tab=handover", []string{`#hoList tr`, `#hoPending div`}},
	{"duty", "tab=log", []string{`#logList tr`}},
	{"duty", "tab=roster", []string{`#schedule tr[data-team]`, `#onDuty tr`, `#rosterTeams .team`}},
	{"alerts", "", []string{`#updated:not(:empty)`}},
	{"planned", "", []string{`#works tr`}},
	{"register", "", []string{`#entries tr[data-asset]`, `#contacts tr`}},
	{"inspections", "", []string{`#rounds tr`, `#routes tr`, `#pm tr`}},
}

// Every console page is in consolePages: a new page is walked too.
func TestConsolePagesAreAllWalked(t *testing.T) {
	files, err := filepath.Glob("../dashboard/web/console-*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("no console pages: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "console-"), ".html")
		if !slices.ContainsFunc(consolePages, func(p struct {
			page, query string
			ready       []string
		}) bool {
			return p.page == name
		}) {
			t.Errorf("/console/%s is not in consolePages: the DOM walk does not visit it", name)
		}
	}
}

// checkLanguage fails when a zh screen shows a catalogue key or an English
// UI word, or an en screen shows a Chinese UI word outside the site's names.
func checkLanguage(t *testing.T, where, lang string, texts, names []string) {
	t.Helper()
	words, han := uiWords(), uiHan()
	for _, text := range texts {
		rest := text
		for _, n := range names {
			if n != "" {
				rest = strings.ReplaceAll(rest, n, " ")
			}
		}
		if lang == "zh" {
			for _, w := range wordRE.FindAllString(rest, -1) {
				if words[strings.ToLower(w)] {
					t.Errorf("%s (zh): %q shows the English UI word or key %q", where, text, w)
				}
			}
			continue
		}
		for _, h := range han {
			if strings.Contains(rest, h) {
				t.Errorf("%s (en): %q shows the Chinese UI word %q", where, text, h)
				break
			}
		}
	}
}

func (s *site) pageTexts(t *testing.T, ctx context.Context, what string) []string {
	t.Helper()
	var texts []string
	within(t, ctx, 10*time.Second, "read "+what, chromedp.Evaluate(visibleText, &texts))
	return texts
}

// The Chinese screens show no English UI and no catalogue keys, and the
// English ones no Chinese UI apart from the site's names, in every state
// of the demo: normal, entrapment, power outage, flooding; the wall and the
// console.
func TestScreensSpeakOneLanguageInChromiumIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	alloc := chromium(t)
	tab, cancel := newBrowser(alloc)
	defer cancel()
	if err := chromedp.Run(tab, emulation.SetDeviceMetricsOverride(1920, 1080, 1, false)); err != nil {
		t.Fatal(err)
	}
	within(t, tab, 20*time.Second, "console login",
		chromedp.Navigate(s.url+"/console?lang=zh"),
		chromedp.WaitVisible(`#login input[name=username]`))
	checkLanguage(t, "login", "zh", s.pageTexts(t, tab, "login page"), nil)
	within(t, tab, 20*time.Second, "console login",
		chromedp.SendKeys(`#login input[name=username]`, "wang.li"),
		chromedp.SendKeys(`#login input[name=password]`, "operator-demo"),
		chromedp.Click(`#login button[type=submit]`),
		chromedp.WaitVisible(`#app`))

	look := func(state string) {
		for _, lang := range []string{"zh", "en"} {
			within(t, tab, 20*time.Second, "wall "+state+" "+lang,
				chromedp.Navigate(s.url+"/?token=demo-wall-display-token&lang="+lang),
				chromedp.WaitVisible(`.asset[data-asset="b3-lift-2"] .val`),
				chromedp.WaitVisible(`#kpis .kpi`))
			if state != "normal" {
				within(t, tab, 10*time.Second, "incident on the wall", chromedp.WaitVisible(`#incidents .incident .due`))
			}
			if state == "entrapment" { // an unacknowledged critical alarm sounds once the browser allows audio: until then the banner says so
				within(t, tab, 10*time.Second, "the sound banner", chromedp.WaitVisible(`body[data-sound="blocked"] #sound`))
			}
			texts := s.pageTexts(t, tab, "wall")
			checkLanguage(t, "wall "+state, lang, texts, s.names()) // the site's data as it is now
			switch state {
			case "normal":
				docShot(t, tab, "wall-normal-"+lang) // docs/screenshots with UPDATE_SCREENSHOTS=1
			case "power-outage":
				docShot(t, tab, "wall-outage-"+lang)
			default:
				screenshot(t, tab, "i18n-wall-"+state+"-"+lang)
			}
			within(t, tab, 20*time.Second, "console "+state+" "+lang,
				chromedp.Navigate(s.url+"/console?lang="+lang),
				chromedp.WaitVisible(`#app`),
				chromedp.WaitReady(`#newwo select[name=priority] option`))
			if state != "normal" {
				within(t, tab, 10*time.Second, "incident on the console", chromedp.WaitVisible(`#incidents [data-incident] button`))
			}
			texts = s.pageTexts(t, tab, "console")
			checkLanguage(t, "console "+state, lang, texts, s.names())
			for _, p := range consolePages {
				where := "/console/" + p.page
				u := s.url + where + "?lang=" + lang
				if p.query != "" {
					u += "&" + p.query
					where += "?" + p.query
				}
				actions := []chromedp.Action{chromedp.Navigate(u)}
				for _, sel := range p.ready {
					actions = append(actions, chromedp.WaitVisible(sel))
				}
				within(t, tab, 20*time.Second, where+" "+state+" "+lang, actions...)
				texts := s.pageTexts(t, tab, where)
				checkLanguage(t, where+" "+state, lang, texts, s.names()) // the data as it is once the page is read
				screenshot(t, tab, "i18n-console-"+strings.ReplaceAll(p.page+"-"+p.query, "=", "-")+"-"+state+"-"+lang)
			}
		}
	}
	look("normal")
	for _, sc := range []struct{ name, target, playbook, asset string }{
		{"entrapment", "b3-lift-2", "elevator-entrapment", "b3-lift-2"},
		{"power-outage", "b3-power-panel", "power-outage", "b3-power-panel"},
		{"flooding", "b3-pump-room", "flooding", ""}, // the plan starts from whichever sensor saw the water
	} {
		if code, body := s.postJSON("/api/v1/simulator/scenarios/"+sc.name, `{"target": "`+sc.target+`"}`); code != 200 {
			t.Fatalf("%s: %d %s", sc.name, code, body)
		}
		s.waitIncident(sc.playbook, sc.asset)
		look(sc.name)
		if code, body := s.deleteScenario(sc.name); code != 200 && code != 204 {
			t.Fatalf("clearing %s: %d %s", sc.name, code, body)
		}
	}
}

func (s *site) deleteScenario(name string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, s.url+"/api/v1/simulator/scenarios/"+name, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
