package mqtt

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/url"
	"runtime"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// maxPending bounds what a bufConn holds before Write waits for the socket.
const maxPending = 256 << 10

// bufConn cuts paho's syscalls: reads go through a bufio.Reader (paho reads
// each packet in several small pieces), and writes are group-committed: Write
// appends to a buffer and one flusher goroutine writes whatever has gathered,
// so under load many PUBACKs share one write(2), and when idle a write goes
// out at once. Order is preserved; a write error is returned by the next
// Write and closes the connection.
type bufConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	err     error
	closed  bool
	kick    chan struct{}
}

func newBufConn(c net.Conn) *bufConn {
	b := &bufConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), kick: make(chan struct{}, 1)}
	b.cond = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bufConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.pending) > maxPending && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.err != nil || b.closed {
		err := b.err
		b.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	}
	b.pending = append(b.pending, p...)
	b.kickLocked()
	b.mu.Unlock()
	return len(p), nil
}

func (b *bufConn) flusher() {
	for range b.kick {
		// Let a burst (paho writes PUBACKs one by one) gather first.
		runtime.Gosched()
		b.mu.Lock()
		out := b.pending
		b.pending = b.spare[:0]
		closed := b.closed
		b.mu.Unlock()
		if len(out) > 0 {
			if _, err := b.Conn.Write(out); err != nil {
				b.mu.Lock()
				b.err = err
				b.mu.Unlock()
				b.Conn.Close()
			}
		}
		b.mu.Lock()
		b.spare = out[:0]
		b.cond.Broadcast()
		b.mu.Unlock()
		if closed {
			return
		}
	}
}

// Close flushes what is pending (best effort) and closes the socket.
func (b *bufConn) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for len(b.pending) > 0 && b.err == nil {
		b.kickLocked()
		b.cond.Wait()
	}
	close(b.kick)
	b.mu.Unlock()
	return b.Conn.Close()
}

// kickLocked wakes the flusher; b.mu is held, so Close cannot have closed kick.
func (b *bufConn) kickLocked() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// openBuffered dials tcp:// and ssl:// brokers with a bufConn; paho's own
// opener handles the other schemes (websockets).
func openBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "ssl", "tls", "mqtts", "tcps":
		cfg := o.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = uri.Hostname()
		}
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, cfg)
	default:
		c, err = d.Dial("tcp", uri.Host)
	}
	if err != nil {
		return nil, err
	}
	return newBufConn(c), nil
}
