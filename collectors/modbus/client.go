package modbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	gmb "github.com/goburrow/modbus"
)

// Client is the part of a Modbus client the collector uses; goburrow's
// modbus.Client satisfies it.
type Client interface {
	ReadCoils(address, quantity uint16) ([]byte, error)
	ReadDiscreteInputs(address, quantity uint16) ([]byte, error)
	ReadHoldingRegisters(address, quantity uint16) ([]byte, error)
	ReadInputRegisters(address, quantity uint16) ([]byte, error)
	WriteSingleCoil(address, value uint16) ([]byte, error)
	WriteSingleRegister(address, value uint16) ([]byte, error)
	WriteMultipleRegisters(address, quantity uint16, value []byte) ([]byte, error)
}

// Link is one physical connection (a TCP socket or a serial port). Only one
// request is in flight on a link at a time; Close drops the connection so the
// next request reconnects.
type Link interface {
	Client(unitID byte) Client
	Close() error
}

// Dialer builds a Link for a device's transport. It must not connect: the
// first request does. Tests swap it.
type Dialer func(d *Device) (Link, error)

// GoburrowDialer builds links on github.com/goburrow/modbus.
func GoburrowDialer(d *Device) (Link, error) {
	switch d.Transport {
	case TCP:
		h := gmb.NewTCPClientHandler(d.Address)
		h.Timeout = d.Timeout
		return &tcpLink{h: h, c: gmb.NewClient(h)}, nil
	case RTUOverTCP:
		t := &rtuOverTCP{address: d.Address, timeout: d.Timeout}
		p := gmb.NewRTUClientHandler("")
		return &rtuLink{p: p, c: gmb.NewClient2(p, t), closer: t}, nil
	case RTU:
		h := gmb.NewRTUClientHandler(d.Serial.Port)
		h.BaudRate, h.DataBits, h.Parity, h.StopBits = d.Serial.BaudRate, d.Serial.DataBits, d.Serial.Parity, d.Serial.StopBits
		h.Timeout = d.Timeout
		return &rtuLink{p: h, c: gmb.NewClient(h), closer: h}, nil
	}
	return nil, fmt.Errorf("modbus: unknown transport %q", d.Transport)
}

type tcpLink struct {
	h *gmb.TCPClientHandler
	c gmb.Client
}

func (l *tcpLink) Client(unit byte) Client { l.h.SlaveId = unit; return l.c }
func (l *tcpLink) Close() error            { return l.h.Close() }

type rtuLink struct {
	p      *gmb.RTUClientHandler
	c      gmb.Client
	closer io.Closer
}

func (l *rtuLink) Client(unit byte) Client { l.p.SlaveId = unit; return l.c }
func (l *rtuLink) Close() error            { return l.closer.Close() }

// rtuOverTCP carries RTU frames (with CRC, no MBAP header) over a TCP socket,
// as serial device servers in transparent mode expect. goburrow v0.1.0 has
// no such transporter; its RTU packager does the framing and CRC.
type rtuOverTCP struct {
	address string
	timeout time.Duration
	mu      sync.Mutex
	conn    net.Conn
}

func (t *rtuOverTCP) Send(req []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		c, err := net.DialTimeout("tcp", t.address, t.timeout)
		if err != nil {
			return nil, err
		}
		t.conn = c
	}
	if err := t.conn.SetDeadline(time.Now().Add(t.timeout)); err != nil {
		return nil, err
	}
	if _, err := t.conn.Write(req); err != nil {
		return nil, err
	}
	// slave id, function code, then either an exception code or the body.
	head := make([]byte, 3)
	if _, err := io.ReadFull(t.conn, head); err != nil {
		return nil, err
	}
	var rest int
	switch fc := head[1]; {
	case fc&0x80 != 0:
		rest = 2 // CRC
	case fc >= 1 && fc <= 4:
		rest = int(head[2]) + 2
	case fc == 5 || fc == 6 || fc == 15 || fc == 16:
		rest = 3 + 2
	default:
		return nil, fmt.Errorf("modbus: rtu over tcp: unexpected function code 0x%02x", fc)
	}
	resp := make([]byte, 3+rest)
	copy(resp, head)
	if _, err := io.ReadFull(t.conn, resp[3:]); err != nil {
		return nil, err
	}
	return resp, nil
}

func (t *rtuOverTCP) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}

// exceptionCode returns the Modbus exception code of err, or 0 when err is
// not a protocol exception (timeouts, resets, garbled frames).
func exceptionCode(err error) byte {
	var me *gmb.ModbusError
	if errors.As(err, &me) {
		return me.ExceptionCode
	}
	return 0
}
