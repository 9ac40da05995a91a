package mqtt

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Message is the part of an MQTT message the collector uses.
type Message interface {
	Topic() string
	Payload() []byte
	Qos() byte
	Ack()
}

// Handler receives messages for one filter, in order.
type Handler func(Message)

// ConnOptions is what a Conn needs to know before it connects.
type ConnOptions struct {
	Config    *Config
	Routes    map[string]Handler // filter → handler, registered before connecting
	OnConnect func()             // after every (re)connect: subscribe here
	OnLost    func(error)
}

// Conn is the part of an MQTT client the collector uses. Connect must not
// block on the network: it connects and reconnects in the background.
type Conn interface {
	Connect()
	Subscribe(filters map[string]byte) error
	Publish(topic string, qos byte, retained bool, payload string) error
	Disconnect()
}

// Factory builds a Conn; tests may swap it.
type Factory func(ConnOptions) Conn

// PahoFactory builds connections on github.com/eclipse/paho.mqtt.golang.
func PahoFactory(o ConnOptions) Conn {
	c := o.Config
	opts := paho.NewClientOptions().
		AddBroker(c.Broker).
		SetClientID(c.ClientID).
		SetUsername(c.Username).
		SetPassword(c.Password).
		SetCleanSession(c.CleanSession).
		SetKeepAlive(c.KeepAlive).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(c.MaxReconnect).
		SetOrderMatters(true).
		SetAutoAckDisabled(true). // PUBACK once the points are on disk
		SetOnConnectHandler(func(paho.Client) { o.OnConnect() }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { o.OnLost(err) })
	if u, err := url.Parse(c.Broker); err == nil && u.Scheme != "ws" && u.Scheme != "wss" {
		opts.SetCustomOpenConnectionFn(openBuffered)
	}
	if c.StatusTopic != "" {
		opts.SetWill(c.StatusTopic, "offline", 1, true)
	}
	// paho's store only lives in memory, so it cannot carry anything across a
	// restart; the broker's persistent session does that. Keeping inbound
	// QoS 1 messages and outbound PUBACKs in it costs a lock and a map write
	// per message for nothing: the broker redelivers what we did not ack.
	opts.SetStore(discardStore{})
	// One default handler dispatches by our own allocation-free filter
	// match: paho's router splits the topic and every route's filter into
	// new slices for every message.
	type route struct {
		filter string
		h      Handler
	}
	routes := make([]route, 0, len(o.Routes))
	for filter, h := range o.Routes {
		routes = append(routes, route{filter, h})
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].filter < routes[j].filter })
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		topic := m.Topic()
		for _, r := range routes {
			if filterMatches(r.filter, topic) {
				r.h(m)
			}
		}
	})
	return &pahoConn{c: paho.NewClient(opts)}
}

type pahoConn struct{ c paho.Client }

func (p *pahoConn) Connect() { p.c.Connect() }

func (p *pahoConn) Subscribe(filters map[string]byte) error {
	// Handlers are the routes added at construction; nil keeps them.
	t := p.c.SubscribeMultiple(filters, nil)
	if !t.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("mqtt: subscribe timed out")
	}
	return t.Error()
}

func (p *pahoConn) Publish(topic string, qos byte, retained bool, payload string) error {
	t := p.c.Publish(topic, qos, retained, payload)
	if !t.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("mqtt: publish to %s timed out", topic)
	}
	return t.Error()
}

func (p *pahoConn) Disconnect() { p.c.Disconnect(500) }

// discardStore is a paho.Store that keeps nothing.
type discardStore struct{}

func (discardStore) Open()                             {}
func (discardStore) Put(string, packets.ControlPacket) {}
func (discardStore) Get(string) packets.ControlPacket  { return nil }
func (discardStore) All() []string                     { return nil }
func (discardStore) Del(string)                        {}
func (discardStore) Close()                            {}
func (discardStore) Reset()                            {}

// filterMatches reports whether an MQTT topic filter (+, # wildcards)
// matches a topic, without allocating. Wildcards at the first level do not
// match topics starting with $ (MQTT 3.1.1, 4.7.2).
func filterMatches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		var f, t string
		var fmore, tmore bool
		f, filter, fmore = strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, topic, tmore = strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" (the parent level).
			return fmore == tmore || (fmore && filter == "#")
		}
	}
}
