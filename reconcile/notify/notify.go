package notify

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/spec"
)

// Event is one thing that happened, as sent to a target.
type Event struct {
	Kind     string    `json:"event"` // one of spec.NotifyEvents
	Server   string    `json:"server,omitempty"`
	Version  string    `json:"version,omitempty"`
	Revision string    `json:"revision,omitempty"` // source revision (git commit or dir-…)
	Message  string    `json:"message"`
	Host     string    `json:"host"`
	Time     time.Time `json:"time"`
}

// Defaults.
const (
	DefaultTimeout   = 10 * time.Second // per attempt, for the default client
	DefaultRetries   = 3
	DefaultBackoff   = time.Second
	DefaultQueueSize = 100

	// MaxRetryAfter bounds how long a Retry-After answer makes a delivery wait.
	MaxRetryAfter = 30 * time.Second
)

// Options tune a Notifier. The zero value is usable.
type Options struct {
	// Client sends the requests. The default has a 10s timeout and does not
	// follow redirects. A caller's client is used as it is.
	Client *http.Client
	// Retries is the number of extra attempts after the first: 0 means
	// DefaultRetries, a negative number means none.
	Retries int
	// Backoff is the wait before the first retry, doubled for each further
	// one (default 1s: 1s, 2s, 4s).
	Backoff time.Duration
	// QueueSize bounds each target's queue of pending events (default 100).
	QueueSize int
	// Log receives the lines about dropped and failed deliveries (default:
	// discarded).
	Log *logrus.Logger
}

// Notifier delivers events to the notify targets. Its methods are safe for
// concurrent use, and a nil *Notifier does nothing.
type Notifier struct {
	targets []*target
	client  *http.Client
	retries int
	backoff time.Duration
	queue   int
	log     *logrus.Logger

	ctx     context.Context // cancelled when Close gives up
	cancel  context.CancelFunc
	mu      sync.Mutex // guards closed and every target's queue
	closed  bool
	closing chan struct{} // closed by the first Close
	once    sync.Once
	wg      sync.WaitGroup
}

// target is a notify block, copied so that the caller's block may change.
type target struct {
	name      string
	url       string // revealed
	sensitive bool   // the URL is sensitive
	host      string // the URL's host, for logs when not sensitive
	slack     bool
	headers   http.Header // revealed
	events    map[string]bool
	servers   map[string]bool // empty: every server

	queue   []Event
	dropped int
	wake    chan struct{} // capacity 1: the queue has something
}

// New returns a Notifier for the targets, keyed by name, and starts one
// delivery goroutine for each. A target whose URL is unknown or not an
// http(s) URL is left out with a log line.
func New(targets map[string]*spec.Notify, o Options) *Notifier {
	n := &Notifier{
		client:  o.Client,
		retries: o.Retries,
		backoff: o.Backoff,
		queue:   o.QueueSize,
		log:     o.Log,
		closing: make(chan struct{}),
	}
	if n.client == nil {
		n.client = &http.Client{
			Timeout: DefaultTimeout,
			// A redirect would carry the target's headers (often a token)
			// to wherever it points: a redirect is an answer, not a path.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	switch {
	case n.retries == 0:
		n.retries = DefaultRetries
	case n.retries < 0:
		n.retries = 0
	}
	if n.backoff <= 0 {
		n.backoff = DefaultBackoff
	}
	if n.queue <= 0 {
		n.queue = DefaultQueueSize
	}
	if n.log == nil {
		n.log = logrus.New()
		n.log.SetOutput(io.Discard)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	names := make([]string, 0, len(targets))
	for name := range targets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, key := range names {
		b := targets[key]
		if b == nil {
			continue
		}
		name := b.Name
		if name == "" {
			name = key
		}
		t := &target{
			name:      name,
			url:       b.URL.Reveal(),
			sensitive: b.URL.IsSensitive(),
			slack:     b.Format == "slack",
			headers:   http.Header{},
			events:    map[string]bool{},
			servers:   map[string]bool{},
			wake:      make(chan struct{}, 1),
		}
		u, err := url.Parse(t.url)
		if !b.URL.IsKnown() || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Neither the URL nor the parse error: either may hold a token.
			n.log.WithField("target", name).Warn("notify target left out: its url is not a known http(s) URL")
			continue
		}
		t.host = u.Host
		for k, v := range b.Headers {
			t.headers.Set(k, v.Reveal())
		}
		for _, e := range b.Events {
			t.events[e] = true
		}
		for _, s := range b.Servers {
			t.servers[s.Name] = true
		}
		n.targets = append(n.targets, t)
	}
	for _, t := range n.targets {
		n.wg.Add(1)
		go n.run(t)
	}
	return n
}

// wants reports whether t takes e.
func (t *target) wants(e Event) bool {
	if !t.events[e.Kind] {
		return false
	}
	// An event without a server (the desired state does not load) concerns
	// every server.
	return len(t.servers) == 0 || e.Server == "" || t.servers[e.Server]
}

// Send queues e for every target that takes it and returns at once. A zero
// e.Time is set to now. After Close, Send does nothing.
func (n *Notifier) Send(e Event) {
	if n == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	type drop struct {
		t     *target
		kind  string
		total int
	}
	var drops []drop
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.log.WithField("event", e.Kind).Debug("notifier closed: event not sent")
		return
	}
	for _, t := range n.targets {
		if !t.wants(e) {
			continue
		}
		if len(t.queue) >= n.queue {
			old := t.queue[0]
			t.queue[0] = Event{}
			t.queue = t.queue[1:]
			t.dropped++
			drops = append(drops, drop{t, old.Kind, t.dropped})
		}
		t.queue = append(t.queue, e)
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	n.mu.Unlock()
	for _, d := range drops {
		n.log.WithFields(logrus.Fields{"target": d.t.name, "event": d.kind, "dropped": d.total}).
			Warn("notification queue full: dropped the oldest event")
	}
}

// Close stops taking events and waits until every queued event has been
// delivered or has failed, or until ctx ends. When ctx ends first, the
// deliveries under way are cancelled, what is left is dropped (one log line
// per target), and Close returns ctx.Err() once the goroutines are gone.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		close(n.closing)
	})
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return ctx.Err()
	}
}

// run delivers t's events in order until the Notifier is closed and the
// queue is empty, or until Close gives up.
func (n *Notifier) run(t *target) {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if n.ctx.Err() != nil {
			n.abandon(t, 0)
			return
		}
		if len(t.queue) == 0 {
			n.mu.Unlock()
			select {
			case <-t.wake:
				continue
			case <-n.closing:
			}
			// Closed: drain what is left, then stop.
			n.mu.Lock()
			empty := len(t.queue) == 0
			n.mu.Unlock()
			if empty {
				return
			}
			continue
		}
		e := t.queue[0]
		t.queue[0] = Event{}
		t.queue = t.queue[1:]
		n.mu.Unlock()
		if !n.deliver(t, e) {
			n.mu.Lock()
			n.abandon(t, 1)
			return
		}
	}
}

// abandon drops t's queue after Close gave up; n.mu is held and released.
// extra counts an event taken from the queue but not delivered.
func (n *Notifier) abandon(t *target, extra int) {
	left := len(t.queue) + extra
	t.queue = nil
	n.mu.Unlock()
	if left > 0 {
		n.log.WithFields(logrus.Fields{"target": t.name, "dropped": left}).
			Warn("notifier closed before delivery: events dropped")
	}
}

// deliver sends e to t, retrying as needed. It returns false only when the
// Notifier's context ended (Close gave up) before the delivery was done.
func (n *Notifier) deliver(t *target, e Event) bool {
	body, err := encode(t, e)
	if err != nil {
		n.fail(t, e, 0, 0, "cannot encode the event: "+err.Error())
		return true
	}
	for attempt := 0; ; attempt++ {
		status, retryAfter, errText := n.post(t, body)
		if n.ctx.Err() != nil {
			return false
		}
		if status >= 200 && status <= 299 {
			return true
		}
		retryable := status == 0 || status == http.StatusTooManyRequests || status >= 500
		if !retryable || attempt >= n.retries {
			n.fail(t, e, status, attempt+1, errText)
			return true
		}
		wait := n.backoff << attempt
		if retryAfter > wait {
			wait = retryAfter
		}
		n.entry(t, e).WithFields(logrus.Fields{"status": status, "attempt": attempt + 1, "wait": wait.String()}).
			Debug("notification not delivered: retrying")
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-n.ctx.Done():
			timer.Stop()
			return false
		}
	}
}

// post makes one attempt. It returns the status (0 when there was no
// answer), the wait a Retry-After header asks for, and, without an answer, a
// description of the error that shows no secret.
func (n *Notifier) post(t *target, body []byte) (status int, retryAfter time.Duration, errText string) {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "cannot build the request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tend")
	for k, vs := range t.headers {
		req.Header[k] = slices.Clone(vs)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, 0, t.scrub(err)
	}
	defer resp.Body.Close()
	// Read a little so that the connection can be reused; never log it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), ""
}

// scrub describes a request error without the URL (which may carry a
// token in its path or query), nor, for a sensitive URL, its host, nor a
// header value.
func (t *target) scrub(err error) string {
	var ue *url.Error
	for {
		e, ok := err.(*url.Error)
		if !ok {
			break
		}
		ue, err = e, e.Err
	}
	if err == nil {
		if ue != nil && ue.Timeout() {
			return "timeout"
		}
		return "request failed"
	}
	s := err.Error()
	secrets := []string{t.url}
	if u, perr := url.Parse(t.url); perr == nil {
		if len(u.Path) > 1 {
			secrets = append(secrets, u.Path, u.EscapedPath())
		}
		if u.RawQuery != "" {
			secrets = append(secrets, u.RawQuery)
		}
		if p, ok := u.User.Password(); ok && p != "" {
			secrets = append(secrets, p)
		}
		if t.sensitive {
			secrets = append(secrets, u.Host, u.Hostname())
		}
	}
	for _, vs := range t.headers {
		for _, v := range vs {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	// Longest first, so that a secret containing another is hidden whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, spec.Redacted)
		}
	}
	return s
}

// entry starts a log line about e and t.
func (n *Notifier) entry(t *target, e Event) *logrus.Entry {
	f := logrus.Fields{"target": t.name, "event": e.Kind}
	if e.Server != "" {
		f["server"] = e.Server
	}
	if !t.sensitive {
		f["url_host"] = t.host
	}
	return n.log.WithFields(f)
}

// fail logs a delivery's final failure: one line.
func (n *Notifier) fail(t *target, e Event, status, attempts int, errText string) {
	l := n.entry(t, e).WithFields(logrus.Fields{"status": status, "attempts": attempts})
	if errText != "" {
		l = l.WithField("error", errText)
	}
	l.Warn("notification not delivered")
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date),
// bounded by MaxRetryAfter. It returns 0 when there is none or it is bad.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if secs, ok := parseSeconds(h); ok {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(h); err == nil {
		d = at.Sub(now)
	} else {
		return 0
	}
	if d < 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// parseSeconds parses a non-negative decimal integer, saturating at a day.
func parseSeconds(s string) (int64, bool) {
	var v int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v < 86400 {
			v = v*10 + int64(c-'0')
		}
	}
	return v, true
}
