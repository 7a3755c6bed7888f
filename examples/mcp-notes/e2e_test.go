package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The end-to-end tests build mcp-notes with go build, in several versions
// and with faults, run the binaries as real processes on loopback ports and
// talk to them over HTTP and MCP.

const testVersion = "1.2.3"

// binaries are the builds under test.
type binaries struct {
	good, crash, unhealthy, noMCP  string
	additive, breaking, badToolset string // tool sets
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mcp-notes binaries; skipped with -short")
	}
	bins := buildAll(t)

	t.Run("Version", func(t *testing.T) {
		t.Parallel()
		out, err := exec.Command(bins.good, "--version").Output()
		if err != nil {
			t.Fatalf("mcp-notes --version: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != testVersion {
			t.Errorf("--version printed %q, want %q", got, testVersion)
		}
	})
	t.Run("ToolsMetricsRestartAndSIGTERM", func(t *testing.T) { t.Parallel(); testToolsAndRestart(t, bins) })
	t.Run("RateLimit", func(t *testing.T) { t.Parallel(); testRateLimit(t, bins) })
	t.Run("Reload", func(t *testing.T) { t.Parallel(); testReload(t, bins) })
	t.Run("Precedence", func(t *testing.T) { t.Parallel(); testPrecedence(t, bins) })
	t.Run("BadConfig", func(t *testing.T) { t.Parallel(); testBadConfig(t, bins) })
	t.Run("FaultCrash", func(t *testing.T) { t.Parallel(); testFaultCrash(t, bins) })
	t.Run("FaultUnhealthy", func(t *testing.T) { t.Parallel(); testFaultUnhealthy(t, bins) })
	t.Run("FaultNoMCP", func(t *testing.T) { t.Parallel(); testFaultNoMCP(t, bins) })
	t.Run("SSE", func(t *testing.T) { t.Parallel(); testSSE(t, bins) })
	t.Run("Toolsets", func(t *testing.T) { t.Parallel(); testToolsets(t, bins) })
	t.Run("UnknownToolset", func(t *testing.T) { t.Parallel(); testUnknownToolset(t, bins) })
}

// buildAll builds the binaries, in parallel, into a temporary directory.
func buildAll(t *testing.T) binaries {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command in PATH: these tests build mcp-notes")
	}
	dir := t.TempDir()
	type build struct {
		dst     *string
		name    string
		fault   string
		toolset string
		failed  error
	}
	var bins binaries
	builds := []*build{
		{dst: &bins.good, name: "mcp-notes-" + testVersion},
		{dst: &bins.crash, name: "mcp-notes-crash", fault: faultCrash},
		{dst: &bins.unhealthy, name: "mcp-notes-unhealthy", fault: faultUnhealthy},
		{dst: &bins.noMCP, name: "mcp-notes-no-mcp", fault: faultNoMCP},
		{dst: &bins.additive, name: "mcp-notes-additive", toolset: toolsetAdditive},
		{dst: &bins.breaking, name: "mcp-notes-breaking", toolset: toolsetBreaking},
		{dst: &bins.badToolset, name: "mcp-notes-bad-toolset", toolset: "v3-nonsense"},
	}
	// The first build compiles the dependencies into the build cache; the
	// others, which differ only in their -X flags, then only link, in parallel.
	build1 := func(b *build) {
		out := filepath.Join(dir, b.name)
		ldflags := "-X main.version=" + testVersion
		if b.fault != "" {
			ldflags += " -X main.fault=" + b.fault
		}
		if b.toolset != "" {
			ldflags += " -X main.toolset=" + b.toolset
		}
		cmd := exec.Command(goBin, "build", "-ldflags", ldflags, "-o", out, ".")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.failed = fmt.Errorf("go build %s: %v\n%s", b.name, err, msg)
			return
		}
		*b.dst = out
	}
	build1(builds[0])
	var wg sync.WaitGroup
	for _, b := range builds[1:] {
		wg.Go(func() { build1(b) })
	}
	wg.Wait()
	for _, b := range builds {
		if b.failed != nil {
			t.Fatal(b.failed)
		}
	}
	return bins
}

func testToolsAndRestart(t *testing.T, bins binaries) {
	dataDir := t.TempDir()
	p := startNotes(t, bins.good, nil, "--data-dir", dataDir)

	var health struct {
		Status  string `json:"status"`
		Version string `json:"version"`
		Notes   *int   `json:"notes"`
	}
	code, body := p.waitHealth(t)
	if code != http.StatusOK {
		t.Fatalf("/health: %d %s", code, body)
	}
	mustUnmarshal(t, body, &health)
	if health.Status != "ok" || health.Version != testVersion || health.Notes == nil || *health.Notes != 0 {
		t.Errorf("/health = %s, want status ok, version %s, notes 0", body, testVersion)
	}

	cs := connect(t, p.url)
	if info := cs.InitializeResult().ServerInfo; info.Name != "mcp-notes" || info.Version != testVersion {
		t.Errorf("serverInfo = %s %s, want mcp-notes %s", info.Name, info.Version, testVersion)
	}

	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		if tool.Description == "" || tool.InputSchema == nil {
			t.Errorf("tool %s has no description or no input schema", tool.Name)
		}
	}
	for _, want := range toolNames {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list = %v, missing %s", names, want)
		}
	}

	var added Note
	res := callTool(t, cs, "add_note", map[string]any{
		"title": "Buy oat milk",
		"body":  "At the Farmers Market on Saturday morning",
		"tags":  []string{"Errands", "errands", " shopping "},
	})
	structured(t, res, &added)
	if added.ID == "" || added.Title != "Buy oat milk" || !slices.Equal(added.Tags, []string{"errands", "shopping"}) {
		t.Errorf("add_note returned %+v", added)
	}

	// Tool errors are results with isError, not protocol errors.
	wantToolError(t, callTool(t, cs, "add_note", map[string]any{"title": "   ", "body": "x"}), "title must not be empty")
	wantToolError(t, callTool(t, cs, "add_note", map[string]any{"body": "no title"}), "title")
	wantToolError(t, callTool(t, cs, "get_note", map[string]any{"id": "no-such-note"}), `no note with id "no-such-note"`)

	var found notesOutput
	structured(t, callTool(t, cs, "search_notes", map[string]any{"query": "FARMERS market"}), &found)
	if found.Count != 1 || len(found.Notes) != 1 || found.Notes[0].ID != added.ID {
		t.Errorf("search_notes(FARMERS market) = %+v, want the added note", found)
	}
	structured(t, callTool(t, cs, "search_notes", map[string]any{"query": "nothing like this"}), &found)
	if found.Count != 0 {
		t.Errorf("search_notes(nothing like this) = %+v, want none", found)
	}
	structured(t, callTool(t, cs, "list_notes", map[string]any{"tag": "ERRANDS"}), &found)
	if found.Count != 1 {
		t.Errorf("list_notes(ERRANDS) = %+v, want one", found)
	}
	structured(t, callTool(t, cs, "list_notes", map[string]any{"tag": "work"}), &found)
	if found.Count != 0 {
		t.Errorf("list_notes(work) = %+v, want none", found)
	}

	_, body = get(t, p.url+"/health")
	mustUnmarshal(t, body, &health)
	if *health.Notes != 1 {
		t.Errorf("/health notes = %d after one add_note, want 1", *health.Notes)
	}

	resp, body := get(t, p.url+"/metrics")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type = %q", ct)
	}
	for _, want := range []string{
		`mcp_notes_build_info{version="` + testVersion + `"} 1`,
		`mcp_notes_notes 1`,
		`mcp_notes_tool_calls_total{tool="add_note"} 3`,
		`mcp_notes_tool_errors_total{tool="add_note"} 2`,
		`mcp_notes_tool_calls_total{tool="search_notes"} 2`,
		`mcp_notes_tool_calls_total{tool="get_note"} 1`,
		`mcp_notes_tool_errors_total{tool="get_note"} 1`,
		`mcp_notes_tool_calls_total{tool="delete_note"} 0`,
		`# TYPE mcp_notes_http_requests_total counter`,
		`mcp_notes_http_requests_total{path="/health",code="200"} `,
		`mcp_notes_http_requests_total{path="/mcp",code="200"} `,
		`# TYPE process_start_time_seconds gauge`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if !regexp.MustCompile(`(?m)^process_start_time_seconds \d{10}(\.\d+)?$`).MatchString(body) {
		t.Errorf("/metrics has no sane process_start_time_seconds:\n%s", body)
	}

	// SIGTERM with an MCP session still open (its event stream too): a
	// graceful stop, well within the 5 s bound, exit 0.
	stopped := time.Now()
	if code := p.signal(t, syscall.SIGTERM, 8*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, p.log())
	}
	if d := time.Since(stopped); d > 4*time.Second {
		t.Errorf("SIGTERM took %v to stop the process", d)
	}
	logs := p.log()
	for _, want := range []string{
		`msg="mcp-notes starting" version=` + testVersion + ` addr=127.0.0.1:` + strconv.Itoa(p.port) + ` data_dir=` + dataDir,
		`msg=request method=POST path=/mcp code=200 duration=`,
		`msg=request method=GET path=/health code=200 duration=`,
		`msg=stopped`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, logs)
		}
	}

	// The note is on disk, written atomically: no temporary file is left.
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != notesFile {
		t.Errorf("data dir holds %v, want only %s", entries, notesFile)
	}

	// A new process on the same data dir has the note.
	p2 := startNotes(t, bins.good, nil, "--data-dir", dataDir)
	if code, body := p2.waitHealth(t); code != http.StatusOK || !strings.Contains(body, `"notes":1`) {
		t.Fatalf("/health after restart: %d %s", code, body)
	}
	cs2 := connect(t, p2.url)
	var got Note
	structured(t, callTool(t, cs2, "get_note", map[string]any{"id": added.ID}), &got)
	if got.ID != added.ID || got.Title != added.Title || got.Body != added.Body || !got.CreatedAt.Equal(added.CreatedAt) {
		t.Errorf("get_note after restart = %+v, want %+v", got, added)
	}
	structured(t, callTool(t, cs2, "search_notes", map[string]any{"query": "oat"}), &found)
	if found.Count != 1 {
		t.Errorf("search_notes(oat) after restart = %+v", found)
	}
	var deleted deleteNoteOutput
	structured(t, callTool(t, cs2, "delete_note", map[string]any{"id": added.ID}), &deleted)
	if deleted.Deleted.ID != added.ID {
		t.Errorf("delete_note = %+v", deleted)
	}
	wantToolError(t, callTool(t, cs2, "delete_note", map[string]any{"id": added.ID}), "no note with id")
	wantToolError(t, callTool(t, cs2, "get_note", map[string]any{"id": added.ID}), "no note with id")
	if code := p2.signal(t, syscall.SIGTERM, 8*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

func testRateLimit(t *testing.T, bins binaries) {
	cfg := writeFile(t, "config.yaml", `
host: 127.0.0.1
workers: 2
rate_limiting:
  enabled: true
  max_requests: 3
  window: 60
`)
	p := startNotes(t, bins.good, nil, "--config", cfg, "--data-dir", t.TempDir())
	if code, body := p.waitHealth(t); code != http.StatusOK {
		t.Fatalf("/health: %d %s", code, body)
	}
	for i := 1; i <= 3; i++ {
		if resp, _ := get(t, p.url+"/mcp"); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d of 3 got 429", i)
		}
	}
	resp, body := get(t, p.url+"/mcp")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("request 4 of a budget of 3: %d %s, want 429", resp.StatusCode, body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
	}
	// Probes and scrapes are not limited.
	if resp, body := get(t, p.url+"/health"); resp.StatusCode != http.StatusOK {
		t.Errorf("/health while rate limited: %d %s", resp.StatusCode, body)
	}
	if _, body := get(t, p.url+"/metrics"); !strings.Contains(body, `mcp_notes_http_requests_total{path="/mcp",code="429"} 1`) {
		t.Errorf("/metrics does not count the 429:\n%s", body)
	}
	if !strings.Contains(p.log(), "rate_limiting=\"3 requests per 60s per client IP\"") {
		t.Errorf("the start line does not show the rate limit:\n%s", p.log())
	}
}

// testPrecedence checks flags > environment > config file.
func testPrecedence(t *testing.T, bins binaries) {
	cfgPort, envPort, flagPort := freePort(t), freePort(t), freePort(t)
	cfgDir, envDir, flagDir := t.TempDir(), t.TempDir(), t.TempDir()
	cfg := writeFile(t, "config.yaml", fmt.Sprintf("port: %d\ndata_dir: %s\n", cfgPort, cfgDir))
	env := []string{"PORT=" + strconv.Itoa(envPort), "NOTES_DATA_DIR=" + envDir}

	p := startProcess(t, bins.good, envPort, env, "--config", cfg)
	if code, body := p.waitHealth(t); code != http.StatusOK {
		t.Fatalf("/health on $PORT: %d %s", code, body)
	}
	if !strings.Contains(p.log(), "data_dir="+envDir) {
		t.Errorf("NOTES_DATA_DIR does not override the config file:\n%s", p.log())
	}

	p2 := startProcess(t, bins.good, flagPort, env,
		"--config", cfg, "--port", strconv.Itoa(flagPort), "--data-dir", flagDir)
	if code, body := p2.waitHealth(t); code != http.StatusOK {
		t.Fatalf("/health on --port: %d %s", code, body)
	}
	if !strings.Contains(p2.log(), "data_dir="+flagDir) {
		t.Errorf("--data-dir does not override NOTES_DATA_DIR:\n%s", p2.log())
	}
}

func testBadConfig(t *testing.T, bins binaries) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"UnknownKey", "port: 9000\ncolour: blue\n", `unknown key "colour"`},
		{"UnknownNestedKey", "rate_limiting:\n  enabled: true\n  burst: 5\n", `unknown key "rate_limiting.burst"`},
		{"WrongType", "workers: many\n", `workers must be an integer, got "many"`},
		{"BadValue", "workers: 0\n", `workers must be at least 1`},
		{"NotYAML", "port: [1,\n", "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := writeFile(t, "config.yaml", tc.config)
			p := startProcess(t, bins.good, freePort(t), nil, "--config", cfg, "--data-dir", t.TempDir())
			code, ok := p.waitExit(10 * time.Second)
			if !ok {
				t.Fatalf("mcp-notes with a bad config did not exit:\n%s", p.log())
			}
			if code != 2 {
				t.Errorf("exit code = %d, want 2", code)
			}
			if !strings.Contains(p.log(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, p.log())
			}
		})
	}
	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, bins.good, freePort(t), nil, "--config", filepath.Join(t.TempDir(), "nope.yaml"))
		if code, ok := p.waitExit(10 * time.Second); !ok || code != 2 {
			t.Errorf("exit code = %d (exited: %v), want 2\n%s", code, ok, p.log())
		}
	})
}

func testFaultCrash(t *testing.T, bins binaries) {
	p := startNotes(t, bins.crash, nil, "--data-dir", t.TempDir())
	code, ok := p.waitExit(10 * time.Second)
	if !ok {
		t.Fatalf("the crash build did not exit by itself:\n%s", p.log())
	}
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if lived := p.exitedAt.Sub(p.started); lived < 250*time.Millisecond {
		t.Errorf("the crash build exited after %v, want about 300ms", lived)
	}
	if !strings.Contains(p.log(), "level=ERROR") || !strings.Contains(p.log(), "simulated crash") {
		t.Errorf("the crash build logged no error:\n%s", p.log())
	}
}

func testFaultUnhealthy(t *testing.T, bins binaries) {
	p := startNotes(t, bins.unhealthy, nil, "--data-dir", t.TempDir())
	code, body := p.waitHealth(t)
	if code != http.StatusServiceUnavailable {
		t.Errorf("/health of the unhealthy build: %d, want 503", code)
	}
	var health struct{ Status string }
	mustUnmarshal(t, body, &health)
	if health.Status != "failing" {
		t.Errorf("/health of the unhealthy build = %s, want status failing", body)
	}
	// Everything else is served.
	if resp, _ := get(t, p.url+"/metrics"); resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics of the unhealthy build: %d", resp.StatusCode)
	}
	cs := connect(t, p.url)
	structured(t, callTool(t, cs, "list_notes", map[string]any{}), &notesOutput{})
}

func testFaultNoMCP(t *testing.T, bins binaries) {
	p := startNotes(t, bins.noMCP, nil, "--data-dir", t.TempDir())
	if code, body := p.waitHealth(t); code != http.StatusOK {
		t.Errorf("/health of the no-mcp build: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, p.url+"/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /mcp of the no-mcp build: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, p.url+"/sse"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /sse of the no-mcp build: %d, want 404", resp.StatusCode)
	}
}

// testSSE talks to the server over the HTTP+SSE transport at /sse.
func testSSE(t *testing.T, bins binaries) {
	p := startNotes(t, bins.good, nil, "--data-dir", t.TempDir())
	if code, body := p.waitHealth(t); code != http.StatusOK {
		t.Fatalf("/health: %d %s", code, body)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcp-notes-test", Version: "0"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.SSEClientTransport{Endpoint: p.url + "/sse"}, nil)
	if err != nil {
		t.Fatalf("MCP connect over SSE: %v", err)
	}
	defer cs.Close()
	if v := cs.InitializeResult().ServerInfo.Version; v != testVersion {
		t.Errorf("serverInfo.version over SSE = %q, want %q", v, testVersion)
	}
	var added Note
	structured(t, callTool(t, cs, "add_note", map[string]any{"title": "over SSE"}), &added)
	var found notesOutput
	structured(t, callTool(t, cs, "list_notes", map[string]any{}), &found)
	if found.Count != 1 || found.Notes[0].ID != added.ID {
		t.Errorf("list_notes over SSE = %+v", found)
	}
	_ = cs.Close()
	// The event stream does not hold a SIGTERM up.
	if code := p.signal(t, syscall.SIGTERM, 8*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// testToolsets checks that the tool-set builds serve their tools over HTTP
// and name the tool set in their start line.
func testToolsets(t *testing.T, bins binaries) {
	for _, tc := range []struct {
		bin, set string
	}{{bins.additive, toolsetAdditive}, {bins.breaking, toolsetBreaking}} {
		t.Run(tc.set, func(t *testing.T) {
			t.Parallel()
			p := startNotes(t, tc.bin, nil, "--data-dir", t.TempDir())
			if code, body := p.waitHealth(t); code != http.StatusOK {
				t.Fatalf("/health: %d %s", code, body)
			}
			cs := connect(t, p.url)
			res, err := cs.ListTools(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
			}
			slices.Sort(names)
			if want := slices.Sorted(slices.Values(toolsets[tc.set])); !slices.Equal(names, want) {
				t.Errorf("tools/list = %v, want %v", names, want)
			}
			if !strings.Contains(p.log(), "toolset="+tc.set) {
				t.Errorf("the start line does not name the tool set:\n%s", p.log())
			}
			// /metrics counts the tools of this set.
			_, body := get(t, p.url+"/metrics")
			for _, name := range toolsets[tc.set] {
				if !strings.Contains(body, `mcp_notes_tool_calls_total{tool="`+name+`"} 0`) {
					t.Errorf("/metrics lacks the tool %s:\n%s", name, body)
				}
			}
		})
	}
}

func testUnknownToolset(t *testing.T, bins binaries) {
	p := startNotes(t, bins.badToolset, nil, "--data-dir", t.TempDir())
	code, ok := p.waitExit(10 * time.Second)
	if !ok {
		t.Fatalf("a build with an unknown tool set did not exit:\n%s", p.log())
	}
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(p.log(), "unknown tool set") || !strings.Contains(p.log(), "toolset=v3-nonsense") {
		t.Errorf("stderr does not name the unknown tool set:\n%s", p.log())
	}
}

// A process is one running mcp-notes.
type process struct {
	cmd      *exec.Cmd
	port     int
	url      string
	out      *syncBuffer
	started  time.Time
	done     chan struct{}
	exitCode int       // valid after done is closed
	exitedAt time.Time // valid after done is closed
}

// startNotes starts bin on a free loopback port.
func startNotes(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	port := freePort(t)
	return startProcess(t, bin, port, env, append([]string{"--port", strconv.Itoa(port)}, args...)...)
}

// startProcess starts bin with args and env; port is where it should listen.
// The process is killed, if still running, when the test ends.
func startProcess(t *testing.T, bin string, port int, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(testEnv(), env...)
	cmd.Dir = t.TempDir()
	p := &process{
		cmd:  cmd,
		port: port,
		url:  "http://127.0.0.1:" + strconv.Itoa(port),
		out:  &syncBuffer{},
		done: make(chan struct{}),
	}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p.started = time.Now()
	go func() {
		_ = cmd.Wait()
		p.exitedAt = time.Now()
		p.exitCode = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), p.log())
		}
	})
	return p
}

// testEnv is the test's environment without the variables mcp-notes reads.
func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORT=") && !strings.HasPrefix(kv, "NOTES_DATA_DIR=") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *process) log() string { return p.out.String() }

// waitHealth waits until /health answers and returns its code and body.
func (p *process) waitHealth(t *testing.T) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("mcp-notes exited with %d before /health answered:\n%s", p.exitCode, p.log())
		default:
		}
		resp, err := client.Get(p.url + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(body)
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("/health did not answer within 15s:\n%s", p.log())
	return 0, ""
}

// waitExit waits up to d for the process to exit.
func (p *process) waitExit(d time.Duration) (code int, exited bool) {
	select {
	case <-p.done:
		return p.exitCode, true
	case <-time.After(d):
		return 0, false
	}
}

// signal sends sig and waits up to d for the exit; it returns the exit code.
func (p *process) signal(t *testing.T, sig os.Signal, d time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	code, ok := p.waitExit(d)
	if !ok {
		t.Fatalf("mcp-notes did not exit within %v of %v:\n%s", d, sig, p.log())
	}
	return code
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

func mustUnmarshal(t *testing.T, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
}

// connect opens an MCP session over streamable HTTP; it is closed when the
// test ends.
func connect(t *testing.T, baseURL string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcp-notes-test", Version: "0"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   baseURL + "/mcp",
		MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("MCP connect to %s: %v", baseURL, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// callTool calls a tool; a protocol error fails the test.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: protocol error %v", name, err)
	}
	return res
}

// structured decodes a successful tool result's structured content into v.
func structured(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", resultText(res))
	}
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding structured content %s: %v", data, err)
	}
}

func wantToolError(t *testing.T, res *mcp.CallToolResult, want string) {
	t.Helper()
	if !res.IsError {
		t.Errorf("got a tool result, want a tool error containing %q", want)
		return
	}
	if text := resultText(res); !strings.Contains(text, want) {
		t.Errorf("tool error %q, want it to contain %q", text, want)
	}
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testReload: SIGHUP and POST /admin/reload apply rate limiting at once in
// the same process; a change that needs a restart, or a config that does
// not load, makes /health answer 503 with the reason, and the server keeps
// serving; a good config clears it again.
func testReload(t *testing.T, bins binaries) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("workers: 2\n")
	p := startNotes(t, bins.good, nil, "--config", cfg, "--data-dir", t.TempDir())
	if code, body := p.waitHealth(t); code != http.StatusOK {
		t.Fatalf("/health: %d %s", code, body)
	}
	type health struct {
		Status       string `json:"status"`
		PID          int    `json:"pid"`
		Reloads      int    `json:"reloads"`
		RateLimiting string `json:"rate_limiting"`
		Reason       string `json:"reason"`
	}
	healthNow := func() (int, health) {
		t.Helper()
		resp, body := get(t, p.url+"/health")
		var h health
		mustUnmarshal(t, body, &h)
		return resp.StatusCode, h
	}
	waitReloads := func(n int) (int, health) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, h := healthNow()
			if h.Reloads >= n || code != http.StatusOK || time.Now().After(deadline) {
				return code, h
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	_, h0 := healthNow()
	if h0.PID != p.cmd.Process.Pid || h0.Reloads != 0 || h0.RateLimiting != "off" {
		t.Fatalf("/health at start = %+v, want pid %d, 0 reloads, rate limiting off", h0, p.cmd.Process.Pid)
	}

	write("workers: 2\nrate_limiting:\n  enabled: true\n  max_requests: 1\n  window: 60\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	code, h := waitReloads(1)
	if code != http.StatusOK || h.Reloads != 1 || h.RateLimiting != "1 requests per 60s per client IP" || h.PID != h0.PID {
		t.Fatalf("/health after SIGHUP = %d %+v", code, h)
	}
	get(t, p.url+"/mcp")
	if resp, _ := get(t, p.url+"/mcp"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the reloaded rate limit is not in force: the second request got %d", resp.StatusCode)
	}

	// A setting taken only at start: 503 with the reason, over HTTP too.
	write("workers: 3\n")
	resp, body := post(t, p.url+"/admin/reload")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "workers changed from 2 to 3: restart to apply it") {
		t.Fatalf("POST /admin/reload of a workers change: %d %s", resp.StatusCode, body)
	}
	if code, h := healthNow(); code != http.StatusServiceUnavailable || !strings.Contains(h.Reason, "workers changed") {
		t.Fatalf("/health after a change that needs a restart = %d %+v", code, h)
	}

	// A config that does not load: still serving, 503 with why.
	write("workers: 0\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, h := healthNow()
		if strings.Contains(h.Reason, "config reload failed") {
			if code != http.StatusServiceUnavailable {
				t.Fatalf("/health of a failed reload = %d", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health never reported the failed reload: %d %+v", code, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.log(), "config reload failed") {
		t.Errorf("the log does not say the reload failed:\n%s", p.log())
	}

	// Back to a good config: healthy again, rate limiting off, same process.
	write("workers: 2\n")
	resp, body = post(t, p.url+"/admin/reload")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /admin/reload of a good config: %d %s", resp.StatusCode, body)
	}
	if code, h := healthNow(); code != http.StatusOK || h.RateLimiting != "off" || h.PID != h0.PID || h.Reloads != 4 {
		t.Fatalf("/health after the good reload = %d %+v", code, h)
	}
}

func post(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
