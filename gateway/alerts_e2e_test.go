package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

type demoMsg struct {
	Body struct {
		To     string   `json:"to"`
		Text   string   `json:"text"`
		Alerts []string `json:"alerts"`
	} `json:"body"`
}

// In the demo, the outage reaches the demo receiver as one grouped,
// bilingual message for the engineer on call, the entrapment during it at
// once; the signed link acknowledges without a login; every attempt can be
// read back through the API.
func TestOutageAlertsEndToEndIntegration(t *testing.T) {
	testenv.Integration(t)
	s := newSite(t, testenv.StartInflux(t), testenv.StartMosquitto(t))
	s.start()
	var oncall []struct{ Team, Person string }
	s.getJSON("/api/v1/oncall", &oncall)
	engineer := ""
	for _, o := range oncall {
		if o.Team == "engineering" {
			engineer = o.Person
		}
	}
	if engineer == "" {
		t.Fatalf("nobody on call for engineering: %+v", oncall)
	}
	s.postJSON("/api/v1/simulator/scenarios/power-outage", "")
	var alertMsgs []demoMsg
	s.waitFor("grouped outage message", 30*time.Second, func() bool {
		var all []demoMsg
		s.getJSON("/demo/receiver", &all)
		alertMsgs = nil
		for _, m := range all {
			if m.Body.To == engineer && len(m.Body.Alerts) > 0 {
				alertMsgs = append(alertMsgs, m)
			}
		}
		return len(alertMsgs) >= 2
	})
	s.waitTicks("gateway_alert_ticks_total", 3) // three more passes of grouping and escalation: nothing more for the same outage
	var all []demoMsg
	s.getJSON("/demo/receiver", &all)
	var grouped, entrapment []demoMsg
	for _, m := range all {
		if m.Body.To != engineer || len(m.Body.Alerts) == 0 {
			continue
		}
		if strings.HasPrefix(m.Body.Alerts[0], "elevator-entrapment:") {
			entrapment = append(entrapment, m)
		} else {
			grouped = append(grouped, m)
		}
	}
	if len(entrapment) != 1 || len(grouped) != 1 {
		t.Fatalf("%s got %d entrapment and %d outage messages, want 1 and 1", engineer, len(entrapment), len(grouped))
	}
	g := grouped[0].Body
	// Both panels' supply loss and the trapped car's alarm button: one message.
	if !strings.HasPrefix(g.Text, "【报警汇总】3 条报警") || !strings.Contains(g.Text, "[3 ALARMS]") || !strings.Contains(g.Text, "【高】电梯警铃按下") ||
		!strings.Contains(g.Text, "【紧急】市电进线失电 — 3号楼") || !strings.Contains(g.Text, "Elevator alarm button pressed") ||
		!strings.Contains(g.Text, "Incoming supply lost — 3号楼") || !strings.Contains(g.Text, "Incoming supply lost — 5号楼") {
		t.Fatalf("grouped message:\n%s", g.Text)
	}
	e := entrapment[0].Body
	if !strings.HasPrefix(e.Text, "【紧急·报警】电梯困人\n位置：3号楼") || !strings.Contains(e.Text, "[CRITICAL ALARM] Passengers trapped in elevator") {
		t.Fatalf("entrapment message:\n%s", e.Text)
	}
	link := regexp.MustCompile(`(http\S+/m/a/\S+)`).FindString(e.Text) // the phone page
	resp, err := http.Get(link)                                        // a chat preview or the phone opening it: no session, nothing acknowledged yet
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ack link %s: %v %v", link, resp.Status, err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `<form method="post"`) {
		t.Fatalf("the link's page has no confirmation form:\n%s", page)
	}
	if a := s.alarm("elevator-entrapment:b3-lift-1"); a.State != "unacknowledged" {
		t.Fatalf("opening the link acknowledged it: %s", a.State)
	}
	u, _ := url.Parse(link)
	form := u.Query()
	form.Set("act", "ack") // the page's button
	tampered := u.Query()
	tampered.Set("act", "ack")
	tampered.Set("sig", "00"+tampered.Get("sig"))
	// The page's form posts to the link itself (the signed parameters in
	// the query, checked before the body is read), with act=ack.
	if resp, err := http.PostForm(s.url+u.Path+"?"+tampered.Encode(), nil); err != nil || resp.StatusCode != 403 {
		t.Fatalf("tampered link answered %v %v", resp.StatusCode, err)
	}
	if resp, err := http.PostForm(s.url+u.Path+"?"+form.Encode(), nil); err != nil || resp.StatusCode != 200 { // 303 back to the page
		t.Fatalf("confirming from the page: %v %v", resp.StatusCode, err)
	}
	if a := s.alarm("elevator-entrapment:b3-lift-1"); a.State != "acknowledged" {
		t.Fatalf("after confirming: %s", a.State)
	}
	if resp, err := http.PostForm(s.url+u.Path+"?"+form.Encode(), nil); err != nil || resp.StatusCode != 409 {
		t.Fatalf("the link used twice: %v %v", resp.StatusCode, err)
	}
	var attempts []struct {
		Kind, Person, Channel, Result string
		Alarms                        []string
	}
	s.getJSON("/api/v1/notifications", &attempts)
	sentTo := map[string]int{}
	for _, a := range attempts {
		if a.Result == "sent" && a.Channel == "demo" {
			sentTo[a.Person]++
		}
	}
	if sentTo[engineer] < 2 {
		b, _ := json.Marshal(attempts)
		t.Fatalf("attempts for %s: %s", engineer, b)
	}
	// The demo's channel is one budgeted endpoint, by its configured name.
	var eps []struct {
		Name, Type, State string
		Counts            map[string]int
	}
	s.getJSON("/api/v1/alerts/endpoints", &eps)
	if len(eps) != 1 || eps[0].Name != "demo-receiver" || eps[0].Type != "webhook" || eps[0].State != "ok" || eps[0].Counts["sent"] < 2 {
		t.Fatalf("endpoints %+v", eps)
	}
	s.stop(syscall.SIGTERM)
}
