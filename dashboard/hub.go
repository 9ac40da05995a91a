package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/propgate/gateway/collectors"
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
		Time       time.Time              `json:"time"`
		Assets     []AssetView            `json:"assets"`
		Alarms     []rules.Alarm          `json:"alarms"`
		Incidents  []*playbook.Incident   `json:"incidents"`
		WorkOrders []*workorder.WorkOrder `json:"workorders"`
		KPIs       *workorder.KPIs        `json:"kpis,omitempty"`
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
}

type client struct {
	send chan []byte
	role Role
}

// Hub fans state out to websocket clients. One goroutine owns the client
// set; sends never block: a client whose queue is full is dropped (its page
// reconnects and starts again from a snapshot), so a slow or dead screen
// never slows ingest or the other screens.
type Hub struct {
	register   chan *client
	unregister chan *client
	broadcast  chan []byte
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
	return &Hub{register: make(chan *client), unregister: make(chan *client), broadcast: make(chan []byte, 256),
		state: state, events: events, snapshot: snapshot, flushEvery: 100 * time.Millisecond, log: log, queue: 256}
}

// Run owns the clients until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	clients := map[*client]struct{}{}
	flush := time.NewTicker(h.flushEvery)
	defer flush.Stop()
	beat := time.NewTicker(5 * time.Second)
	defer beat.Stop()
	fanout := func(b []byte) {
		for c := range clients {
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
			if ev.Type == event.EventNotify {
				continue
			}
			b, _ := json.Marshal(EventMsg{Type: string(ev.Type), Data: ev})
			fanout(b)
		case b := <-h.broadcast:
			fanout(b)
		case <-flush.C:
			changes := h.state.Changes() // taken even with no client, so they do not pile up
			if len(changes) == 0 || len(clients) == 0 {
				continue
			}
			b, _ := json.Marshal(PointsMsg{Type: "points", Points: changes})
			fanout(b)
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

// ServeWS upgrades to a websocket: a snapshot, then deltas.
func (h *Hub) ServeWS(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request, role Role) {
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered (e.g. 403 for a foreign origin)
	}
	c := &client{send: make(chan []byte, h.queue), role: role}
	snap, err := h.snapshot(r.Context())
	if err != nil {
		conn.Close()
		return
	}
	b, _ := json.Marshal(snap)
	conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		conn.Close()
		return
	}
	h.register <- c
	go h.writePump(conn, c)
	h.readPump(conn, c)
}

// readPump discards what the page sends and notices when it goes away.
func (h *Hub) readPump(conn *websocket.Conn, c *client) {
	defer func() {
		select {
		case h.unregister <- c:
		case <-time.After(time.Second):
		}
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
