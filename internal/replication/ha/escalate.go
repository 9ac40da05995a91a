package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/propgate/gateway/internal/i18n"
	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/store/postgres"
)

// Escalation is the payload of a center escalation: a site's alarm nobody
// acknowledged within ha.escalate.after.
type Escalation struct {
	Site     string    `json:"site"`
	Alarm    string    `json:"alarm"`
	Name     string    `json:"name,omitempty"`
	NameZH   string    `json:"name_zh,omitempty"`
	Priority string    `json:"priority"`
	Since    time.Time `json:"since"`
	Value    string    `json:"value,omitempty"`
	Minutes  int       `json:"minutes"` // unacknowledged for, when escalated
	Text     string    `json:"text"`    // Chinese first
	TextEN   string    `json:"text_en"`
}

// escalateLoop records an escalation for each overdue alarm (once per
// occurrence: the key is site, alarm and since) and wakes the sender.
func (in *Instance) escalateLoop(ctx context.Context) {
	e := in.cfg.Escalate
	every(ctx, e.Every, nil, func() {
		now := in.d.Now()
		due, err := in.d.Store.OverdueAlarms(ctx, e.Priorities, now.Add(-e.After), 500)
		if err != nil {
			if ctx.Err() == nil {
				in.d.Log.Warn("center: looking for overdue alarms", "err", err)
			}
			return
		}
		for _, o := range due {
			n, err := escalation(o, now, in.d.Loc)
			if err != nil {
				in.d.Log.Warn("center: escalation not recorded", "site", o.Site, "alarm", o.Key, "err", err)
				continue
			}
			ok, err := in.d.Store.Enqueue(ctx, n)
			if err != nil {
				if ctx.Err() == nil {
					in.d.Log.Warn("center: recording an escalation", "err", err)
				}
				return
			}
			if ok {
				in.metrics.escalated()
			}
		}
		if len(due) > 0 {
			select {
			case in.kick <- struct{}{}:
			default:
			}
		}
	})
}

func escalation(o postgres.Overdue, now time.Time, loc *time.Location) (replication.Notification, error) {
	var a struct {
		Name   string `json:"name"`
		NameZH string `json:"name_zh"`
		Value  string `json:"value"`
	}
	_ = json.Unmarshal(o.Doc, &a) // the record came through Decode; a field it lacks stays empty
	min := int(now.Sub(o.Since) / time.Minute)
	p := Escalation{Site: o.Site, Alarm: o.Key, Name: a.Name, NameZH: a.NameZH, Priority: o.Priority, Since: o.Since, Value: a.Value, Minutes: min}
	name := func(lang i18n.Lang) string {
		if s := i18n.Pick(lang, a.NameZH, a.Name); s != "" {
			return s
		}
		return o.Key
	}
	text := func(lang i18n.Lang) string {
		return fmt.Sprintf("【%s】%s · %s（%s）%s %s，%s", i18n.T(lang, "msg.kind.escalation"), o.Site, name(lang), i18n.T(lang, "priority."+o.Priority),
			i18n.T(lang, "msg.since"), o.Since.In(loc).Format("01-02 15:04"), i18n.Tf(lang, "msg.center_unacked", min))
	}
	p.Text, p.TextEN = text(i18n.ZH), text(i18n.EN)
	b, err := json.Marshal(p)
	if err != nil {
		return replication.Notification{}, err
	}
	return replication.Notification{Key: o.Escalation, Site: o.Site, Kind: "escalation", Created: now, Payload: b}, nil
}

// dispatchLoop sends what is recorded, claimed through the leader's lock
// connection: a claim succeeds only while this instance holds the lock.
// A notification whose sender died mid-send is sent again once its claim
// is older than stale (longer than a send may take), with its attempt
// number: the receiver can tell, and drops a copy by the key.
func (in *Instance) dispatchLoop(ctx context.Context, t postgres.Term) {
	e := in.cfg.Escalate
	stale := e.SendTimeout + in.session.Grace() + time.Second
	every(ctx, in.cfg.Every, in.kick, func() {
		for ctx.Err() == nil {
			batch, err := in.d.Store.Claim(ctx, in.session, t.Epoch, in.clientID, claimBatch, stale, in.d.Now())
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, postgres.ErrEpochOver) {
					in.d.Log.Warn("center: claiming notifications", "err", err)
				}
				return
			}
			if len(batch) == 0 {
				return
			}
			for _, n := range batch {
				in.send(ctx, n)
			}
		}
	})
}

func (in *Instance) send(ctx context.Context, n replication.Notification) {
	timeout := in.cfg.Escalate.SendTimeout
	sctx, cancel := context.WithTimeout(ctx, timeout)
	err := in.d.Sender.Send(sctx, n)
	cancel()
	// The outcome is a fact: recorded even if leadership ended meanwhile.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if err == nil {
		in.metrics.notification("sent")
		if err := in.d.Store.Sent(rctx, n.Key, in.d.Now()); err != nil {
			in.d.Log.Warn("center: recording a sent notification", "key", n.Key, "err", err)
		}
		return
	}
	result := "retry"
	if n.Attempt >= maxAttempts {
		result = "failed"
	}
	in.metrics.notification(result)
	in.d.Log.Warn("center: notification not delivered", "key", n.Key, "attempt", n.Attempt, "err", err)
	retry := in.d.Now().Add(min(time.Duration(n.Attempt)*10*time.Second, 5*time.Minute))
	if err := in.d.Store.Failed(rctx, n.Key, err.Error(), retry, maxAttempts); err != nil {
		in.d.Log.Warn("center: recording a failed notification", "key", n.Key, "err", err)
	}
}

// Webhook posts each notification as JSON to a URL, with the headers
// Idempotency-Key (the notification's key) and X-Attempt.
type Webhook struct {
	URL    string
	Client *http.Client
}

// Send implements Sender; a 2xx answer is delivery. Errors never carry
// the URL (it may hold a token).
func (w Webhook) Send(ctx context.Context, n replication.Notification) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return errors.New("webhook: the URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", n.Key)
	req.Header.Set("X-Attempt", strconv.Itoa(n.Attempt))
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: answered %s", resp.Status)
	}
	return nil
}
