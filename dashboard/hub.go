package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/dashboard/httpjson"
	"github.com/propgate/gateway/rules"
	"github.com/propgate/gateway/rules/event"
	"github.com/propgate/gateway/rules/playbook"
	"github.com/propgate/gateway/rules/workorder"
)

// Websocket messages: a snapshot on connect, then deltas, each with a type.
type (
	// Snapshot is the full state a screen starts from.
	Snapshot struct {
		Type       string                 `json:"type"` // "snapshot"
		Site       string                 `json:"site"`
		SiteName   string                 `json:"site_name"`
		OnDuty     []WallDuty             `json:"on_duty"` // 今日值班: who is on call per team (names, no contacts)
		Time       time.Time              `json:"time"`
		Assets     []AssetView            `json:"assets"`
		Alarms     []rules.Alarm          `json:"alarms"`
		Incidents  []*playbook.Incident   `json:"incidents"`
		WorkOrders []*workorder.WorkOrder `json:"workorders"`
		KPIs       *workorder.KPIs        `json:"kpis,omitempty"`
		Demo       bool                   `json:"demo,omitempty"` // a demo gateway: screens show a banner
	}
	// PointsMsg carries the latest readings since the previous one.
	PointsMsg struct {
		Type   string                   `json:"type"` // "points"
		Points []collectors.FieldChange `json:"points"`
	}
	// EventMsg is an alarm, work-order or incident change.
	EventMsg struct {
		Type string      `json:"type"` // "alarm", "workorder", "incident"
		Data event.Event `json:"data"`
	}
	// Heartbeat lets screens tell a live feed from a dead one.
	Heartbeat struct {
		Type string    `json:"type"` // "heartbeat"
		Time time.Time `json:"time"`
	}
)

// HubMetrics count what the hub did.
type HubMetrics struct {
	Clients atomic.Int64
	Sent    atomic.Uint64
	Dropped atomic.Uint64 // clients dropped for not keeping up
	Refused atomic.Uint64 // connections refused with 503: the client cap was reached
}

// Collectors exports the metrics for a Prometheus registry.
func (m *HubMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_ws_clients", Help: "Connected websocket clients."},
			func() float64 { return float64(m.Clients.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_ws_messages_sent_total", Help: "Websocket messages queued to clients."},
			func() float64 { return float64(m.Sent.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_ws_clients_dropped_total", Help: "Clients dropped for not keeping up (they resynchronise)."},
			func() float64 { return float64(m.Dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_ws_clients_refused_total", Help: "Websocket connections refused (503) at the client cap."},
			func() float64 { return float64(m.Refused.Load()) }),
	}
}

type client struct {
	send   chan []byte
	viewer bool // the wall token: incidents and work orders without what people wrote (staff)
}

// DefaultMaxClients is the websocket client cap when none is configured.
const DefaultMaxClients = 200

// Hub fans state out to websocket clients. One goroutine owns the client
// set; sends never block: a client whose queue is full is dropped (its page
// reconnects and starts again from a snapshot), so a slow or dead screen
// never slows ingest or the other screens.
type Hub struct {
	register   chan *client
	unregister chan *client
	done       chan struct{} // closed when Run returns
	admitted   atomic.Int64  // connections between admission and their end
	maxClients int64
	state      *collectors.State
	events     *event.Sub
	snapshot   func(context.Context) (*Snapshot, error)
	flushEvery time.Duration
	log        *slog.Logger
	Metrics    HubMetrics
	queue      int
}

// NewHub builds a hub over the state cache (it takes the changed fields at
// each flush) and the event bus; Run starts it.
func NewHub(state *collectors.State, events *event.Sub, snapshot func(context.Context) (*Snapshot, error), log *slog.Logger) *Hub {
	state.TrackChanges()
	return &Hub{register: make(chan *client), unregister: make(chan *client), done: make(chan struct{}), maxClients: DefaultMaxClients,
		state: state, events: events, snapshot: snapshot, flushEvery: 100 * time.Millisecond, log: log, queue: 256}
}

// LimitClients caps the connected websocket clients (n < 1: the default);
// beyond it connections are refused with 503. Call it before serving.
func (h *Hub) LimitClients(n int) {
	if n < 1 {
		n = DefaultMaxClients
	}
	h.maxClients = int64(n)
}

// admit reserves a client slot; false at the cap.
func (h *Hub) admit() bool {
	for {
		n := h.admitted.Load()
		if n >= h.maxClients {
			return false
		}
		if h.admitted.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Run owns the clients until ctx ends. Call it once.
func (h *Hub) Run(ctx context.Context) {
	defer close(h.done)
	clients := map[*client]struct{}{}
	flush := time.NewTicker(h.flushEvery)
	defer flush.Stop()
	beat := time.NewTicker(5 * time.Second)
	defer beat.Stop()
	fanoutTo := func(staff, viewer []byte) {
		for c := range clients {
			b := staff
			if c.viewer {
				b = viewer
			}
			select {
			case c.send <- b:
				h.Metrics.Sent.Add(1)
			default:
				delete(clients, c)
				close(c.send)
				h.Metrics.Dropped.Add(1)
				h.Metrics.Clients.Add(-1)
			}
		}
	}
	fanout := func(b []byte) { fanoutTo(b, b) }
	var changes []collectors.FieldChange // reused: written out before the next flush
	var eventsC <-chan event.Event
	if h.events != nil {
		eventsC = h.events.C
	}
	for {
		select {
		case <-ctx.Done():
			for c := range clients {
				close(c.send)
			}
			return
		case c := <-h.register:
			clients[c] = struct{}{}
			h.Metrics.Clients.Add(1)
		case c := <-h.unregister:
			if _, ok := clients[c]; ok {
				delete(clients, c)
				close(c.send)
				h.Metrics.Clients.Add(-1)
			}
		case ev, ok := <-eventsC:
			if !ok {
				eventsC = nil
				continue
			}
			if ev.Type == event.EventNotify || ev.Type == event.EventHandover || ev.Type == event.EventSent {
				continue // a handover (its duty log: callers' numbers) is for replication, not the screens
			}
			b, _ := json.Marshal(EventMsg{Type: string(ev.Type), Data: ev})
			fanoutTo(b, forViewer(ev, b))
		case <-flush.C:
			changes = h.state.AppendChanges(changes[:0]) // taken even with no client, so they do not pile up
			if len(changes) == 0 || len(clients) == 0 {
				continue
			}
			fanout(appendPointsMsg(make([]byte, 0, 128*len(changes)), changes)) // a fresh buffer: clients keep it
		case t := <-beat.C:
			b, _ := json.Marshal(Heartbeat{Type: "heartbeat", Time: t})
			fanout(b)
		}
	}
}

const (
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = pongWait * 9 / 10
)

// ServeWS upgrades to a websocket: a snapshot, then deltas. The client is
// registered before the snapshot is built, so every change from then on is
// queued for it and sent after the snapshot (a change the snapshot already
// holds may come again; applying it twice is harmless). Beyond the client
// cap, or once the hub has stopped, it answers 503.
func (h *Hub) ServeWS(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request) {
	if !h.admit() {
		h.Metrics.Refused.Add(1)
		w.Header().Set("Retry-After", "10")
		httpjson.Error(w, http.StatusServiceUnavailable, "大屏连接数已满 / too many screens connected; try again later")
		return
	}
	defer h.admitted.Add(-1)
	select {
	case <-h.done:
		httpjson.Error(w, http.StatusServiceUnavailable, "网关正在停止 / the gateway is stopping")
		return
	default:
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered (e.g. 403 for a foreign origin)
	}
	c := &client{send: make(chan []byte, h.queue), viewer: !staff(r)}
	select {
	case h.register <- c:
	case <-h.done:
		conn.Close()
		return
	case <-r.Context().Done():
		conn.Close()
		return
	}
	snap, err := h.snapshot(r.Context())
	if err != nil {
		h.unregisterClient(c)
		conn.Close()
		return
	}
	if c.viewer {
		snap = snap.forViewer()
	}
	b, _ := json.Marshal(snap)
	conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		h.unregisterClient(c)
		conn.Close()
		return
	}
	go h.writePump(conn, c)
	h.readPump(conn, c)
}

func (h *Hub) unregisterClient(c *client) {
	select {
	case h.unregister <- c:
	case <-h.done:
	}
}

// readPump discards what the page sends and notices when it goes away.
func (h *Hub) readPump(conn *websocket.Conn, c *client) {
	defer func() {
		h.unregisterClient(c)
		conn.Close()
	}()
	conn.SetReadLimit(4096)
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

func (h *Hub) writePump(conn *websocket.Conn, c *client) {
	ping := time.NewTicker(pingPeriod)
	defer func() {
		ping.Stop()
		conn.Close()
	}()
	for {
		select {
		case b, ok := <-c.send:
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "resync"))
				return
			}
			if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
				return
			}
		case <-ping.C:
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// forViewer is an event as the wall token sees it (staff is its encoding
// for everyone else, returned when nothing needs hiding).
func forViewer(ev event.Event, staff []byte) []byte {
	switch {
	case ev.Alarm != nil:
		a := ev.Alarm.ForViewer()
		ev.Alarm = &a
		if ev.Transition != nil {
			t := ev.Transition.ForViewer()
			ev.Transition = &t
		}
	case ev.Incident != nil:
		ev.Incident = ev.Incident.ForViewer()
	case ev.WorkOrder != nil:
		w := ev.WorkOrder.ForViewer()
		ev.WorkOrder = &w
		if ev.Change != nil {
			c := *ev.Change
			c.Note = ""
			ev.Change = &c
		}
	default:
		return staff
	}
	b, _ := json.Marshal(EventMsg{Type: string(ev.Type), Data: ev})
	return b
}

// forViewer is the snapshot as the wall token sees it.
func (s *Snapshot) forViewer() *Snapshot {
	c := *s
	c.Alarms = make([]rules.Alarm, len(s.Alarms))
	for i, a := range s.Alarms {
		c.Alarms[i] = a.ForViewer()
	}
	c.Incidents = make([]*playbook.Incident, len(s.Incidents))
	for i, in := range s.Incidents {
		c.Incidents[i] = in.ForViewer()
	}
	c.WorkOrders = make([]*workorder.WorkOrder, len(s.WorkOrders))
	for i, w := range s.WorkOrders {
		v := w.ForViewer()
		c.WorkOrders[i] = &v
	}
	return &c
}
