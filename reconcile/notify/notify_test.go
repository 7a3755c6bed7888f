package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

func TestJSONBody(t *testing.T) {
	r := newReceiver(t)
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL+"/hook", "json", nil)}, testOptions(nil))
	n.Send(sample)
	closeNotifier(t, n)

	reqs := r.all()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	q := reqs[0]
	if q.Path != "/hook" {
		t.Errorf("path %q", q.Path)
	}
	if ct := q.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if ua := q.Header.Get("User-Agent"); ua != "tend" {
		t.Errorf("User-Agent %q", ua)
	}
	var m map[string]any
	if err := json.Unmarshal(q.Body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, q.Body)
	}
	want := map[string]any{
		"event":    "failure",
		"server":   "notes",
		"version":  "1.2.0",
		"revision": sample.Revision,
		"message":  sample.Message,
		"host":     "h1",
		"time":     "2026-03-04T05:06:07Z",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("body has keys %v, want exactly %v", keys(m), keys(want))
	}
	var e Event
	if err := json.Unmarshal(q.Body, &e); err != nil || !e.Time.Equal(sample.Time) || e != sample {
		t.Errorf("round trip: %+v, %v", e, err)
	}
}

func TestJSONBodyOmitsEmptyAndSetsTime(t *testing.T) {
	r := newReceiver(t)
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, testOptions(nil))
	before := time.Now()
	n.Send(Event{Kind: "failure", Message: "revision abc does not load"})
	closeNotifier(t, n)
	var m map[string]any
	if err := json.Unmarshal(r.all()[0].Body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server", "version", "revision"} {
		if _, ok := m[k]; ok {
			t.Errorf("empty %s was sent: %v", k, m)
		}
	}
	for _, k := range []string{"event", "message", "host", "time"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s missing: %v", k, m)
		}
	}
	at, err := time.Parse(time.RFC3339Nano, m["time"].(string))
	if err != nil || at.Before(before.Add(-time.Second)) {
		t.Errorf("time %v (%v) not set to now", m["time"], err)
	}
}

func TestSlackBody(t *testing.T) {
	r := newReceiver(t)
	n := New(map[string]*spec.Notify{"chat": block("chat", r.URL, "slack", nil)}, testOptions(nil))
	e := sample
	e.Kind = "rollback"
	e.Message = "failed verification & was rolled back to <1.1.0>"
	n.Send(e)
	closeNotifier(t, n)

	q := r.all()[0]
	if ct := q.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var m struct {
		Text        string `json:"text"`
		Attachments []struct {
			Fallback string `json:"fallback"`
			Color    string `json:"color"`
			Fields   []struct {
				Title string `json:"title"`
				Value string `json:"value"`
				Short bool   `json:"short"`
			} `json:"fields"`
			Ts int64 `json:"ts"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(q.Body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, q.Body)
	}
	wantText := ":rewind: tend: notes 1.2.0 was rolled back on host h1: failed verification &amp; was rolled back to &lt;1.1.0&gt;"
	if m.Text != wantText {
		t.Errorf("text\n got %q\nwant %q", m.Text, wantText)
	}
	if strings.Contains(m.Text, "\n") {
		t.Errorf("text is not one line: %q", m.Text)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("attachments: %s", q.Body)
	}
	a := m.Attachments[0]
	if a.Fallback != m.Text || a.Color != "danger" || a.Ts != sample.Time.Unix() {
		t.Errorf("attachment %+v", a)
	}
	fields := map[string]string{}
	for _, f := range a.Fields {
		fields[f.Title] = f.Value
	}
	want := map[string]string{"Event": "rollback", "Server": "notes", "Version": "1.2.0", "Host": "h1", "Revision": sample.Revision}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, fields[k], v)
		}
	}
}

func TestSlackSummary(t *testing.T) {
	long := strings.Repeat("x", 400)
	for _, c := range []struct {
		e        Event
		text     string
		fullText bool
	}{
		{Event{Kind: "failure", Server: "notes", Version: "1.2.0", Host: "h1", Message: "verification failed"},
			":x: tend: notes 1.2.0 failed on host h1: verification failed", false},
		{Event{Kind: "apply", Server: "notes", Message: "deleted"},
			":white_check_mark: tend: notes was applied: deleted", false},
		{Event{Kind: "failure", Message: "revision abc does not load"},
			":x: tend: revision abc does not load", false},
		{Event{Kind: "drift", Server: "db", Host: "h2"},
			":warning: tend: db has drifted on host h2", false},
		{Event{Kind: "held", Server: "db", Message: "line one\nline two"},
			":pause_button: tend: db is held: line one line two", true},
		{Event{Kind: "backup", Server: "db", Message: long},
			":floppy_disk: tend: db was backed up: " + strings.Repeat("x", maxSummary-1) + "…", true},
	} {
		got := slackBody(c.e)
		if got.Text != c.text {
			t.Errorf("%+v:\n got %q\nwant %q", c.e, got.Text, c.text)
		}
		if has := got.Attachments[0].Text != ""; has != c.fullText {
			t.Errorf("%+v: attachment text %q", c.e, got.Attachments[0].Text)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Error(err)
		}
	}
}

func TestFiltering(t *testing.T) {
	r := newReceiver(t)
	targets := map[string]*spec.Notify{
		"applies":  block("applies", r.URL+"/applies", "json", []string{"apply"}),
		"notes":    block("notes", r.URL+"/notes", "json", []string{"failure", "rollback"}, "notes"),
		"everyone": block("everyone", r.URL+"/everyone", "json", nil),
		"backups":  block("backups", r.URL+"/backups", "json", []string{"backup"}, "db", "cache"),
	}
	n := New(targets, testOptions(nil))
	send := func(kind, server string) {
		n.Send(Event{Kind: kind, Server: server, Message: kind + "/" + server})
	}
	send("apply", "notes")    // applies, everyone
	send("failure", "notes")  // notes, everyone
	send("failure", "other")  // everyone
	send("rollback", "notes") // notes, everyone
	send("backup", "notes")   // everyone
	send("backup", "db")      // backups, everyone
	send("failure", "")       // notes (fleet-wide), everyone
	send("drift", "cache")    // everyone
	closeNotifier(t, n)

	got := map[string][]string{}
	for _, q := range r.all() {
		var e Event
		if err := json.Unmarshal(q.Body, &e); err != nil {
			t.Fatal(err)
		}
		got[q.Path] = append(got[q.Path], e.Message)
	}
	want := map[string][]string{
		"/applies":  {"apply/notes"},
		"/notes":    {"failure/notes", "rollback/notes", "failure/"},
		"/backups":  {"backup/db"},
		"/everyone": {"apply/notes", "failure/notes", "failure/other", "rollback/notes", "backup/notes", "backup/db", "failure/", "drift/cache"},
	}
	for path, w := range want {
		// One goroutine per target: each target's events arrive in order.
		if !slices.Equal(got[path], w) {
			t.Errorf("%s got %q, want %q", path, got[path], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("paths %v", keys(got))
	}
}

func TestHeaders(t *testing.T) {
	r := newReceiver(t, answer{status: 500})
	log, buf := testLogger()
	b := block("ops", r.URL, "json", nil)
	b.Headers = map[string]spec.Value{
		"Authorization": spec.Sensitive("Bearer s3cr3t-t0ken"),
		"X-Team":        spec.Plain("platform"),
	}
	n := New(map[string]*spec.Notify{"ops": b}, testOptions(log))
	n.Send(sample)
	closeNotifier(t, n)

	reqs := r.all()
	if len(reqs) != 2 { // a 500, then the retry
		t.Fatalf("%d requests", len(reqs))
	}
	for _, q := range reqs {
		if v := q.Header.Get("Authorization"); v != "Bearer s3cr3t-t0ken" {
			t.Errorf("Authorization %q", v)
		}
		if v := q.Header.Get("X-Team"); v != "platform" {
			t.Errorf("X-Team %q", v)
		}
		if q.Header.Get("Content-Type") != "application/json" || q.Header.Get("User-Agent") != "tend" {
			t.Errorf("headers %v", q.Header)
		}
	}
	if out := buf.String(); strings.Contains(out, "s3cr3t") || strings.Contains(out, "platform") {
		t.Errorf("a header value was logged:\n%s", out)
	}
}

func TestRetryOn500ThenSuccess(t *testing.T) {
	r := newReceiver(t, answer{status: 500}, answer{status: 503}, answer{status: 502})
	log, buf := testLogger()
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, testOptions(log))
	n.Send(sample)
	closeNotifier(t, n)
	if got := len(r.all()); got != 4 {
		t.Errorf("%d attempts, want 4 (three 5xx then 200)", got)
	}
	if len(warnings(buf.String())) != 0 {
		t.Errorf("a delivered notification was logged as a failure:\n%s", buf)
	}
}

func TestRetriesExhausted(t *testing.T) {
	r := newReceiver(t, answer{status: 500}, answer{status: 500}, answer{status: 500}, answer{status: 500})
	log, buf := testLogger()
	o := testOptions(log)
	o.Retries = 2
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL+"/path", "json", nil)}, o)
	n.Send(sample)
	closeNotifier(t, n)
	if got := len(r.all()); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
	lines := warnings(buf.String())
	if len(lines) != 1 {
		t.Fatalf("want one failure line, got:\n%s", buf)
	}
	for _, f := range []string{"target=ops", "event=failure", "status=500", "attempts=3", "url_host=\"" + hostOf(t, r.URL) + "\""} {
		if !strings.Contains(lines[0], f) {
			t.Errorf("failure line lacks %s: %s", f, lines[0])
		}
	}
	if strings.Contains(lines[0], "/path") {
		t.Errorf("the URL's path was logged: %s", lines[0])
	}
}

func TestNoRetryOn400(t *testing.T) {
	for _, status := range []int{400, 401, 404, 302} {
		r := newReceiver(t, answer{status: status}, answer{status: 200})
		log, buf := testLogger()
		n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, testOptions(log))
		n.Send(sample)
		closeNotifier(t, n)
		if got := len(r.all()); got != 1 {
			t.Errorf("status %d: %d attempts, want 1", status, got)
		}
		lines := warnings(buf.String())
		if len(lines) != 1 || !strings.Contains(lines[0], "status="+strconv.Itoa(status)) || !strings.Contains(lines[0], "attempts=1") {
			t.Errorf("status %d: log:\n%s", status, buf)
		}
	}
}

func TestNoRetriesWhenNegative(t *testing.T) {
	r := newReceiver(t, answer{status: 500})
	o := testOptions(nil)
	o.Retries = -1
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, o)
	n.Send(sample)
	closeNotifier(t, n)
	if got := len(r.all()); got != 1 {
		t.Errorf("%d attempts, want 1", got)
	}
}

func TestRetryAfter(t *testing.T) {
	r := newReceiver(t, answer{status: 429, retryAfter: "1"}, answer{status: 503, retryAfter: "0"})
	log, buf := testLogger()
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, testOptions(log))
	n.Send(sample)
	closeNotifier(t, n)
	reqs := r.all()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 950*time.Millisecond {
		t.Errorf("retried %v after a Retry-After of 1s", gap)
	}
	// Retry-After: 0 does not make it retry sooner than the backoff; with a
	// backoff of milliseconds, it must not wait a second either.
	if gap := reqs[2].At.Sub(reqs[1].At); gap > 500*time.Millisecond {
		t.Errorf("retried %v after a Retry-After of 0", gap)
	}
	if len(warnings(buf.String())) != 0 {
		t.Errorf("failure logged:\n%s", buf)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"2":                             2 * time.Second,
		" 5 ":                           5 * time.Second,
		"3600":                          MaxRetryAfter,
		"99999999999999999999999":       MaxRetryAfter,
		"-1":                            0,
		"1.5":                           0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:00:10 GMT": 10 * time.Second,
		"Thu, 01 Jan 2026 01:00:00 GMT": MaxRetryAfter,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(h, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestSensitiveURLNeverLogged(t *testing.T) {
	const token = "T000/B000/XXXXsecretXXXX"
	r := newReceiver(t, answer{status: 500}, answer{status: 500}, answer{status: 500}, answer{status: 500})
	log, buf := testLogger()
	secret := r.URL + "/services/" + token + "?key=q1w2e3"
	b := block("chat", "", "slack", nil)
	b.URL = spec.Sensitive(secret)
	n := New(map[string]*spec.Notify{"chat": b}, testOptions(log))
	n.Send(sample)
	closeNotifier(t, n)
	if got := len(r.all()); got != 4 {
		t.Errorf("%d attempts, want 4", got)
	}
	if r.all()[0].Path != "/services/"+token {
		t.Errorf("sent to %q", r.all()[0].Path)
	}
	out := buf.String()
	lines := warnings(out)
	if len(lines) != 1 || !strings.Contains(lines[0], "target=chat") || !strings.Contains(lines[0], "status=500") {
		t.Errorf("want one failure line naming the target:\n%s", out)
	}
	assertNoSecret(t, out, secret, token, "q1w2e3", hostOf(t, r.URL), "url_host")
}

func TestSensitiveURLNetworkError(t *testing.T) {
	r := newReceiver(t)
	dead := r.URL
	r.Close() // connection refused from now on
	const token = "hooks/abcdefSECRET"
	log, buf := testLogger()
	b := block("chat", "", "json", nil)
	b.URL = spec.Sensitive(dead + "/" + token)
	b.Headers = map[string]spec.Value{"X-Api-Key": spec.Sensitive("k3y-v4lue")}
	o := testOptions(log)
	o.Retries = 1
	n := New(map[string]*spec.Notify{"chat": b}, o)
	n.Send(sample)
	closeNotifier(t, n)
	out := buf.String()
	lines := warnings(out)
	if len(lines) != 1 || !strings.Contains(lines[0], "target=chat") || !strings.Contains(lines[0], "status=0") || !strings.Contains(lines[0], "error=") {
		t.Errorf("want one failure line naming the target:\n%s", out)
	}
	assertNoSecret(t, out, dead, token, "SECRET", hostOf(t, dead), "k3y-v4lue")
}

func TestPlainURLNetworkErrorKeepsNoPath(t *testing.T) {
	r := newReceiver(t)
	dead := r.URL
	r.Close()
	log, buf := testLogger()
	o := testOptions(log)
	o.Retries = -1
	n := New(map[string]*spec.Notify{"ops": block("ops", dead+"/hook/p4th-t0ken?x=1", "json", nil)}, o)
	n.Send(sample)
	closeNotifier(t, n)
	out := buf.String()
	if !strings.Contains(out, "url_host=\""+hostOf(t, dead)+"\"") {
		t.Errorf("non-sensitive host not logged:\n%s", out)
	}
	assertNoSecret(t, out, "p4th-t0ken", "x=1")
}

func TestBadURLLeftOut(t *testing.T) {
	log, buf := testLogger()
	b := block("chat", "", "json", nil)
	b.URL = spec.Sensitive("ftp://example.com/s3cret")
	n := New(map[string]*spec.Notify{"chat": b}, testOptions(log))
	n.Send(sample)
	closeNotifier(t, n)
	out := buf.String()
	if !strings.Contains(out, "target=chat") {
		t.Errorf("left-out target not logged:\n%s", out)
	}
	assertNoSecret(t, out, "s3cret", "example.com")
}

func TestCloseWaitsForDelivery(t *testing.T) {
	r := newReceiver(t)
	release := make(chan struct{})
	r.setBlock(release)
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, testOptions(nil))
	for i := 0; i < 3; i++ {
		n.Send(sample)
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close(context.Background()) }()
	r.waitFor(1)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with deliveries pending", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if got := len(r.all()); got != 3 {
		t.Errorf("%d delivered before Close returned, want 3", got)
	}
	n.Send(sample) // after Close: ignored, no panic
	time.Sleep(20 * time.Millisecond)
	if got := len(r.all()); got != 3 {
		t.Errorf("an event sent after Close was delivered")
	}
	if err := n.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseGivesUpWhenContextEnds(t *testing.T) {
	r := newReceiver(t)
	r.setBlock(make(chan struct{})) // never released: the receiver hangs
	log, buf := testLogger()
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, testOptions(log))
	n.Send(sample)
	n.Send(sample)
	r.waitFor(1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := n.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if !strings.Contains(buf.String(), "dropped=2") {
		t.Errorf("abandoned events not logged:\n%s", buf)
	}
}

func TestFullQueueDropsOldest(t *testing.T) {
	r := newReceiver(t)
	release := make(chan struct{})
	r.setBlock(release)
	log, buf := testLogger()
	o := testOptions(log)
	o.QueueSize = 2
	n := New(map[string]*spec.Notify{"ops": block("ops", r.URL, "json", nil)}, o)
	msg := func(i int) Event { e := sample; e.Message = "m" + strconv.Itoa(i); return e }
	n.Send(msg(1))
	r.waitFor(1) // m1 is in flight; the queue is empty
	start := time.Now()
	for i := 2; i <= 5; i++ {
		n.Send(msg(i)) // queue of 2: m2 and m3 are dropped
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Send blocked for %v", d)
	}
	close(release)
	closeNotifier(t, n)

	var got []string
	for _, q := range r.all() {
		var e Event
		if err := json.Unmarshal(q.Body, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Message)
	}
	if want := []string{"m1", "m4", "m5"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	out := buf.String()
	if !strings.Contains(out, "queue full") || !strings.Contains(out, "target=ops") || !strings.Contains(out, "dropped=2") {
		t.Errorf("drops not logged:\n%s", out)
	}
}

func TestSlowTargetDoesNotDelayOthers(t *testing.T) {
	slow := newReceiver(t)
	release := make(chan struct{})
	slow.setBlock(release)
	fast := newReceiver(t)
	n := New(map[string]*spec.Notify{
		"slow": block("slow", slow.URL, "json", nil),
		"fast": block("fast", fast.URL, "json", nil),
	}, testOptions(nil))
	n.Send(sample)
	n.Send(sample)
	slow.waitFor(1)
	fast.waitFor(2)
	close(release)
	closeNotifier(t, n)
}

func TestNilAndEmpty(t *testing.T) {
	var n *Notifier
	n.Send(sample)
	if err := n.Close(context.Background()); err != nil {
		t.Error(err)
	}
	e := New(nil, Options{})
	e.Send(sample)
	if err := e.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestDefaults(t *testing.T) {
	n := New(nil, Options{})
	defer closeNotifier(t, n)
	if n.client.Timeout != DefaultTimeout || n.retries != DefaultRetries || n.backoff != DefaultBackoff || n.queue != DefaultQueueSize {
		t.Errorf("defaults: %v %d %v %d", n.client.Timeout, n.retries, n.backoff, n.queue)
	}
	if n.client.CheckRedirect == nil {
		t.Error("the default client follows redirects")
	}
	c := &http.Client{}
	m := New(nil, Options{Client: c})
	defer closeNotifier(t, m)
	if m.client != c {
		t.Error("the caller's client was not used")
	}
}

// helpers

func warnings(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=warning") {
			lines = append(lines, l)
		}
	}
	return lines
}

func assertNoSecret(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log shows %q:\n%s", s, out)
		}
	}
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
