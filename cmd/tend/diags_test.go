package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/spec/diagtext"
)

// runWithin runs tend with args and fails the test when it has not
// finished within limit (the command goes on in the background).
func runWithin(t *testing.T, limit time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(args, &out, &errOut) }()
	select {
	case code = <-done:
		return out.String(), errOut.String(), code
	case <-time.After(limit):
		t.Fatalf("tend %s did not finish within %v", strings.Join(args, " "), limit)
		return "", "", 0
	}
}

func writeRepo(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// controlBytes returns the control bytes of s other than newline and tab.
func controlBytes(s string) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			out = append(out, c)
		}
	}
	return out
}

// TestValidateGarbageIsQuickAndBounded: a file of thousands of errors
// prints the first 20, says how many more, and takes well under a second
// (4,000 lines of "@" took 94 s with hcl's text writer, 200 KB of random
// bytes did not finish).
func TestValidateGarbageIsQuickAndBounded(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 1))
	random := make([]byte, 200<<10)
	for i := range random {
		random[i] = byte(r.IntN(256))
	}
	for name, src := range map[string][]byte{
		"at-lines": []byte(strings.Repeat("@\n", 4000)),
		"random":   random,
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, map[string][]byte{"main.hcl": src})
			_, stderr, code := runWithin(t, 20*time.Second, "validate", "--no-color", dir)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if n := strings.Count(stderr, "\nError: ") + strings.Count(stderr[:min(len(stderr), 7)], "Error: "); n != 20 {
				t.Errorf("%d errors printed, want the first 20", n)
			}
			if !strings.Contains(stderr, "more errors not shown") || !strings.Contains(stderr, "tend validate -o json") {
				t.Errorf("no count of the errors left out:\n%s", tail(stderr, 600))
			}
			if len(stderr) > 64<<10 {
				t.Errorf("%d bytes of diagnostics, want them bounded", len(stderr))
			}
		})
	}
}

// TestValidateEscapesControlBytes: escape sequences in a repository file
// reach the terminal as text, not as control bytes (8 ESC bytes came out as
// 242).
func TestValidateEscapesControlBytes(t *testing.T) {
	src := "server \"api\x1b[2J\" {\n  version = \"1.0\x1b]0;pwned\x07\"\n  @\x1b[31m\x9b2J\u202e\n}\n"
	dir := writeRepo(t, map[string][]byte{"main.hcl": []byte(src)})
	_, stderr, code := runWithin(t, 20*time.Second, "validate", "--no-color", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	if c := controlBytes(stderr); len(c) > 0 {
		t.Errorf("control bytes reach the terminal: %q\n%s", c, stderr)
	}
	for _, want := range []string{`\x1b[31m`, `\u202e`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("missing %s (the escaped form) in:\n%s", want, stderr)
		}
	}
}

// TestValidateJSONSnippetsAreCut: -o json lists every diagnostic, each with
// the line it is on; on one long line of errors that repeated the whole
// line every time (20 KB of "@" printed 408 MB in 26 s). A snippet is now a
// window of the line around the error.
func TestValidateJSONSnippetsAreCut(t *testing.T) {
	dir := writeRepo(t, map[string][]byte{"main.hcl": []byte(strings.Repeat("@", 5000))})
	stdout, _, code := runWithin(t, 20*time.Second, "validate", "-o", "json", dir)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var res struct {
		ErrorCount  int `json:"error_count"`
		Diagnostics []struct {
			Snippet string `json:"snippet"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.ErrorCount < 5000 || len(res.Diagnostics) != res.ErrorCount {
		t.Errorf("%d errors, %d diagnostics listed; want every one of the 5,000", res.ErrorCount, len(res.Diagnostics))
	}
	for _, d := range res.Diagnostics {
		if len(d.Snippet) > diagtext.MaxLineBytes+len("……") {
			t.Fatalf("a snippet of %d bytes", len(d.Snippet))
		}
	}
}

// TestValidateReadsRegularFilesOnly: a FIFO named *.hcl made validate
// block forever; now it is left out, with a warning that names it.
func TestValidateReadsRegularFilesOnly(t *testing.T) {
	dir := writeRepo(t, map[string][]byte{"main.hcl": []byte("provider \"process\" \"local\" {}\n")})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.hcl"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.hcl"), 0o755); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runWithin(t, 20*time.Second, "validate", "--no-color", dir)
	if code != 0 {
		t.Errorf("exit %d, want 0:\n%s", code, stderr)
	}
	for _, want := range []string{"Warning: Not a regular file; not read", "pipe.hcl is a named pipe", "sub.hcl is a directory"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("missing %q in:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "Success!") {
		t.Errorf("stdout: %s", stdout)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
