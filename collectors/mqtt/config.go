package mqtt

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Format is how a payload is encoded.
type Format string

// Payload formats.
const (
	FormatJSON  Format = "json"  // an object; fields picked by path
	FormatValue Format = "value" // the whole payload is one value
)

// ValueType is the type a field is stored as.
type ValueType string

// Field types.
const (
	TypeFloat  ValueType = "float"
	TypeInt    ValueType = "int"
	TypeBool   ValueType = "bool"
	TypeString ValueType = "string"
)

// TimeFormat is how a payload timestamp is written.
type TimeFormat string

// Timestamp formats.
const (
	TimeUnix    TimeFormat = "unix" // seconds, possibly fractional
	TimeUnixMs  TimeFormat = "unix_ms"
	TimeUnixUs  TimeFormat = "unix_us"
	TimeUnixNs  TimeFormat = "unix_ns"
	TimeRFC3339 TimeFormat = "rfc3339"
)

// Field picks one value out of a payload.
type Field struct {
	Name        string    `yaml:"name"` // may use {segment} placeholders
	Path        string    `yaml:"path"` // dotted JSON path (a.b.0.c); ignored for value payloads
	Type        ValueType `yaml:"type"`
	Unit        string    `yaml:"unit"`
	TrueValues  []string  `yaml:"true_values"`  // bool: extra words meaning true
	FalseValues []string  `yaml:"false_values"` // bool: extra words meaning false
	Optional    bool      `yaml:"optional"`     // a missing path is not an error
}

// Timestamp says where a payload carries its reading time.
type Timestamp struct {
	Path   string     `yaml:"path"`
	Format TimeFormat `yaml:"format"`
}

// Subscription maps a topic pattern onto assets and fields.
type Subscription struct {
	// Topic is an MQTT filter whose segments may be named: {name} matches one
	// level like + and captures it, # matches the rest.
	Topic     string     `yaml:"topic"`
	Asset     string     `yaml:"asset"` // asset id, may use {name} placeholders
	Format    Format     `yaml:"format"`
	Fields    []Field    `yaml:"fields"`
	Timestamp *Timestamp `yaml:"timestamp"`
	// MaxAssets bounds the distinct asset ids an {asset} template creates;
	// MaxFieldsPerAsset the distinct field names {placeholder} field names
	// create per asset. New names beyond them are refused and counted.
	MaxAssets         int `yaml:"max_assets"`
	MaxFieldsPerAsset int `yaml:"max_fields_per_asset"`

	pat       pattern
	extract   *extractor
	fieldPath []int // path id per field
	tsPath    int
	scratch   []collectors.Point // the collector's reusable points buffer
}

// Availability is a device's online/offline topic (often its last will).
type Availability struct {
	Topic   string `yaml:"topic"`
	Asset   string `yaml:"asset"`
	Online  string `yaml:"online"`  // payload meaning online; default "online"
	Offline string `yaml:"offline"` // default "offline"

	pat pattern
}

// Config is the mqtt: section.
type Config struct {
	Broker       string        `yaml:"broker"` // tcp://host:1883, ssl://host:8883, ws://
	ClientID     string        `yaml:"client_id"`
	Username     string        `yaml:"username"`
	Password     string        `yaml:"password"`
	QoS          int           `yaml:"qos"`
	CleanSession bool          `yaml:"clean_session"` // default false: the broker keeps our queue while we are away
	KeepAlive    time.Duration `yaml:"keep_alive"`
	MaxReconnect time.Duration `yaml:"max_reconnect_interval"`
	AckBatch     int           `yaml:"ack_batch"` // messages made durable per flush before PUBACK; keep below the broker's inflight window
	// AckInterval is how often stragglers that did not fill an ack batch are
	// flushed and acknowledged; also the first retry delay after a failed flush.
	AckInterval time.Duration `yaml:"ack_interval"`
	// FlushRetryMax caps the backoff between retries of a failed flush.
	FlushRetryMax time.Duration  `yaml:"flush_retry_max"`
	StatusTopic   string         `yaml:"status_topic"`
	Subs          []Subscription `yaml:"subscriptions"`
	Availability  []Availability `yaml:"availability"`
}

var ferr = cfgerr.Errorf

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.QoS == 0 {
		c.QoS = 1
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.MaxReconnect == 0 {
		c.MaxReconnect = 30 * time.Second
	}
	if c.AckBatch == 0 {
		c.AckBatch = 16
	}
	if c.AckInterval == 0 {
		c.AckInterval = 20 * time.Millisecond
	}
	if c.FlushRetryMax == 0 {
		c.FlushRetryMax = 5 * time.Second
	}
	for i := range c.Subs {
		s := &c.Subs[i]
		if s.Format == "" {
			s.Format = FormatJSON
		}
		if s.MaxAssets == 0 {
			s.MaxAssets = DefaultMaxAssets
		}
		if s.MaxFieldsPerAsset == 0 {
			s.MaxFieldsPerAsset = DefaultMaxFieldsPerAsset
		}
		for j := range s.Fields {
			if s.Fields[j].Type == "" {
				s.Fields[j].Type = TypeFloat
			}
		}
		if s.Timestamp != nil && s.Timestamp.Format == "" {
			s.Timestamp.Format = TimeUnixMs
		}
	}
	for i := range c.Availability {
		a := &c.Availability[i]
		if a.Online == "" {
			a.Online = "online"
		}
		if a.Offline == "" {
			a.Offline = "offline"
		}
	}
}

// compileTopic turns "site/{building}/+/#" into the filter "site/+/+/#" and
// the capture names per level.
func compileTopic(topic string) (pattern, error) {
	filter, names, err := compileLevels(topic)
	if err != nil {
		return pattern{}, err
	}
	return pattern{filter: filter, levels: strings.Split(filter, "/"), names: names}, nil
}

func compileLevels(topic string) (filter string, names []string, err error) {
	if topic == "" {
		return "", nil, fmt.Errorf("is required")
	}
	levels := strings.Split(topic, "/")
	out := make([]string, len(levels))
	names = make([]string, len(levels))
	for i, l := range levels {
		switch {
		case l == "#":
			if i != len(levels)-1 {
				return "", nil, fmt.Errorf("%q: # must be the last level", topic)
			}
			out[i] = "#"
		case strings.HasPrefix(l, "{") && strings.HasSuffix(l, "}"):
			name := l[1 : len(l)-1]
			if name == "" || strings.ContainsAny(name, "{}/+#") {
				return "", nil, fmt.Errorf("%q: bad level name %q", topic, l)
			}
			out[i], names[i] = "+", name
		case strings.ContainsAny(l, "+#{}") && l != "+":
			return "", nil, fmt.Errorf("%q: level %q mixes text and wildcards; fix: a level is literal, +, #, or {name}", topic, l)
		default:
			out[i] = l
		}
	}
	return strings.Join(out, "/"), names, nil
}

func checkTemplate(tmpl string, names []string) error {
	have := map[string]bool{}
	for _, n := range names {
		if n != "" {
			have[n] = true
		}
	}
	for rest := tmpl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("%q has an unclosed {", tmpl)
		}
		if name := rest[i+1 : i+j]; !have[name] {
			return fmt.Errorf("%q uses {%s}, which the topic does not capture", tmpl, name)
		}
		rest = rest[i+j+1:]
	}
}

// Validate checks the section without touching the network.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Broker)
	if c.Broker == "" || err != nil || u.Host == "" {
		return ferr("broker", "%q is not a broker URL; fix: e.g. tcp://127.0.0.1:1883", c.Broker)
	}
	switch u.Scheme {
	case "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss":
	default:
		return ferr("broker", "scheme %q is not supported; fix: tcp://, ssl://, ws:// or wss://", u.Scheme)
	}
	if c.ClientID == "" && !c.CleanSession {
		return ferr("client_id", "is required for a persistent session (the broker keeps messages for this id); fix: e.g. gateway-<site>")
	}
	if c.QoS < 0 || c.QoS > 2 {
		return ferr("qos", "%d is not 0, 1 or 2", c.QoS)
	}
	if c.AckBatch < 1 {
		return ferr("ack_batch", "must be at least 1")
	}
	if c.AckInterval < 0 {
		return ferr("ack_interval", "%s is negative", c.AckInterval)
	}
	if c.FlushRetryMax != 0 && c.FlushRetryMax < c.AckInterval {
		return ferr("flush_retry_max", "%s is shorter than ack_interval %s", c.FlushRetryMax, c.AckInterval)
	}
	for i := range c.Subs {
		s := &c.Subs[i]
		p := fmt.Sprintf("subscriptions[%d]", i)
		if s.pat, err = compileTopic(s.Topic); err != nil {
			return ferr(p+".topic", "%v", err)
		}
		if s.Asset == "" {
			return ferr(p+".asset", "is required; fix: an asset id, or a template such as {asset}")
		}
		if err := checkTemplate(s.Asset, s.pat.names); err != nil {
			return ferr(p+".asset", "%v", err)
		}
		if s.MaxAssets < 0 {
			return ferr(p+".max_assets", "%d is negative; fix: leave it out for %d", s.MaxAssets, DefaultMaxAssets)
		}
		if s.MaxFieldsPerAsset < 0 {
			return ferr(p+".max_fields_per_asset", "%d is negative; fix: leave it out for %d", s.MaxFieldsPerAsset, DefaultMaxFieldsPerAsset)
		}
		if s.Format != FormatJSON && s.Format != FormatValue {
			return ferr(p+".format", "%q is not a format; fix: json or value", s.Format)
		}
		if len(s.Fields) == 0 {
			return ferr(p+".fields", "at least one field is required")
		}
		if s.Format == FormatValue && len(s.Fields) != 1 {
			return ferr(p+".fields", "a value payload holds exactly one field, not %d", len(s.Fields))
		}
		for j, f := range s.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", p, j)
			if f.Name == "" {
				return ferr(fp+".name", "is required")
			}
			if err := checkTemplate(f.Name, s.pat.names); err != nil {
				return ferr(fp+".name", "%v", err)
			}
			if s.Format == FormatJSON && f.Path == "" {
				return ferr(fp+".path", "is required for json payloads; fix: e.g. state or sensor.level")
			}
			switch f.Type {
			case TypeFloat, TypeInt, TypeBool, TypeString:
			default:
				return ferr(fp+".type", "%q is not a type; fix: float, int, bool or string", f.Type)
			}
			if (len(f.TrueValues) > 0 || len(f.FalseValues) > 0) && f.Type != TypeBool {
				return ferr(fp, "true_values/false_values apply to bool fields only")
			}
		}
		var paths []string
		for _, f := range s.Fields {
			paths = append(paths, f.Path)
		}
		if s.Timestamp != nil {
			paths = append(paths, s.Timestamp.Path)
		}
		var ids map[string]int
		s.extract, ids = newExtractor(paths)
		s.fieldPath = s.fieldPath[:0]
		for _, f := range s.Fields {
			s.fieldPath = append(s.fieldPath, ids[f.Path])
		}
		if s.Timestamp != nil {
			s.tsPath = ids[s.Timestamp.Path]
		}
		if s.Timestamp != nil {
			if s.Format != FormatJSON || s.Timestamp.Path == "" {
				return ferr(p+".timestamp.path", "a payload timestamp needs a json payload and a path")
			}
			switch s.Timestamp.Format {
			case TimeUnix, TimeUnixMs, TimeUnixUs, TimeUnixNs, TimeRFC3339:
			default:
				return ferr(p+".timestamp.format", "%q is not a format; fix: unix, unix_ms, unix_us, unix_ns or rfc3339", s.Timestamp.Format)
			}
		}
	}
	for i := range c.Availability {
		a := &c.Availability[i]
		p := fmt.Sprintf("availability[%d]", i)
		if a.pat, err = compileTopic(a.Topic); err != nil {
			return ferr(p+".topic", "%v", err)
		}
		if a.Asset == "" {
			return ferr(p+".asset", "is required")
		}
		if err := checkTemplate(a.Asset, a.pat.names); err != nil {
			return ferr(p+".asset", "%v", err)
		}
	}
	return nil
}
