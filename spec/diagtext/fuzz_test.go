package diagtext_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/spec/diagtext"
)

// maxOutput bounds what one Write prints, whatever the input: 20 errors and
// 20 warnings, each at most a summary, a heading, MaxSnippetLines cut lines,
// ten values and a detail, every byte of them escaped (at most 4 bytes
// out per byte in), the detail wrapped.
const maxOutput = 2 * diagtext.DefaultMax * 48 << 10

// FuzzWrite loads arbitrary bytes as a repository's file with the real
// loader and prints the diagnostics. The writer must finish quickly, print
// a bounded amount, and write no control byte but newline and tab: a
// repository must not be able to stall tend or drive the terminal of the
// person who reads its errors.
//
// The seed corpus is every fixture under testdata/spec and some garbage;
// inputs the fuzzer found worth keeping live in testdata/fuzz/FuzzWrite.
func FuzzWrite(f *testing.F) {
	seeds, _ := filepath.Glob(fixtures + "/*/*/*.hcl")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(strings.Repeat("@\n", 500)))
	f.Add([]byte("server \"a\x1b[2J\" {\n  version = \"1\x1b]0;t\x07\"\n  @\x9b\u202e\r\n}\n"))
	f.Add(bytes.Repeat([]byte{0xff, 0x1b, '@', '{', '"', '\n'}, 300))
	f.Add([]byte("x = \"" + strings.Repeat("a", 3000) + "\" @\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		files, diags := load(src)
		w := diagtext.Writer{Files: files, Width: 78, Hint: "`tend validate -o json` lists them all."}
		t0 := time.Now()
		out := w.String(diags)
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("writing %d diagnostics of %d bytes took %v", len(diags), len(src), d)
		}
		if len(out) > maxOutput {
			t.Errorf("%d bytes written for %d diagnostics, over %d", len(out), len(diags), maxOutput)
		}
		if c := controlBytes(out); len(c) > 0 {
			t.Errorf("control bytes written: %v", c)
		}
		if len(diags) > 0 && out == "" {
			t.Errorf("%d diagnostics, nothing written", len(diags))
		}
	})
}
