// Package demoreceiver owns /demo/receiver: the webhook target the demo's
// alert channel posts to, kept as a bounded ring that operators can read.
package demoreceiver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/propgate/gateway/dashboard/access"
	"github.com/propgate/gateway/dashboard/httpjson"
)

// Options bound what the receiver keeps; zero values take the defaults.
type Options struct {
	MaxMessages int   // kept, newest first; default 200
	MaxBytes    int64 // all kept bodies together; default 4 MiB
	MaxBody     int64 // one body; default 64 KiB
	Now         func() time.Time
}

// Receiver is the webhook receiver the demo sends its alerts to, so a
// newcomer sees the messages without any outside account: a bounded ring.
type Receiver struct {
	o     Options
	mu    sync.Mutex
	msgs  []demoMessage // oldest first
	bytes int64
}

type demoMessage struct {
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// New builds a receiver that keeps what o allows.
func New(o Options) *Receiver {
	if o.MaxMessages <= 0 {
		o.MaxMessages = 200
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 20
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Receiver{o: o}
}

// Mount adds POST /demo/receiver (public: the gateway's own webhook channel
// posts there) and GET /demo/receiver (an operator: see list) to mux.
func (d *Receiver) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST /demo/receiver", d.receive)
	mux.HandleFunc("GET /demo/receiver", d.list)
}

func (d *Receiver) receive(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, d.o.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "the demo receiver takes JSON of at most "+strconv.FormatInt(d.o.MaxBody, 10)+" bytes")
		return
	case err != nil || !json.Valid(b):
		httpjson.Error(w, http.StatusBadRequest, "the demo receiver takes JSON")
		return
	}
	d.mu.Lock()
	d.msgs = append(d.msgs, demoMessage{At: d.o.Now(), Body: b})
	d.bytes += int64(len(b))
	for len(d.msgs) > d.o.MaxMessages || d.bytes > d.o.MaxBytes {
		d.bytes -= int64(len(d.msgs[0].Body))
		d.msgs[0] = demoMessage{}
		d.msgs = slices.Delete(d.msgs, 0, 1)
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// list streams the kept messages, newest first. The lock is held only to
// copy the (immutable) references, never while writing to the client.
func (d *Receiver) list(w http.ResponseWriter, r *http.Request) {
	if p, ok := access.PrincipalOf(r); !ok || p.Role < access.Operator {
		httpjson.Error(w, http.StatusUnauthorized, "the demo receiver's messages hold acknowledgement links: an operator's Authorization: Bearer <token>")
		return
	}
	d.mu.Lock()
	msgs := slices.Clone(d.msgs)
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	io.WriteString(w, "[")
	for i := len(msgs) - 1; i >= 0; i-- {
		if i < len(msgs)-1 {
			io.WriteString(w, ",")
		}
		if err := enc.Encode(msgs[i]); err != nil {
			return // the client went away
		}
	}
	io.WriteString(w, "]\n")
}
