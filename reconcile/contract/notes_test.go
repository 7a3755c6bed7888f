package contract

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests build examples/mcp-notes in several versions and tool sets,
// run the builds as real processes on loopback ports and fetch their
// contracts, as tend does after a deploy.

var update = flag.Bool("update", false, "rewrite golden files")

// A notesBuild is one build of mcp-notes.
type notesBuild struct {
	version, toolset, fault string
}

var (
	notesDefault  = notesBuild{version: "1.4.0"}
	notesAdditive = notesBuild{version: "1.5.0", toolset: "v2-additive"}
	notesBreaking = notesBuild{version: "1.5.0", toolset: "v2-breaking"}
	notesMajor    = notesBuild{version: "2.0.0", toolset: "v2-breaking"}
	notesNoMCP    = notesBuild{version: "1.4.1", fault: "no-mcp"}
	notesBuilds   = []notesBuild{notesDefault, notesAdditive, notesBreaking, notesMajor, notesNoMCP}
)

func (b notesBuild) name() string {
	return strings.Join(slices.DeleteFunc([]string{"mcp-notes", b.version, b.toolset, b.fault}, func(s string) bool { return s == "" }), "-")
}

var (
	buildDir   string // removed by TestMain
	buildOnce  sync.Once
	buildPaths map[notesBuild]string
	buildErr   error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// notesBinary returns the path of build b; every build is made once per
// test run, on first use.
func notesBinary(t *testing.T, b notesBuild) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs mcp-notes; skipped with -short")
	}
	buildOnce.Do(func() { buildPaths, buildErr = buildNotes() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPaths[b]
}

func buildNotes() (map[notesBuild]string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("no go command in PATH: these tests build mcp-notes")
	}
	buildDir, err = os.MkdirTemp("", "tend-contract-test-")
	if err != nil {
		return nil, err
	}
	paths := map[notesBuild]string{}
	build := func(b notesBuild) error {
		ldflags := "-X main.version=" + b.version
		if b.toolset != "" {
			ldflags += " -X main.toolset=" + b.toolset
		}
		if b.fault != "" {
			ldflags += " -X main.fault=" + b.fault
		}
		out := filepath.Join(buildDir, b.name())
		cmd := exec.Command(goBin, "build", "-ldflags", ldflags, "-o", out, "./examples/mcp-notes")
		cmd.Dir = filepath.Join("..", "..")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.name(), err, msg)
		}
		return nil
	}
	// The first build fills the build cache; the others only link.
	if err := build(notesBuilds[0]); err != nil {
		return nil, err
	}
	errs := make([]error, len(notesBuilds))
	var wg sync.WaitGroup
	for i, b := range notesBuilds[1:] {
		wg.Go(func() { errs[i+1] = build(b) })
	}
	wg.Wait()
	for i, b := range notesBuilds {
		if errs[i] != nil {
			return nil, errs[i]
		}
		paths[b] = filepath.Join(buildDir, b.name())
	}
	return paths, nil
}

// startNotes runs build b, with the extra command-line arguments args, on a
// free loopback port until the test ends and returns its base URL once
// /health answers 200.
func startNotes(t *testing.T, b notesBuild, args ...string) string {
	t.Helper()
	bin := notesBinary(t, b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var out strings.Builder
	var mu sync.Mutex
	cmd := exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--data-dir", t.TempDir()}, args...)...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORT=") && !strings.HasPrefix(kv, "NOTES_DATA_DIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			mu.Lock()
			t.Logf("output of %s:\n%s", b.name(), out.String())
			mu.Unlock()
		}
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("%s exited before /health answered", b.name())
		default:
		}
		resp, err := client.Get(url + "/health")
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: /health answers %d", b.name(), resp.StatusCode)
		}
		return url
	}
	t.Fatalf("%s: /health did not answer within 15s", b.name())
	return ""
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run with -update to accept):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestMCPNotesContracts checks the contracts of real mcp-notes releases: a
// compatible minor release, a release that breaks clients under a minor
// bump (verification fails), the same release as a major one (accepted),
// and a release that answers /health but not MCP.
func TestMCPNotesContracts(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs mcp-notes; skipped with -short")
	}
	contracts := map[notesBuild]*Contract{}
	var mu sync.Mutex
	t.Run("Fetch", func(t *testing.T) {
		for _, b := range []notesBuild{notesDefault, notesAdditive, notesBreaking, notesMajor} {
			t.Run(b.name(), func(t *testing.T) {
				t.Parallel()
				c := fetch(t, FetchOptions{URL: startNotes(t, b) + "/mcp", Server: "notes"})
				if c.Version != b.version || c.Implementation != "mcp-notes" {
					t.Errorf("serverInfo = %s %s, want mcp-notes %s", c.Implementation, c.Version, b.version)
				}
				mu.Lock()
				contracts[b] = c
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	base := contracts[notesDefault]
	b, err := json.MarshalIndent(base, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "mcp-notes-1.4.0.json", append(b, '\n'))

	t.Run("CompatibleMinor", func(t *testing.T) {
		d := Compare(base, contracts[notesAdditive])
		checkDiff(t, d, nil, []string{
			`tool-added : tool "count_notes" was added`,
			`param-added limit: tool "list_notes" has a new optional parameter "limit"`,
		})
		v := Evaluate(ModeEnforce, "1.4.0", "1.5.0", d)
		if v.Fail || v.Warn || v.Bump != BumpMinor {
			t.Errorf("verdict = %+v, want accepted", v)
		}
		golden(t, "report-compatible-minor.txt", []byte(v.Report))
	})

	breaks := []string{
		`param-required body: parameter "body" of tool "add_note" is now required`,
		`tool-removed : tool "delete_note" was removed`,
		`param-type-changed tag: parameter "tag" of tool "list_notes" changed type from string to array or null`,
		`prompt-removed : prompt "summarize_notes" was removed`,
	}
	t.Run("BreakingMinor", func(t *testing.T) {
		d := Compare(base, contracts[notesBreaking])
		checkDiff(t, d, breaks, nil)
		v := Evaluate(ModeEnforce, "1.4.0", "1.5.0", d)
		if !v.Fail {
			t.Errorf("verdict = %+v, want a failure", v)
		}
		golden(t, "report-breaking-minor.txt", []byte(v.Report))
		if w := Evaluate(ModeWarn, "1.4.0", "1.5.0", d); w.Fail || !w.Warn {
			t.Errorf("contract = warn: verdict = %+v, want a warning", w)
		}
	})
	t.Run("BreakingMajor", func(t *testing.T) {
		d := Compare(base, contracts[notesMajor])
		checkDiff(t, d, breaks, nil)
		v := Evaluate(ModeEnforce, "1.4.0", "2.0.0", d)
		if v.Fail || v.Warn || v.Bump != BumpMajor {
			t.Errorf("verdict = %+v, want accepted", v)
		}
		golden(t, "report-breaking-major.txt", []byte(v.Report))
	})
}

func TestMCPNotesOverSSE(t *testing.T) {
	t.Parallel()
	url := startNotes(t, notesDefault)
	streamable := fetch(t, FetchOptions{URL: url + "/mcp"})
	sse := fetch(t, FetchOptions{URL: url + "/sse", Transport: TransportSSE})
	if d := Compare(streamable, sse); !d.IsEmpty() {
		t.Errorf("over SSE the contract differs: %+v", d)
	}
	sse.ProtocolVersion = streamable.ProtocolVersion
	a, _ := json.Marshal(streamable)
	b, _ := json.Marshal(sse)
	if string(a) != string(b) {
		t.Errorf("over SSE:\n%s\nover streamable HTTP:\n%s", b, a)
	}
}

func TestMCPNotesWithoutMCP(t *testing.T) {
	t.Parallel()
	url := startNotes(t, notesNoMCP) // /health answers 200
	_, err := Fetch(t.Context(), FetchOptions{URL: url + "/mcp"})
	if want := "POST " + url + "/mcp: the server answers 404 Not Found: not an MCP endpoint"; err == nil || err.Error() != want {
		t.Errorf("Fetch error = %v, want %s", err, want)
	}
	_, err = Fetch(t.Context(), FetchOptions{URL: url + "/sse", Transport: TransportSSE})
	if want := "GET " + url + "/sse: the server answers 404 Not Found: not an MCP endpoint"; err == nil || err.Error() != want {
		t.Errorf("Fetch error over SSE = %v, want %s", err, want)
	}
}

// TestMCPNotesSamplingTool checks, with real mcp-notes processes, a tool
// offered only to clients that declare sampling (mcp-notes
// --sampling-tool) and gone from the next release. A contract read
// declaring sampling sees the removal, which breaks clients under a minor
// bump; a read that does not declare it never sees the tool, so its
// removal is invisible: what contract_capabilities is for.
func TestMCPNotesSamplingTool(t *testing.T) {
	t.Parallel()
	old := startNotes(t, notesDefault, "--sampling-tool") // 1.4.0
	next := startNotes(t, notesAdditive)                  // 1.5.0, without the tool
	additions := []string{
		`tool-added : tool "count_notes" was added`,
		`param-added limit: tool "list_notes" has a new optional parameter "limit"`,
	}

	t.Run("Declared", func(t *testing.T) {
		t.Parallel()
		caps := []string{CapabilitySampling}
		a := fetch(t, FetchOptions{URL: old + "/mcp", ClientCapabilities: caps})
		if a.Tool("summarize_with_model") == nil {
			t.Fatalf("declaring sampling, the tools of 1.4.0 --sampling-tool are %s", toolNames(a))
		}
		d := Compare(a, fetch(t, FetchOptions{URL: next + "/mcp", ClientCapabilities: caps}))
		checkDiff(t, d, []string{`tool-removed : tool "summarize_with_model" was removed`}, additions)
		if v := Evaluate(ModeEnforce, "1.4.0", "1.5.0", d); !v.Fail || !strings.Contains(v.Report, `tool "summarize_with_model" was removed`) {
			t.Errorf("verdict = %+v, want a failure naming the tool", v)
		}
	})
	t.Run("NotDeclared", func(t *testing.T) {
		t.Parallel()
		a := fetch(t, FetchOptions{URL: old + "/mcp"})
		if a.Tool("summarize_with_model") != nil {
			t.Errorf("without sampling, the tools of 1.4.0 --sampling-tool are %s", toolNames(a))
		}
		d := Compare(a, fetch(t, FetchOptions{URL: next + "/mcp"}))
		checkDiff(t, d, nil, additions)
		if v := Evaluate(ModeEnforce, "1.4.0", "1.5.0", d); v.Fail || v.Warn {
			t.Errorf("verdict = %+v: the removal was seen without declaring sampling", v)
		}
	})
}
