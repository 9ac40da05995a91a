package delivery

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func server(t *testing.T, status int, answer string, got chan<- *http.Request) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		if got != nil {
			got <- r
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPostClassifiesAnswers(t *testing.T) {
	for _, c := range []struct {
		status int
		answer string
		check  func([]byte) error
		retry  bool
		is     error
		text   string
	}{
		{200, "", nil, false, nil, ""},
		{204, "", nil, false, nil, ""},
		{500, "boom", nil, true, ErrUnavailable, "answered 500 Internal Server Error"},
		{503, "", nil, true, ErrUnavailable, "answered 503 Service Unavailable"},
		{429, "", nil, true, ErrUnavailable, "answered 429 Too Many Requests"},
		{400, "bad json\n", nil, false, ErrRefused, "refused the message: 400 Bad Request bad json"},
		{404, "", nil, false, ErrRefused, "refused the message: 404 Not Found"},
		{200, `{"errcode":1}`, func([]byte) error { return errors.New("robot error 1") }, false, ErrRefused, "robot error 1"},
	} {
		srv := server(t, c.status, c.answer, nil)
		retry, err := Post(context.Background(), srv.Client(), Request{URL: srv.URL, Body: []byte("{}"), Check: c.check})
		if retry != c.retry || (c.is == nil) != (err == nil) || c.is != nil && (!errors.Is(err, c.is) || err.Error() != c.text) {
			t.Errorf("%d %q: retry %v err %v; want %v %v %q", c.status, c.answer, retry, err, c.retry, c.is, c.text)
		}
		if Retryable(err) != c.retry {
			t.Errorf("%d: Retryable %v", c.status, Retryable(err))
		}
	}
}

func TestPostSendsBodyHeadersAndTimestampedSignature(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := server(t, 200, "", got)
	at := time.Unix(1_763_000_000, 0)
	body := []byte(`{"id":1}`)
	_, err := Post(context.Background(), srv.Client(), Request{URL: srv.URL + "/hook", Body: body, Secret: "s3cret-key",
		Headers: http.Header{"Idempotency-Key": {"wo-1-v2"}}, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	b, _ := io.ReadAll(r.Body)
	if r.Method != "POST" || r.URL.Path != "/hook" || string(b) != `{"id":1}` || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Idempotency-Key") != "wo-1-v2" {
		t.Fatalf("request %s %s %s %v", r.Method, r.URL, b, r.Header)
	}
	if r.Header.Get(HeaderTimestamp) != "1763000000" || !strings.HasPrefix(r.Header.Get(HeaderSignatureV2), "sha256=") {
		t.Fatalf("headers %v", r.Header)
	}
	if !Verify("s3cret-key", b, r.Header, at.Add(time.Minute), 5*time.Minute) {
		t.Fatal("a fresh signature did not verify")
	}
	// A replay later than the receiver's window, a changed body, another key: refused.
	if Verify("s3cret-key", b, r.Header, at.Add(10*time.Minute), 5*time.Minute) {
		t.Fatal("a replay 10 minutes later verified")
	}
	if Verify("s3cret-key", []byte(`{"id":2}`), r.Header, at, 5*time.Minute) || Verify("other-key", b, r.Header, at, 5*time.Minute) {
		t.Fatal("a changed body or key verified")
	}
	// Moving the timestamp breaks the signature.
	h := r.Header.Clone()
	h.Set(HeaderTimestamp, "1763000500")
	if Verify("s3cret-key", b, h, at.Add(500*time.Second), 5*time.Minute) {
		t.Fatal("a re-dated signature verified")
	}
}

// No error text may carry a robot key, token, query value, user info or a
// token in the path: they end up in the attempts table, the API and logs.
func TestErrorsNeverCarrySecrets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	secrets := []string{"SUPER-SECRET-ROBOT-KEY", "SUPER-SECRET-TOKEN", "hunter2pass", "robotuser", "3f2a9c1e-77aa-4b1c-9d3e-0123456789ab", "sign-secret-xyz"}
	urls := []string{
		"http://" + dead + "/cgi-bin/webhook/send?key=SUPER-SECRET-ROBOT-KEY",
		"http://" + dead + "/robot/send?access_token=SUPER-SECRET-TOKEN&timestamp=1&sign=abc",
		"http://robotuser:hunter2pass@" + dead + "/x",
		"http://" + dead + "/open-apis/bot/v2/hook/3f2a9c1e-77aa-4b1c-9d3e-0123456789ab",
	}
	// An answer that echoes the request (some gateways do) is scrubbed too.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		io.WriteString(w, "bad request "+r.URL.String()+" key SUPER-SECRET-ROBOT-KEY sign-secret-xyz")
	}))
	defer echo.Close()
	urls = append(urls, echo.URL+"/send?key=SUPER-SECRET-ROBOT-KEY", "http://[::1]:namedport/?key=SUPER-SECRET-ROBOT-KEY")
	client := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		_, err := Post(context.Background(), client, Request{URL: u, Body: []byte("{}"), Secret: "sign-secret-xyz"})
		if err == nil {
			t.Fatalf("%s: no error", Redact(u))
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error for %s leaks %q: %v", Redact(u), s, err)
			}
		}
	}
	if got := Redact("https://robotuser:hunter2pass@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SUPER-SECRET-ROBOT-KEY"); got != "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=REDACTED" {
		t.Errorf("redact: %s", got)
	}
	if got := Redact("https://open.feishu.cn/open-apis/bot/v2/hook/3f2a9c1e-77aa-4b1c-9d3e-0123456789ab"); got != "https://open.feishu.cn/open-apis/bot/v2/hook/REDACTED" {
		t.Errorf("redact: %s", got)
	}
}

func TestTransportErrorsAreRetried(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	retry, err := Post(context.Background(), http.DefaultClient, Request{URL: "http://" + addr})
	if !retry || !errors.Is(err, ErrTransport) || !Retryable(err) {
		t.Fatalf("retry %v err %v", retry, err)
	}
}

func TestRetryBacksOffAndStops(t *testing.T) {
	var slept []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	b := Backoff{Initial: time.Second, Max: 3 * time.Second, Attempts: 4}
	var tries []int
	err := Retry(context.Background(), b, sleep, func(try int, last bool) (bool, error) {
		tries = append(tries, try)
		return true, errors.New("down")
	})
	if err == nil || len(tries) != 4 || len(slept) != 3 || slept[0] != time.Second || slept[1] != 2*time.Second || slept[2] != 3*time.Second {
		t.Fatalf("err %v tries %v slept %v", err, tries, slept)
	}
	// A final failure is not retried; success stops at once.
	tries, slept = nil, nil
	Retry(context.Background(), b, sleep, func(try int, last bool) (bool, error) { tries = append(tries, try); return false, errors.New("400") })
	Retry(context.Background(), b, sleep, func(try int, last bool) (bool, error) { tries = append(tries, try); return true, nil })
	if len(tries) != 2 || len(slept) != 0 {
		t.Fatalf("tries %v slept %v", tries, slept)
	}
	// The context ending stops the waits.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	Retry(ctx, Backoff{Initial: time.Hour}, nil, func(int, bool) (bool, error) { n++; return true, errors.New("down") })
	if n != 1 {
		t.Fatalf("%d tries after the context ended", n)
	}
}
