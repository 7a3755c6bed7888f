package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
)

// fakeData stands beside LoopData for the handler's own behaviour: the
// real loop and engine are exercised by cmd/tend's dashboard tests.
type fakeData struct {
	mu     sync.Mutex
	fleet  Fleet
	events chan reconcile.LoopEvent
	did    []string
}

func (f *fakeData) Fleet(context.Context) (*Fleet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.fleet
	return &c, nil
}

func (f *fakeData) Server(_ context.Context, name string) (*Detail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.fleet.Servers {
		if f.fleet.Servers[i].Server == name {
			st := f.fleet.Servers[i]
			return &Detail{Status: &st, Revision: f.fleet.Revision, History: []state.Revision{
				{ID: 2, Server: name, Version: "1.1.0", SpecHash: "b", Outcome: state.OutcomeRolledBack, Message: "failed: token s3cr3t-value refused"},
				{ID: 1, Server: name, Version: "1.0.0", SpecHash: "a", Outcome: state.OutcomeVerified},
			}, Plan: "~ " + name}, nil
		}
	}
	return nil, ErrUnknownServer
}

func (f *fakeData) Subscribe(int) (<-chan reconcile.LoopEvent, func(), bool) {
	return f.events, func() {}, true
}

func (f *fakeData) Trigger(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.did = append(f.did, "trigger "+reason)
}

func (f *fakeData) Do(_ context.Context, kind, server string, to int64) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.did = append(f.did, fmt.Sprintf("%s %s %d", kind, server, to))
	return kind + " done", nil
}

func (f *fakeData) Decide(_ context.Context, server, revision, by, note string, reject bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.did = append(f.did, fmt.Sprintf("decide %s %s reject=%v note=%q by-dashboard=%v", server, revision, reject, note, strings.HasPrefix(by, "dashboard (")))
	return "decided", nil
}

func (f *fakeData) Redact(msg string) string {
	return strings.ReplaceAll(msg, "s3cr3t-value", "(sensitive)")
}

func (f *fakeData) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.did...)
}

func status(name, provider, health string) reconcile.ServerStatus {
	return reconcile.ServerStatus{
		Server: name, Provider: provider, DesiredVersion: "1.1.0", LiveVersions: []string{"1.0.0"},
		DesiredReplicas: 2, Replicas: 2, Running: 2, Health: health,
		LastRevision: &state.Revision{ID: 7, Server: name, Version: "1.0.0", Outcome: state.OutcomeVerified, Trigger: "apply", Message: "verified", StartedAt: time.Now(), FinishedAt: time.Now()},
		Instances: []providers.Instance{
			{Identity: providers.Identity{Server: name, Replica: 0, Version: "1.0.0"}, State: providers.StateRunning, Host: "10.0.0.1"},
			{Identity: providers.Identity{Server: name, Replica: 1, Version: "1.0.0"}, State: providers.StateRunning, Host: "10.0.0.2"},
		},
	}
}

func newTestDashboard(t *testing.T, token string) (*fakeData, *httptest.Server) {
	t.Helper()
	evil := status(`<script>alert("x")</script>`, "docker.edge", "degraded")
	evil.Pending = `update: "><img src=x onerror=alert(1)> s3cr3t-value`
	evil.Held = []state.Hold{{Version: "1.1.0", Reason: "verification failed"}}
	f := &fakeData{
		fleet:  Fleet{Revision: "rev-1", Servers: []reconcile.ServerStatus{status("notes", "process.local", "healthy"), evil}},
		events: make(chan reconcile.LoopEvent, 8),
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv := httptest.NewServer(New(f, Options{Token: token, Log: log}))
	t.Cleanup(srv.Close)
	return f, srv
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// inlineHandler finds an event handler attribute inside a tag.
var inlineHandler = regexp.MustCompile(`<[^>]*\son[a-z]+=`)

func TestFleetPageEscapesEveryValueAndSendsTheCSP(t *testing.T) {
	_, srv := newTestDashboard(t, "")
	for _, path := range []string{"/", "/fragment/fleet", "/servers/" + url.PathEscape(`<script>alert("x")</script>`)} {
		res, body := get(t, nil, srv.URL+path)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d\n%s", path, res.StatusCode, body)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy || !strings.Contains(got, "default-src 'self'") {
			t.Fatalf("%s: CSP %q", path, got)
		}
		for _, bad := range []string{`<script>alert`, `<img src=x`, "s3cr3t-value"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: the page holds %q unescaped", path, bad)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%s: the escaped name is missing", path)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || inlineHandler.MatchString(body) {
			t.Errorf("%s: inline script or style", path)
		}
	}
}

func TestFleetFilters(t *testing.T) {
	_, srv := newTestDashboard(t, "")
	cases := []struct {
		query     string
		want, not string
	}{
		{"provider=docker.edge", "docker.edge", `data-server="notes"`},
		{"state=healthy", `data-server="notes"`, "docker.edge<br>"},
		{"state=held", "verification failed", `data-server="notes"`},
		{"host=10.0.0.2", `data-server="notes"`, ""},
		{"host=10.9.9.9", "No server matches the filter.", `data-server="notes"`},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			_, body := get(t, nil, srv.URL+"/fragment/fleet?"+c.query)
			if !strings.Contains(body, c.want) || (c.not != "" && strings.Contains(body, c.not)) {
				t.Fatalf("want %q and not %q in\n%s", c.want, c.not, body)
			}
		})
	}
}

func TestWithoutATokenThereAreNoActions(t *testing.T) {
	f, srv := newTestDashboard(t, "")
	_, body := get(t, nil, srv.URL+"/")
	if !strings.Contains(body, "read-only: actions are off (TEND_API_TOKEN is not set)") || strings.Contains(body, `action="/actions/`) || strings.Contains(body, `action="/login"`) {
		t.Fatalf("the page offers actions or does not say they are off:\n%s", body)
	}
	for _, path := range []string{"/login", "/actions/sync", "/actions/backup"} {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader("token=&server=notes"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", srv.URL)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("POST %s without TEND_API_TOKEN: %d, want 403", path, res.StatusCode)
		}
	}
	if c := f.calls(); len(c) != 0 {
		t.Fatalf("actions ran: %v", c)
	}
}

// browser is a client with a cookie jar that does not follow redirects.
type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func newBrowser(t *testing.T, u string) *browser {
	jar := &jar{m: map[string]*http.Cookie{}}
	return &browser{t: t, url: u, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type jar struct {
	mu sync.Mutex
	m  map[string]*http.Cookie
}

func (j *jar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.m, c.Name)
		} else {
			j.m[c.Name] = c
		}
	}
}

func (j *jar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.m {
		out = append(out, c)
	}
	return out
}

func (b *browser) post(path string, form url.Values, origin string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body := get(b.t, b.c, b.url+path)
	i := strings.Index(body, `name="csrf" value="`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(`name="csrf" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestActionsNeedASessionItsCSRFTokenAndTheSameOrigin(t *testing.T) {
	const token = "api-token-xyz"
	f, srv := newTestDashboard(t, token)
	b := newBrowser(t, srv.URL)
	if res := b.post("/login", url.Values{"token": {"wrong"}}, srv.URL); res.StatusCode != 403 {
		t.Fatalf("wrong token: %d", res.StatusCode)
	}
	if res := b.post("/login", url.Values{"token": {token}}, "http://evil.example"); res.StatusCode != 403 {
		t.Fatalf("cross-origin sign-in: %d", res.StatusCode)
	}
	if b.csrf("/") != "" {
		t.Fatal("a CSRF token before signing in")
	}
	res := b.post("/login", url.Values{"token": {token}, "back": {"/servers/notes"}}, srv.URL)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/servers/notes" {
		t.Fatalf("sign-in: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	cookie := res.Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || strings.Contains(cookie.Value, token) {
		t.Fatalf("session cookie: %+v", cookie)
	}
	csrf := b.csrf("/servers/notes")
	if csrf == "" {
		t.Fatal("no CSRF token in the signed-in page")
	}
	form := url.Values{"csrf": {csrf}, "server": {"notes"}, "back": {"/servers/notes"}}

	refused := []struct {
		name   string
		form   url.Values
		origin string
		hdr    map[string]string
	}{
		{"no CSRF token", url.Values{"server": {"notes"}}, srv.URL, nil},
		{"wrong CSRF token", url.Values{"csrf": {"x" + csrf}, "server": {"notes"}}, srv.URL, nil},
		{"another origin", form, "http://evil.example", nil},
		{"no origin", form, "", nil},
		{"cross-site fetch", form, srv.URL, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, c := range refused {
		req, _ := http.NewRequest("POST", srv.URL+"/actions/backup", strings.NewReader(c.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		res, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 403 {
			t.Errorf("%s: %d, want 403", c.name, res.StatusCode)
		}
	}
	// A forged cookie (a session id without its HMAC) is no session.
	forged := newBrowser(t, srv.URL)
	forged.c.Jar.SetCookies(nil, []*http.Cookie{{Name: cookieName, Value: strings.Split(cookie.Value, ".")[0] + ".AAAA"}})
	if res := forged.post("/actions/backup", form, srv.URL); res.StatusCode != 403 {
		t.Errorf("forged cookie: %d", res.StatusCode)
	}
	if c := f.calls(); len(c) != 0 {
		t.Fatalf("refused requests ran actions: %v", c)
	}

	for _, a := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/actions/sync", form, "trigger dashboard"},
		{"/actions/backup", form, "backup notes 0"},
		{"/actions/retry", form, "retry notes 0"},
		{"/actions/rollback", url.Values{"csrf": {csrf}, "server": {"notes"}, "revision": {"1"}}, "rollback notes 1"},
	} {
		if res := b.post(a.path, a.form, srv.URL); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d", a.path, res.StatusCode)
		}
		if c := f.calls(); c[len(c)-1] != a.want {
			t.Fatalf("%s: ran %v, want %q last", a.path, c, a.want)
		}
	}
	_, body := get(t, b.c, srv.URL+"/servers/notes")
	if !strings.Contains(body, `<p class="flash" role="status">rollback done</p>`) {
		t.Fatalf("the outcome is not shown:\n%s", body)
	}
	if !strings.Contains(body, `data-revision="1"`) || strings.Contains(body, `data-revision="2"`) {
		t.Fatal("rollback is offered for other than the verified, older revision")
	}
	// A change that waits for an approval offers approve and reject, bound
	// to the revision shown; a rejection needs a reason.
	f.mu.Lock()
	f.fleet.Servers[0].WaitsFor = []string{"approval"}
	f.fleet.Servers[0].Waiting = true
	f.fleet.Servers[0].Pending = "update, waiting for an approval: tend approve notes"
	f.mu.Unlock()
	_, body = get(t, b.c, srv.URL+"/servers/notes")
	if !strings.Contains(body, `id="approve"`) || !strings.Contains(body, `name="revision" value="rev-1"`) || !strings.Contains(body, "waits for approval") {
		t.Fatalf("no approve form for a change that waits for one:\n%s", body)
	}
	if res := b.post("/actions/reject", form, srv.URL); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a rejection without a reason: %d", res.StatusCode)
	}
	approve := url.Values{"csrf": {csrf}, "server": {"notes"}, "revision": {"rev-1"}, "note": {"looks good"}}
	if res := b.post("/actions/approve", approve, srv.URL); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: %d", res.StatusCode)
	}
	if c := f.calls(); c[len(c)-1] != `decide notes rev-1 reject=false note="looks good" by-dashboard=true` {
		t.Fatalf("approve ran %q", c[len(c)-1])
	}
	if res := b.post("/logout", url.Values{"csrf": {csrf}}, srv.URL); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
	if res := b.post("/actions/sync", form, srv.URL); res.StatusCode != 403 {
		t.Fatalf("an action after sign-out: %d", res.StatusCode)
	}
}

func TestEventsStreamTheLoopsEventsRedacted(t *testing.T) {
	f, srv := newTestDashboard(t, "")
	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	f.events <- reconcile.LoopEvent{Kind: "failure", Server: "notes", Message: "token s3cr3t-value <b>", Time: time.Unix(1, 0)}
	close(f.events) // a dropped subscriber: the stream ends
	all, err := io.ReadAll(bufio.NewReader(res.Body))
	if err != nil {
		t.Fatal(err)
	}
	s := string(all)
	if !strings.Contains(s, "event: tend\ndata: {\"kind\":\"failure\",\"server\":\"notes\",\"message\":\"token (sensitive) \\u003cb\\u003e\"") {
		t.Fatalf("stream:\n%s", s)
	}
	if strings.Contains(s, "s3cr3t-value") {
		t.Fatal("the secret reached the stream")
	}
}

func TestStaticFilesAndUnknownPages(t *testing.T) {
	_, srv := newTestDashboard(t, "")
	for path, want := range map[string]string{"/ui/app.js": "text/javascript", "/ui/style.css": "text/css", "/ui/favicon.svg": "image/svg+xml", "/favicon.ico": "image/svg+xml"} {
		res, body := get(t, nil, srv.URL+path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), want) || body == "" {
			t.Errorf("%s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/nope", "/servers/nope"} {
		if res, body := get(t, nil, srv.URL+path); res.StatusCode != 404 || !strings.Contains(body, "There is no such") {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
}

func TestShorten(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"first line\nsecond", 40, "first line…"},
		{"ééééé", 3, "ééé…"},
		{"a long message", 0, "a long message"},
	} {
		if got := shorten(c.in, c.limit); got != c.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
	}
}
