package notify

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/spec"
)

// request is what the receiver saw of one request.
type request struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a real HTTP server that records requests and answers with
// the statuses it is given in turn (then 200).
type receiver struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	requests []request
	answers  []answer
	block    chan struct{} // when set, a request waits for it (after being recorded)
	got      chan struct{} // one token per request recorded
}

type answer struct {
	status     int
	retryAfter string
}

func newReceiver(t *testing.T, answers ...answer) *receiver {
	t.Helper()
	r := &receiver{t: t, answers: answers, got: make(chan struct{}, 1000)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests = append(r.requests, request{Path: req.URL.Path, Header: req.Header.Clone(), Body: body, At: time.Now()})
	a := answer{status: http.StatusOK}
	if len(r.answers) > 0 {
		a = r.answers[0]
		r.answers = r.answers[1:]
	}
	block := r.block
	r.mu.Unlock()
	r.got <- struct{}{}
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
		}
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte("ok"))
}

// setBlock makes requests wait for ch to close before they are answered.
func (r *receiver) setBlock(ch chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.block = ch
}

func (r *receiver) all() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// waitFor waits for n more requests.
func (r *receiver) waitFor(n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			r.t.Fatalf("timed out waiting for request %d of %d", i+1, n)
		}
	}
}

// logBuffer is a log output safe to read while the notifier writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger() (*logrus.Logger, *logBuffer) {
	buf := &logBuffer{}
	l := logrus.New()
	l.SetOutput(buf)
	l.SetLevel(logrus.DebugLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableColors: true, DisableTimestamp: true})
	return l, buf
}

// testOptions has a tiny backoff so that retries take milliseconds.
func testOptions(log *logrus.Logger) Options {
	return Options{Backoff: time.Millisecond, Log: log}
}

func block(name, url string, format string, events []string, servers ...string) *spec.Notify {
	if events == nil {
		events = append([]string(nil), spec.NotifyEvents...)
	}
	if format == "" {
		format = "json"
	}
	n := &spec.Notify{Name: name, URL: spec.Plain(url), Events: events, Format: format}
	for _, s := range servers {
		n.Servers = append(n.Servers, spec.Ref{Name: s})
	}
	return n
}

func closeNotifier(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

var sample = Event{
	Kind:     "failure",
	Server:   "notes",
	Version:  "1.2.0",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Message:  "verification failed: http /healthz: status 503",
	Host:     "h1",
	Time:     time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
}
