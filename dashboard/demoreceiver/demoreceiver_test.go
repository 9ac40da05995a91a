package demoreceiver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propgate/gateway/dashboard/access"
)

// The GET streams from a snapshot: the lock is free while a slow client
// reads, so the gateway's own webhook posts are not held up.
func TestDemoReceiverReadDoesNotBlockWrites(t *testing.T) {
	mux := http.NewServeMux()
	New(Options{}).Mount(mux)
	post := func(body string) int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/demo/receiver", strings.NewReader(body)))
		return rec.Code
	}
	for i := range 3 {
		post(fmt.Sprintf(`{"n":%d}`, i))
	}
	w := &stallingWriter{header: http.Header{}, first: make(chan struct{}), release: make(chan struct{})}
	req := httptest.NewRequest("GET", "/demo/receiver", nil)
	req = req.WithContext(access.WithPrincipal(req.Context(), access.Principal{Role: access.Operator}))
	done := make(chan struct{})
	go func() { mux.ServeHTTP(w, req); close(done) }()
	within := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal(what)
		}
	}
	within("the reader did not start writing", w.first) // it is now stuck in its first write
	posted := make(chan struct{})
	go func() {
		if code := post(`{"n":3}`); code != 204 {
			t.Errorf("post while a read stalls: %d", code)
		}
		close(posted)
	}()
	within("a post waited for a stalled reader", posted)
	close(w.release)
	within("the read did not finish", done)
	if !strings.Contains(w.buf.String(), `"n":2`) || strings.Contains(w.buf.String(), `"n":3`) {
		t.Fatalf("read %s", w.buf.String())
	}
}

type stallingWriter struct {
	header  http.Header
	buf     strings.Builder
	once    sync.Once
	first   chan struct{}
	release chan struct{}
}

func (s *stallingWriter) Header() http.Header { return s.header }
func (s *stallingWriter) WriteHeader(int)     {}
func (s *stallingWriter) Write(b []byte) (int, error) {
	s.once.Do(func() { close(s.first); <-s.release })
	return s.buf.Write(b)
}
