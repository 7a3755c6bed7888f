package main

import (
	"encoding/json"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-isatty"
	"github.com/tendhq/tend/spec/diagtext"
	"golang.org/x/term"
)

// useColor reports whether w is a terminal that should get colors.
func useColor(w io.Writer, noColor bool) bool {
	if noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func termWidth(w io.Writer) uint {
	if f, ok := w.(*os.File); ok {
		if wd, _, err := term.GetSize(int(f.Fd())); err == nil && wd > 0 {
			return uint(wd)
		}
	}
	return 78
}

// printDiags writes diagnostics for a person: file:line:col, a snippet of
// the source, the summary and the detail (the same layout as Terraform),
// the first diagtext.DefaultMax errors and warnings, with control bytes
// escaped.
func printDiags(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, noColor bool) {
	if len(diags) == 0 {
		return
	}
	wr := diagtext.Writer{Files: files, Width: termWidth(w), Color: useColor(w, noColor), Hint: "`tend validate -o json` lists them all."}
	_ = wr.Write(w, diags)
}

// jsonDiag is the machine form of one diagnostic.
type jsonDiag struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
	Snippet  string     `json:"snippet,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func toJSONDiags(files map[string]*hcl.File, diags hcl.Diagnostics) []jsonDiag {
	out := make([]jsonDiag, 0, len(diags))
	for _, d := range diags {
		jd := jsonDiag{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if d.Subject != nil {
			r := d.Subject
			jd.Range = &jsonRange{
				Filename: r.Filename,
				Start:    jsonPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:      jsonPos{r.End.Line, r.End.Column, r.End.Byte},
			}
			if f, ok := files[r.Filename]; ok && f != nil {
				if r.Start.Byte <= len(f.Bytes) {
					jd.Snippet = diagtext.LineAround(f.Bytes, r.Start.Byte)
				}
			}
		}
		out = append(out, jd)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func countDiags(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warns++
		}
	}
	return
}
