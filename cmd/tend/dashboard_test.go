package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The fleet of the dashboard tests: three servers of mcp-notes on the
// process provider; "notes" carries a secret in its environment and in a
// config file, and a backup block; "broken" runs a release that crashes at
// start, so it shows failed and held.
const dashboardFleet = `
variable "notes_version" {
  default = "VERSION"
}

provider "process" "local" {
  stop_timeout = "2s"
}

server "notes" {
  provider = provider.process.local
  version  = var.notes_version
  command  = ["BIN/mcp-notes-${version}"]
  port     = PORT0
  env = {
    NOTES_DATA_DIR = "$(TEND_VOLUME_DATA)"
    NOTES_TOKEN    = secret("notes_token")
  }
  config_file "notes.conf" {
    content = "token = ${secret("notes_token")}\n"
  }
  volume "data" {
    path = "/data"
  }
  check "health" {
    http {
      path = "/health"
    }
    interval = "200ms"
    timeout  = "200ms"
  }
  rollout {
    verify_for = "1s"
  }
  backup {
    schedule = "0 3 * * *"
    paths    = ["/data"]
  }
}

server "search" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["BIN/mcp-notes-${version}"]
  port     = PORT1
  replicas = 2
  env = {
    NOTES_DATA_DIR = "$(TEND_VOLUME_DATA)"
  }
  volume "data" {
    path = "/data"
  }
  check "health" {
    http {
      path = "/health"
    }
    interval = "200ms"
    timeout  = "200ms"
  }
  rollout {
    verify_for = "1s"
  }
}

server "broken" {
  provider = provider.process.local
  version  = "1.2.0"
  command  = ["BIN/mcp-notes-${version}"]
  port     = PORT3
  check "health" {
    http {
      path = "/health"
    }
    interval = "200ms"
    timeout  = "200ms"
  }
  rollout {
    verify_for        = "1s"
    progress_deadline = "4s"
  }
}
`

const (
	dashToken  = "dash-api-token-Qe7w"
	dashSecret = "planted-secret-Zu4x"
)

// dashFleet is a real tend run on a directory, with its replicas.
type dashFleet struct {
	t              *testing.T
	dir, stateDir  string
	notes, baseURL string
	ports          int
}

func (f *dashFleet) write(version string) {
	f.t.Helper()
	src := strings.NewReplacer("VERSION", version, "BIN", f.notes,
		"PORT0", fmt.Sprint(f.ports), "PORT1", fmt.Sprint(f.ports+1), "PORT3", fmt.Sprint(f.ports+3)).Replace(dashboardFleet)
	if err := os.WriteFile(filepath.Join(f.dir, "fleet", "main.hcl"), []byte(src), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// startDashFleet starts `tend run` (the test binary, run as tend) on the
// fleet above and waits until notes runs.
func startDashFleet(t *testing.T) *dashFleet {
	notes, err := buildNotes()
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &dashFleet{t: t, dir: dir, stateDir: filepath.Join(dir, "state"), notes: notes, ports: ports}
	if err := os.MkdirAll(filepath.Join(dir, "fleet"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write("1.0.0")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tend := filepath.Join(dir, "tend")
	if err := os.Symlink(exe, tend); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", ports+5)
	f.baseURL = "http://" + listen
	cmd := exec.Command(tend, "run", filepath.Join(dir, "fleet"), "--listen", listen, "--poll", "1h", "--autoscale-interval", "0", "--usage-interval", "0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TEND_STATE_DIR="+f.stateDir, "TEND_API_TOKEN="+dashToken,
		"TEND_SECRET_NOTES_TOKEN="+dashSecret, "TEND_ENV=", "TEND_SECRETS_DIR=", "TEND_MANAGED_BY=")
	logf, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		stopAll(f.stateDir)
		termProcs("__tend-supervise", dir, 15*time.Second)
		if log, _ := os.ReadFile(filepath.Join(dir, "run.log")); strings.Contains(string(log), dashSecret) || strings.Contains(string(log), dashToken) {
			t.Errorf("tend run's log holds a secret:\n%s", log)
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "run.log"))
			t.Logf("tend run's log:\n%s", log)
		}
	})
	f.waitFor("/fragment/servers/notes", `<span class="badge verified">verified</span>`, 90*time.Second)
	f.waitFor("/fragment/servers/search", `<span class="badge verified">verified</span>`, 30*time.Second)
	f.waitFor("/fragment/fleet?state=failed", `data-server="broken"`, 30*time.Second)
	return f
}

// get returns the body of GET path.
func (f *dashFleet) get(path string) (int, string) {
	f.t.Helper()
	res, err := http.Get(f.baseURL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (f *dashFleet) waitFor(path, sub string, d time.Duration) string {
	f.t.Helper()
	var body string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res, err := http.Get(f.baseURL + path)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if body = string(b); strings.Contains(body, sub) {
			return body
		}
	}
	f.t.Fatalf("GET %s never held %q; last:\n%s", path, sub, body)
	return ""
}

// sync asks for a pass through the JSON API.
func (f *dashFleet) sync() {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.baseURL+"/api/v1/sync", nil)
	req.Header.Set("Authorization", "Bearer "+dashToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		f.t.Fatalf("sync: %d", res.StatusCode)
	}
}

// eventLog is the event stream of a tend run, read as it comes.
type eventLog struct {
	mu     sync.Mutex
	got    strings.Builder
	cancel context.CancelFunc
	done   chan struct{}
}

func (f *dashFleet) collectEvents() *eventLog {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.baseURL+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	l := &eventLog{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			l.mu.Lock()
			l.got.WriteString(sc.Text() + "\n")
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got.String()
}

// wait waits until the stream holds sub.
func (l *eventLog) wait(t *testing.T, sub string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(l.String(), sub) {
			return
		}
	}
	t.Fatalf("the event stream never held %q:\n%s", sub, l.String())
}

func (l *eventLog) stop() string {
	l.cancel()
	<-l.done
	return l.String()
}

// TestDashboardShowsNoSecret plants a secret through secret() in the env
// and a config file of a server and reads every page, fragment and event
// of a real tend run: the secret is in none. It needs no browser.
func TestDashboardShowsNoSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	f := startDashFleet(t)
	stream := f.collectEvents()
	f.write("1.1.0")
	f.sync()
	stream.wait(t, `"kind":"apply","server":"notes","version":"1.1.0"`, 60*time.Second)
	stream.wait(t, `"kind":"pass","message":"applied"`, 30*time.Second)
	events := stream.stop()
	pages := map[string]string{"events": events}
	for _, p := range []string{"/", "/fragment/fleet", "/?state=held", "/servers/notes", "/fragment/servers/notes", "/servers/search", "/servers/broken"} {
		code, body := f.get(p)
		if code != 200 {
			t.Fatalf("GET %s: %d\n%s", p, code, body)
		}
		pages[p] = body
	}
	for p, body := range pages {
		if strings.Contains(body, dashSecret) || strings.Contains(body, dashToken) {
			t.Errorf("%s holds a secret:\n%s", p, body)
		}
	}
	// The plan of notes shows where the secret is, not what it is.
	if !strings.Contains(pages["/servers/notes"], "(sensitive)") && !strings.Contains(pages["/servers/notes"], "No changes") {
		t.Errorf("the server page of notes lacks its plan:\n%s", pages["/servers/notes"])
	}
	if !strings.Contains(pages["/servers/broken"], "held") || !strings.Contains(pages["/?state=held"], `data-server="broken"`) {
		t.Errorf("broken is not shown held:\n%s", pages["/servers/broken"])
	}
}

// chromiumPath is Debian's chromium; tests that drive it skip without it,
// and fail when TEND_REQUIRE_CHROMIUM=1.
func chromiumPath(t *testing.T) string {
	const p = "/usr/bin/chromium"
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("TEND_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("TEND_REQUIRE_CHROMIUM=1 but %s is missing (apt-get install chromium)", p)
		}
		t.Skipf("%s is missing (apt-get install chromium)", p)
	}
	return p
}

// browserErrors collects console errors, uncaught exceptions and error
// entries of the browser log (failed loads, CSP violations) of a tab.
type browserErrors struct {
	mu   sync.Mutex
	errs []string
}

func (b *browserErrors) collect(ctx context.Context) {
	for m, err := range chromedp.Console(ctx) {
		if err != nil {
			return
		}
		if m.Type == chromedp.ConsoleError || m.IsException() {
			b.mu.Lock()
			b.errs = append(b.errs, m.String())
			b.mu.Unlock()
		}
	}
}

func (b *browserErrors) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errs
	b.errs = nil
	return e
}

// TestDashboardInChromium drives Debian's chromium against a real tend
// run: the fleet page loads with no console error and shows the servers; a
// change of the desired state shows up through the event stream, without
// a reload; an action works once signed in with the API token and is
// refused without it. With -update it saves the fleet page's screenshot
// as docs/dashboard.png.
func TestDashboardInChromium(t *testing.T) {
	exe := chromiumPath(t)
	if testing.Short() {
		t.Skip("starts real servers and a browser")
	}
	f := startDashFleet(t)

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 760),
	)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelTime()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium does not start: %v", err)
	}
	var errs browserErrors
	go errs.collect(ctx)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(js string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	poll := func(what, js string, d time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(d))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// The fleet page loads, shows the servers, and connects to the stream.
	do("open the fleet page",
		chromedp.Navigate(f.baseURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-server="notes"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-server="search"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-server="broken"]`)),
	)
	if live, health := text(`tr[data-server="notes"] .live`), text(`tr[data-server="search"] .badge`); live != "1.0.0" || health != "healthy" {
		t.Fatalf("fleet page: notes runs %q, search is %q", live, health)
	}
	poll("the event stream connects", `document.getElementById('live-state').textContent.indexOf('live updates: on') === 0`, 20*time.Second)
	eval(`window.tendMarker = "same page"`)

	// A change of the desired state, applied, shows up without a reload.
	f.write("1.1.0")
	f.sync()
	poll("notes 1.1.0 shows up", `document.querySelector('tr[data-server="notes"] .live').textContent === '1.1.0'`, 60*time.Second)
	if m := eval(`window.tendMarker`); m != "same page" {
		t.Fatalf("the page reloaded (marker %v): updates must come through the event stream", m)
	}
	if ev := text(`#events`); !strings.Contains(ev, "apply notes 1.1.0") {
		t.Errorf("the event list lacks the apply: %q", ev)
	}
	if e := errs.take(); len(e) > 0 {
		t.Fatalf("console errors on the fleet page:\n%s", strings.Join(e, "\n"))
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	if *updateScripts {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Without the token: no action is offered, a POST from the page is
	// refused, and so is a wrong token.
	do("open the server page", chromedp.Navigate(f.baseURL+"/servers/notes"), chromedp.WaitVisible(chromedp.CSS(`#history`)))
	if n := eval(`document.querySelectorAll('form[action^="/actions/"]').length`); n != float64(0) {
		t.Fatalf("%v action forms offered before signing in", n)
	}
	if st := eval(`fetch('/actions/backup', {method: 'POST', body: new URLSearchParams({server: 'notes'})}).then(r => r.status)`); st != float64(http.StatusForbidden) {
		t.Fatalf("an action without a session: %v, want 403", st)
	}
	do("sign in with a wrong token",
		chromedp.SendKeys(chromedp.CSS(`#token`), "not-the-token"),
		chromedp.Click(chromedp.CSS(`#sign-in`)),
		chromedp.WaitVisible(chromedp.CSS(`#error`)),
	)
	if e := text(`#error`); !strings.Contains(e, "wrong API token") {
		t.Fatalf("a wrong token: %q", e)
	}
	errs.take() // the browser logs the two 403s above

	// With the token: sign in once, take a backup through the loop.
	do("sign in and take a backup",
		chromedp.Navigate(f.baseURL+"/servers/notes"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), dashToken),
		chromedp.Click(chromedp.CSS(`#sign-in`)),
		chromedp.WaitVisible(chromedp.CSS(`#backup-now`)),
		chromedp.Click(chromedp.CSS(`#backup-now`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if flash, backups := text(`.flash`), text(`#backups`); !strings.Contains(flash, "backup ") || !strings.Contains(flash, " taken") || !strings.Contains(backups, "manual") {
		t.Fatalf("backup: flash %q, backups %q", flash, backups)
	}
	if c := eval(`document.cookie`); c != "" {
		t.Fatalf("the session cookie is readable from script: %q", c)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, dashSecret) || strings.Contains(html, dashToken) {
		t.Fatal("the signed-in page holds a secret")
	}
	if e := errs.take(); len(e) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(e, "\n"))
	}
}
