package diagtext_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/tendhq/tend/spec"
	"github.com/tendhq/tend/spec/diagtext"
)

const fixtures = "../../testdata/spec"

func noEnv(string) (string, bool) { return "", false }

// load parses src as main.hcl with the real loader.
func load(src []byte) (map[string]*hcl.File, hcl.Diagnostics) {
	l := spec.NewLoader(spec.Options{Environ: noEnv, TendVersion: "0.1.0"})
	_, diags := l.LoadFiles("repo", map[string][]byte{"main.hcl": src})
	return l.Files(), diags
}

// TestSameLayoutAsHCL: for the language's own fixtures (ordinary text, few
// diagnostics) the writer prints exactly what hcl's text writer prints.
func TestSameLayoutAsHCL(t *testing.T) {
	dirs, _ := filepath.Glob(fixtures + "/*/*")
	if len(dirs) < 40 {
		t.Fatalf("only %d fixtures under %s", len(dirs), fixtures)
	}
	compared := 0
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		_, files, diags := spec.Load(dir, spec.Options{Environ: noEnv, TendVersion: "0.1.0"})
		if len(diags) == 0 {
			continue
		}
		var want bytes.Buffer
		if err := hcl.NewDiagnosticTextWriter(&want, files, 78, false).WriteDiagnostics(diags); err != nil {
			t.Fatal(err)
		}
		w := diagtext.Writer{Files: files, Width: 78}
		if got := w.String(diags); got != want.String() {
			t.Errorf("%s:\n--- hcl\n%s\n--- diagtext\n%s", dir, want.String(), got)
		}
		compared++
	}
	if compared < 40 {
		t.Errorf("compared only %d fixtures", compared)
	}
}

func TestFirstErrorsThenCount(t *testing.T) {
	files, diags := load([]byte(strings.Repeat("@\n", 30)))
	diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "A warning"})
	for _, tc := range []struct {
		name     string
		max      int
		errs     int
		trailer  string
		warnings int
	}{
		{"default", 0, 20, "... 11 more errors not shown (the first 20 errors and the first 20 warnings are). HINT\n\n", 1},
		{"five", 5, 5, "... 26 more errors not shown (the first 5 errors and the first 5 warnings are). HINT\n\n", 1},
		{"all", -1, 31, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := diagtext.Writer{Files: files, Max: tc.max, Hint: "HINT"}
			out := w.String(diags)
			if n := strings.Count(out, "Error: "); n != tc.errs {
				t.Errorf("%d errors printed, want %d", n, tc.errs)
			}
			// A warning after the errors is not hidden by them.
			if n := strings.Count(out, "Warning: "); n != tc.warnings {
				t.Errorf("%d warnings printed, want %d", n, tc.warnings)
			}
			if tc.trailer != "" && !strings.HasSuffix(out, tc.trailer) {
				t.Errorf("does not end with %q:\n%s", tc.trailer, out)
			}
			if tc.trailer == "" && strings.Contains(out, "not shown") {
				t.Errorf("says something is not shown:\n%s", out)
			}
		})
	}
	w := diagtext.Writer{Max: 1}
	out := w.String(hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "a"}, {Severity: hcl.DiagError, Summary: "b"},
		{Severity: hcl.DiagWarning, Summary: "c"}, {Severity: hcl.DiagWarning, Summary: "d"}, {Severity: hcl.DiagWarning, Summary: "e"},
	})
	if want := "... 1 more error and 2 more warnings not shown"; !strings.Contains(out, want) {
		t.Errorf("missing %q:\n%s", want, out)
	}
}

func TestEscapesControlBytes(t *testing.T) {
	src := "server \"a\x1b[2J\" {\n  version = 1\x1b[31m\t@\x7f\xff\u202e\u00a0ü\r\n}\n"
	files, diags := load([]byte(src))
	if !diags.HasErrors() {
		t.Fatal("no errors")
	}
	diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "bell\a", Detail: "line\nnext\x1b[0m\x9b\u2028"})
	out := (&diagtext.Writer{Files: files, Width: 78}).String(diags)
	if c := controlBytes(out); len(c) > 0 {
		t.Errorf("control bytes %q in:\n%s", c, out)
	}
	for _, want := range []string{
		`in server "a\x1b[2J"`,                  // the block's label
		"1\\x1b[31m\t@\\x7f\\xff\\u202e\u00a0ü", // the snippet: tab, no-break space and ü kept
		`bell\x07`,                              // the summary
		"line\nnext\\x1b[0m\\x9b\\u2028",        // the detail keeps its newline
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestColorCodesAreTheWritersOwn(t *testing.T) {
	files, diags := load([]byte("x = 1\x1b[31m\n"))
	out := (&diagtext.Writer{Files: files, Color: true}).String(diags)
	if !strings.Contains(out, "\x1b[31mError\x1b[0m: ") || !strings.Contains(out, `\x1b[31m`) {
		t.Errorf("want the writer's color and the file's escape as text:\n%q", out)
	}
}

func TestLongLinesShowAWindowAroundTheSubject(t *testing.T) {
	src := "x = \"" + strings.Repeat("a", 5000) + "\" @ \"" + strings.Repeat("b", 5000) + "\"\n"
	files, diags := load([]byte(src))
	out := (&diagtext.Writer{Files: files, Color: true}).String(diags)
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "   1: ") {
			line = l
			break
		}
	}
	if line == "" {
		t.Fatalf("no snippet in:\n%s", out)
	}
	if !strings.Contains(line, "\x1b[1;4m@\x1b[0m") {
		t.Errorf("the subject is not in the window: %q", line)
	}
	if !strings.HasPrefix(line, "   1: …a") || !strings.HasSuffix(line, "b…") {
		t.Errorf("the cuts are not marked: %q", line)
	}
	if n := len(line); n > diagtext.MaxLineBytes+40 {
		t.Errorf("snippet line of %d bytes", n)
	}
}

func TestLongSnippetsAreCut(t *testing.T) {
	// A block of 50 lines as the context of a diagnostic on its label.
	src := "server \"a\" {\n" + strings.Repeat("  # x\n", 50) + "}\n"
	p := hclparse.NewParser()
	f, diags := p.ParseHCL([]byte(src), "main.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	block := f.Body.(interface{ Range() hcl.Range }).Range()
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S",
		Subject: &hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: 2, Column: 3, Byte: 15}, End: hcl.Pos{Line: 50, Column: 1, Byte: 15 + 6*48}},
		Context: &block}
	out := (&diagtext.Writer{Files: p.Files()}).String(hcl.Diagnostics{d})
	if n := len(regexp.MustCompile(`(?m)^ *\d+: `).FindAllString(out, -1)); n != diagtext.MaxSnippetLines {
		t.Errorf("%d snippet lines, want %d:\n%s", n, diagtext.MaxSnippetLines, out)
	}
	if !strings.Contains(out, "(39 more lines)") {
		t.Errorf("no count of the lines left out:\n%s", out)
	}
}

func TestMissingSource(t *testing.T) {
	d := &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "W",
		Subject: &hcl.Range{Filename: "gone\x1b.hcl", Start: hcl.Pos{Line: 3, Column: 1, Byte: 99}, End: hcl.Pos{Line: 3, Column: 2, Byte: 100}}}
	want := "Warning: W\n\n  on gone\\x1b.hcl line 3:\n  (source code not available)\n\n"
	if got := (&diagtext.Writer{}).String(hcl.Diagnostics{d}); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\twith tab": "plain text\twith tab",
		"a\nb":                 `a\x0ab`,
		"\x00\x1b\x7f":         `\x00\x1b\x7f`,
		"\xc3":                 `\xc3`,
		"\u0085\u200b\u202e":   `\u0085\u200b\u202e`,
		"\U000e0001":           `\U000e0001`,
		"日本語 ü €":              "日本語 ü €",
	} {
		if got := diagtext.Escape(in, false); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := diagtext.Escape("a\nb", true); got != "a\nb" {
		t.Errorf("newline not kept: %q", got)
	}
}

// controlBytes returns the bytes of s that a terminal would act on, other
// than newline and tab, and the C1 controls.
func controlBytes(s string) []string {
	var out []string
	for i, r := range s {
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			out = append(out, fmt.Sprintf("%q at %d", r, i))
		case r == 0xfffd && !strings.HasPrefix(s[i:], "\xef\xbf\xbd"):
			out = append(out, fmt.Sprintf("invalid UTF-8 at %d", i))
		}
	}
	return out
}

func TestLineAround(t *testing.T) {
	long := strings.Repeat("a", 1000) + "@" + strings.Repeat("b", 1000)
	for _, tc := range []struct {
		src  string
		off  int
		want string
	}{
		{"x = 1\ny = @\nz = 3\n", 10, "y = @"},
		{"x = 1\ny = @", 10, "y = @"},
		{"", 0, ""},
		{"abc", -5, "abc"},
		{"abc", 99, "abc"},
		{long, 1000, "…" + strings.Repeat("a", diagtext.MaxLineBytes/2) + "@" + strings.Repeat("b", diagtext.MaxLineBytes/2-1) + "…"},
		{"ü" + strings.Repeat("é", 200), 0, "ü" + strings.Repeat("é", diagtext.MaxLineBytes/2-1) + "…"},
	} {
		if got := diagtext.LineAround([]byte(tc.src), tc.off); got != tc.want {
			t.Errorf("LineAround(%.20q…, %d) = %q, want %q", tc.src, tc.off, got, tc.want)
		}
	}
}
