package modbus

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/propgate/gateway/internal/cfgerr"
)

// Table is one of the four Modbus data tables.
type Table string

// The Modbus tables.
const (
	Coil            Table = "coil"
	DiscreteInput   Table = "discrete_input"
	InputRegister   Table = "input_register"
	HoldingRegister Table = "holding_register"
)

func (t Table) bits() bool { return t == Coil || t == DiscreteInput }

// DataType is how register contents are interpreted.
type DataType string

// Data types.
const (
	TypeBool    DataType = "bool"
	TypeInt16   DataType = "int16"
	TypeUint16  DataType = "uint16"
	TypeInt32   DataType = "int32"
	TypeUint32  DataType = "uint32"
	TypeInt64   DataType = "int64"
	TypeUint64  DataType = "uint64"
	TypeFloat32 DataType = "float32"
	TypeFloat64 DataType = "float64"
	TypeString  DataType = "string"
)

// registers is how many 16-bit registers the type spans (0 for strings,
// whose length is configured).
func (d DataType) registers() int {
	switch d {
	case TypeBool, TypeInt16, TypeUint16:
		return 1
	case TypeInt32, TypeUint32, TypeFloat32:
		return 2
	case TypeInt64, TypeUint64, TypeFloat64:
		return 4
	}
	return 0
}

// Order is the byte and word order of multi-byte values, named after how
// the bytes of 0xAABBCCDD arrive: ABCD big-endian, CDAB word-swapped, BADC
// byte-swapped, DCBA little-endian. For 64-bit values the same swaps apply
// to all four words.
type Order string

// Byte orders.
const (
	ABCD Order = "ABCD"
	CDAB Order = "CDAB"
	BADC Order = "BADC"
	DCBA Order = "DCBA"
)

func (o Order) swaps() (words, bytes bool) {
	switch o {
	case CDAB:
		return true, false
	case BADC:
		return false, true
	case DCBA:
		return true, true
	}
	return false, false
}

// Sentinel is a raw value that means "no reading" (e.g. 0xFFFF, 0x8000) or NaN.
type Sentinel struct {
	Raw uint64
	NaN bool
}

// UnmarshalYAML accepts an integer (decimal, 0x hex, negative for signed
// types) or "NaN".
func (s *Sentinel) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if strings.EqualFold(v, "nan") || strings.EqualFold(v, ".nan") {
		*s = Sentinel{NaN: true}
		return nil
	}
	if u, err := strconv.ParseUint(v, 0, 64); err == nil {
		*s = Sentinel{Raw: u}
		return nil
	}
	if i, err := strconv.ParseInt(v, 0, 64); err == nil {
		*s = Sentinel{Raw: uint64(i)}
		return nil
	}
	return fmt.Errorf("line %d: sentinel %q is not a number or NaN; fix: e.g. 0xFFFF, -32768 or NaN", n.Line, v)
}

// Register maps one field of an asset onto device memory.
type Register struct {
	Name      string     `yaml:"name"`
	Table     Table      `yaml:"table"`
	Address   int        `yaml:"address"`
	Type      DataType   `yaml:"type"`
	Bit       *int       `yaml:"bit"`    // bool taken from one bit (0..15) of a register
	Length    int        `yaml:"length"` // registers, for strings
	Order     Order      `yaml:"order"`
	Scale     float64    `yaml:"scale"`
	Offset    float64    `yaml:"offset"`
	Unit      string     `yaml:"unit"`
	Sentinels []Sentinel `yaml:"sentinels"`
	Writable  bool       `yaml:"writable"`
}

// width is how many addresses the register occupies in its table.
func (r *Register) width() int {
	if r.Table.bits() {
		return 1
	}
	if r.Type == TypeString {
		return r.Length
	}
	return r.Type.registers()
}

// rawLen is the byte length Decode expects for r: one byte for a coil or
// discrete input (0 or 1), two per register otherwise.
func (r *Register) rawLen() int {
	if r.Table.bits() {
		return 1
	}
	return 2 * r.width()
}

func (r *Register) scaled() bool { return r.Scale != 1 || r.Offset != 0 }

// Template is a register map written once per device model.
type Template struct {
	Registers []Register `yaml:"registers"`
}

// Transport is how a device is reached.
type Transport string

// Transports.
const (
	TCP        Transport = "tcp"          // Modbus TCP (MBAP)
	RTUOverTCP Transport = "rtu_over_tcp" // RTU frames through a serial device server
	RTU        Transport = "rtu"          // serial RTU on a local port
)

// Serial configures an RS-485/RS-232 port.
type Serial struct {
	Port     string `yaml:"port"`
	BaudRate int    `yaml:"baud_rate"`
	DataBits int    `yaml:"data_bits"`
	Parity   string `yaml:"parity"` // N, E or O
	StopBits int    `yaml:"stop_bits"`
}

// Device is one Modbus slave bound to one asset.
type Device struct {
	Asset         string        `yaml:"asset"`
	Transport     Transport     `yaml:"transport"`
	Address       string        `yaml:"address"` // host:port for tcp and rtu_over_tcp
	Serial        Serial        `yaml:"serial"`
	UnitID        int           `yaml:"unit_id"`
	PollInterval  time.Duration `yaml:"poll_interval"`
	Timeout       time.Duration `yaml:"timeout"`
	Template      string        `yaml:"template"`
	Registers     []Register    `yaml:"registers"`
	MaxGap        int           `yaml:"max_gap"`         // addresses skipped to merge two reads; default 10
	CommLostAfter int           `yaml:"comm_lost_after"` // failed polls before comm_lost; default 3
	MaxBackoff    time.Duration `yaml:"max_backoff"`     // cap on retry spacing for a failing device; default 30s

	regs []Register // template + own registers, after defaults
}

// Config is the modbus: section.
type Config struct {
	Templates map[string]Template `yaml:"templates"`
	Devices   []Device            `yaml:"devices"`
}

// LinkKey identifies the physical link a device sits on: devices sharing it
// are polled one request at a time.
func (d *Device) LinkKey() string {
	if d.Transport == RTU {
		return "serial:" + d.Serial.Port
	}
	return string(d.Transport) + ":" + d.Address
}

var ferr = cfgerr.Errorf

// SetDefaults fills unset values and resolves templates; it must run before Validate.
func (c *Config) SetDefaults() {
	for name, t := range c.Templates {
		for i := range t.Registers {
			setRegDefaults(&t.Registers[i])
		}
		c.Templates[name] = t
	}
	for i := range c.Devices {
		d := &c.Devices[i]
		if d.Transport == "" {
			d.Transport = TCP
		}
		if d.UnitID == 0 && d.Transport == TCP {
			d.UnitID = 1
		}
		if d.PollInterval == 0 {
			d.PollInterval = time.Second
		}
		if d.Timeout == 0 {
			d.Timeout = time.Second
		}
		if d.MaxGap == 0 {
			d.MaxGap = 10
		}
		if d.CommLostAfter == 0 {
			d.CommLostAfter = 3
		}
		if d.MaxBackoff == 0 {
			d.MaxBackoff = 30 * time.Second
		}
		if d.Transport == RTU {
			s := &d.Serial
			if s.BaudRate == 0 {
				s.BaudRate = 9600
			}
			if s.DataBits == 0 {
				s.DataBits = 8
			}
			if s.Parity == "" {
				s.Parity = "N"
			}
			if s.StopBits == 0 {
				s.StopBits = 1
			}
		}
		for j := range d.Registers {
			setRegDefaults(&d.Registers[j])
		}
		d.regs = nil
		if t, ok := c.Templates[d.Template]; ok {
			d.regs = append(d.regs, t.Registers...)
		}
		d.regs = append(d.regs, d.Registers...)
	}
}

func setRegDefaults(r *Register) {
	if r.Table == "" {
		r.Table = HoldingRegister
	}
	if r.Type == "" {
		if r.Table.bits() {
			r.Type = TypeBool
		} else {
			r.Type = TypeUint16
		}
	}
	if r.Order == "" {
		r.Order = ABCD
	}
	if r.Scale == 0 {
		r.Scale = 1
	}
}

// Validate checks the section; paths in errors are relative to modbus:.
func (c *Config) Validate() error {
	for name, t := range c.Templates {
		if err := validateRegisters(t.Registers, fmt.Sprintf("templates.%s.registers", name)); err != nil {
			return err
		}
	}
	seen := map[string]int{}
	for i := range c.Devices {
		d := &c.Devices[i]
		p := fmt.Sprintf("devices[%d]", i)
		if d.Asset == "" {
			return ferr(p+".asset", "is required; fix: the id of an asset declared under assets:")
		}
		if j, dup := seen[d.Asset]; dup {
			return ferr(p+".asset", "%q is already bound to devices[%d]; fix: one device per asset", d.Asset, j)
		}
		seen[d.Asset] = i
		switch d.Transport {
		case TCP, RTUOverTCP:
			host, port, err := net.SplitHostPort(d.Address)
			if err != nil || host == "" {
				return ferr(p+".address", "%q is not host:port; fix: e.g. 192.168.10.20:502", d.Address)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return ferr(p+".address", "port %q is not 1..65535", port)
			}
		case RTU:
			if d.Serial.Port == "" {
				return ferr(p+".serial.port", "is required for transport rtu; fix: e.g. /dev/ttyUSB0")
			}
			if d.Serial.Parity != "N" && d.Serial.Parity != "E" && d.Serial.Parity != "O" {
				return ferr(p+".serial.parity", "%q is not N, E or O", d.Serial.Parity)
			}
		default:
			return ferr(p+".transport", "%q is not a transport; fix: tcp, rtu_over_tcp or rtu", d.Transport)
		}
		if d.UnitID < 0 || d.UnitID > 247 {
			return ferr(p+".unit_id", "%d is out of range; fix: 0..247 (0 only for tcp gateways that ignore it)", d.UnitID)
		}
		if d.PollInterval < 10*time.Millisecond {
			return ferr(p+".poll_interval", "%s is too short; fix: at least 10ms", d.PollInterval)
		}
		if d.Timeout <= 0 || d.Timeout > d.PollInterval*10 && d.Timeout > time.Minute {
			return ferr(p+".timeout", "%s is out of range", d.Timeout)
		}
		if d.Template != "" {
			if _, ok := c.Templates[d.Template]; !ok {
				return ferr(p+".template", "%q is not defined under modbus.templates", d.Template)
			}
		}
		if len(d.regs) == 0 {
			return ferr(p, "device has no registers; fix: set template: or registers:")
		}
		if err := validateRegisters(d.Registers, p+".registers"); err != nil {
			return err
		}
		names := map[string]bool{}
		for _, r := range d.regs {
			if names[r.Name] {
				return ferr(p, "field %q is defined twice (template %q and registers); fix: rename one", r.Name, d.Template)
			}
			names[r.Name] = true
		}
	}
	return nil
}

func validateRegisters(regs []Register, path string) error {
	names := map[string]bool{}
	for i := range regs {
		r := &regs[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		if r.Name == "" {
			return ferr(p+".name", "is required")
		}
		if r.Name == CommLostField {
			return ferr(p+".name", "%q is reserved for the device's communication status", r.Name)
		}
		if names[r.Name] {
			return ferr(p+".name", "%q is defined twice", r.Name)
		}
		names[r.Name] = true
		switch r.Table {
		case Coil, DiscreteInput, InputRegister, HoldingRegister:
		default:
			return ferr(p+".table", "%q is not a table; fix: coil, discrete_input, input_register or holding_register", r.Table)
		}
		if r.Type.registers() == 0 && r.Type != TypeString {
			return ferr(p+".type", "%q is not a type; fix: bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string", r.Type)
		}
		if r.Table.bits() && r.Type != TypeBool {
			return ferr(p+".type", "%s holds bits, so the type must be bool, not %s", r.Table, r.Type)
		}
		if r.Bit != nil && (r.Type != TypeBool || r.Table.bits() || *r.Bit < 0 || *r.Bit > 15) {
			return ferr(p+".bit", "bit applies to bool fields of registers and must be 0..15")
		}
		if r.Type == TypeBool && !r.Table.bits() && r.Bit == nil {
			return ferr(p+".bit", "a bool read from a register needs bit: 0..15")
		}
		if r.Type == TypeString && (r.Length < 1 || r.Length > 125) {
			return ferr(p+".length", "strings need length: 1..125 registers")
		}
		if r.Type != TypeString && r.Length != 0 {
			return ferr(p+".length", "length applies to strings only")
		}
		switch r.Order {
		case ABCD, CDAB, BADC, DCBA:
		default:
			return ferr(p+".order", "%q is not a byte order; fix: ABCD, CDAB, BADC or DCBA", r.Order)
		}
		if r.Address < 0 || r.Address+r.width() > 65536 {
			return ferr(p+".address", "%d (+%d) is outside 0..65535", r.Address, r.width())
		}
		if math.IsNaN(r.Scale) || math.IsInf(r.Scale, 0) {
			return ferr(p+".scale", "must be a finite number")
		}
		if r.Writable && (r.Table == InputRegister || r.Table == DiscreteInput) {
			return ferr(p+".writable", "%s is read-only in Modbus; fix: use coil or holding_register", r.Table)
		}
		if (r.Type == TypeBool || r.Type == TypeString) && r.scaled() {
			return ferr(p+".scale", "scale and offset apply to numbers only")
		}
	}
	return nil
}

// Fields returns the device's resolved register map.
func (d *Device) Fields() []Register { return d.regs }
