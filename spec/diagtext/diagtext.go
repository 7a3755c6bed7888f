package diagtext

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	wordwrap "github.com/mitchellh/go-wordwrap"
	"github.com/zclconf/go-cty/cty"
)

// Bounds of what one diagnostic prints.
const (
	// DefaultMax is how many errors, and separately how many warnings, a
	// Writer prints when its Max is 0.
	DefaultMax = 20
	// MaxSnippetLines is the most source lines one snippet shows.
	MaxSnippetLines = 10
	// MaxLineBytes is the most bytes of source one snippet line shows: a
	// window around the highlight, marked with "…" where it was cut.
	MaxLineBytes = 200
	// MaxSummaryBytes and MaxDetailBytes cut a summary and a detail.
	MaxSummaryBytes = 300
	MaxDetailBytes  = 4000
	// maxValueBytes cuts one "with NAME as VALUE" statement, and at most
	// maxValues of them are printed.
	maxValueBytes = 200
	maxValues     = 10
)

// Writer prints diagnostics as text. The zero value prints without
// snippets, without wrapping and without color.
type Writer struct {
	// Files are the parsed files by name, for the snippets.
	Files map[string]*hcl.File
	// Width wraps the detail text; 0 does not wrap.
	Width uint
	// Color highlights the severity and the subject with VT100 codes.
	Color bool
	// Max is how many errors, and separately how many warnings, are
	// printed; 0 means DefaultMax, negative means all of them.
	Max int
	// Hint ends the line that counts the diagnostics not printed, such as
	// "`tend validate -o json` lists them all."
	Hint string
}

// Write prints diags to out: the first Max errors and the first Max
// warnings in their order, then how many were left out.
func (w *Writer) Write(out io.Writer, diags hcl.Diagnostics) error {
	limit := w.Max
	if limit == 0 {
		limit = DefaultMax
	}
	p := &printer{w: w, lines: map[string][]int{}}
	var errs, warns, moreErrs, moreWarns int
	for _, d := range diags {
		if d == nil {
			continue
		}
		n, more := &errs, &moreErrs
		if d.Severity != hcl.DiagError {
			n, more = &warns, &moreWarns
		}
		if limit >= 0 && *n >= limit {
			*more++
			continue
		}
		*n++
		p.diagnostic(d)
	}
	if moreErrs+moreWarns > 0 {
		var parts []string
		if moreErrs > 0 {
			parts = append(parts, fmt.Sprintf("%d more %s", moreErrs, plural(moreErrs, "error", "errors")))
		}
		if moreWarns > 0 {
			parts = append(parts, fmt.Sprintf("%d more %s", moreWarns, plural(moreWarns, "warning", "warnings")))
		}
		fmt.Fprintf(&p.buf, "... %s not shown (the first %d errors and the first %d warnings are).", strings.Join(parts, " and "), limit, limit)
		if w.Hint != "" {
			p.buf.WriteByte(' ')
			p.buf.WriteString(escape(w.Hint, true))
		}
		p.buf.WriteString("\n\n")
	}
	_, err := out.Write(p.buf.Bytes())
	return err
}

// String returns what Write prints.
func (w *Writer) String(diags hcl.Diagnostics) string {
	var b strings.Builder
	_ = w.Write(&b, diags)
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// printer is one Write: the output, and the line index of every file a
// snippet was taken from.
type printer struct {
	w     *Writer
	buf   bytes.Buffer
	lines map[string][]int // file name → byte offset of each line's start
}

func (p *printer) diagnostic(d *hcl.Diagnostic) {
	var color, highlight, reset string
	if p.w.Color {
		switch d.Severity {
		case hcl.DiagError:
			color = "\x1b[31m"
		case hcl.DiagWarning:
			color = "\x1b[33m"
		}
		reset = "\x1b[0m"
		highlight = "\x1b[1;4m"
	}
	severity := "???????"
	switch d.Severity {
	case hcl.DiagError:
		severity = "Error"
	case hcl.DiagWarning:
		severity = "Warning"
	}
	fmt.Fprintf(&p.buf, "%s%s%s: %s\n\n", color, severity, reset, escape(clip(d.Summary, MaxSummaryBytes), false))

	if d.Subject != nil {
		p.snippet(d, highlight, reset)
		p.values(d)
	}
	if d.Detail != "" {
		detail := escape(clip(d.Detail, MaxDetailBytes), true)
		if p.w.Width != 0 {
			detail = wordwrap.WrapString(detail, p.w.Width)
		}
		fmt.Fprintf(&p.buf, "%s\n\n", detail)
	}
}

// snippet prints "on FILE line N, in BLOCK:" and the source lines the
// subject (and its context) cover, as hcl's writer does.
func (p *printer) snippet(d *hcl.Diagnostic, highlight, reset string) {
	subject := *d.Subject
	snip, hl := subject, subject
	if d.Context != nil {
		snip = hcl.RangeOver(snip, *d.Context)
	}
	// An empty range cannot be shown: widen it to one byte.
	if snip.Empty() {
		snip.End.Byte++
		snip.End.Column++
	}
	if hl.Empty() {
		hl.End.Byte++
		hl.End.Column++
	}
	name := escape(subject.Filename, false)
	file := p.w.Files[subject.Filename]
	if file == nil || file.Bytes == nil {
		fmt.Fprintf(&p.buf, "  on %s line %d:\n  (source code not available)\n\n", name, subject.Start.Line)
		return
	}
	in := ""
	if cs, ok := file.Nav.(interface{ ContextString(int) string }); ok {
		if s := cs.ContextString(subject.Start.Byte); s != "" {
			in = ", in " + escape(clip(s, MaxSummaryBytes), false)
		}
	}
	fmt.Fprintf(&p.buf, "  on %s line %d%s:\n", name, subject.Start.Line, in)

	src := file.Bytes
	starts := p.lineStarts(subject.Filename, src)
	// A snippet longer than MaxSnippetLines shows the subject alone.
	if lineOf(starts, snip.End.Byte)-lineOf(starts, snip.Start.Byte) >= MaxSnippetLines {
		snip = hl
	}
	printed, more := 0, 0
	// hcl's Range.Overlaps counts a line that ends where the range starts,
	// or starts where it ends: begin one line early, as it does.
	for i := max(lineOf(starts, snip.Start.Byte)-1, 0); i < len(starts) && starts[i] <= snip.End.Byte; i++ {
		end := len(src)
		if i+1 < len(starts) {
			end = starts[i+1] - 1 // the '\n'
		}
		if end > starts[i] && src[end-1] == '\r' {
			end--
		}
		line := hcl.Range{Filename: snip.Filename, Start: hcl.Pos{Byte: starts[i], Line: i + 1}, End: hcl.Pos{Byte: end, Line: i + 1}}
		if !line.Overlaps(snip) {
			continue
		}
		if printed == MaxSnippetLines {
			// Count the rest without looking at each line.
			more = lineOf(starts, snip.End.Byte) - i + 1
			break
		}
		printed++
		before, mid, after := line.PartitionAround(hl)
		if mid.Empty() {
			fmt.Fprintf(&p.buf, "%4d: %s\n", i+1, window(nil, line.SliceBytes(src), nil, "", ""))
		} else {
			fmt.Fprintf(&p.buf, "%4d: %s\n", i+1, window(before.SliceBytes(src), mid.SliceBytes(src), after.SliceBytes(src), highlight, reset))
		}
	}
	if more > 0 {
		fmt.Fprintf(&p.buf, "      (%d more %s)\n", more, plural(more, "line", "lines"))
	}
	p.buf.WriteByte('\n')
}

// lineStarts indexes the lines of a file once per Write.
func (p *printer) lineStarts(name string, src []byte) []int {
	if s, ok := p.lines[name]; ok {
		return s
	}
	s := []int{0}
	for i, c := range src {
		if c == '\n' {
			s = append(s, i+1)
		}
	}
	p.lines[name] = s
	return s
}

// lineOf returns the index of the line holding byte offset off.
func lineOf(starts []int, off int) int {
	return max(sort.SearchInts(starts, off+1)-1, 0)
}

// window prints a snippet line: before, the highlighted part and after,
// escaped, cut to MaxLineBytes around the highlight, with "…" where cut.
func window(before, mid, after []byte, highlight, reset string) string {
	cutBefore, cutMid, cutAfter := false, false, false
	if len(before)+len(mid)+len(after) > MaxLineBytes {
		if len(mid) > MaxLineBytes/2 {
			mid, cutMid = mid[:runeStart(mid, MaxLineBytes/2)], true
		}
		room := MaxLineBytes - len(mid)
		keepAfter := min(len(after), max(room/2, room-len(before)))
		keepBefore := min(len(before), room-keepAfter)
		if keepBefore < len(before) {
			before, cutBefore = before[runeStart(before, len(before)-keepBefore):], true
		}
		if keepAfter < len(after) {
			after, cutAfter = after[:runeStart(after, keepAfter)], true
		}
	}
	var b strings.Builder
	if cutBefore {
		b.WriteString("…")
	}
	b.WriteString(escape(string(before), false))
	if len(mid) > 0 {
		b.WriteString(highlight)
		b.WriteString(escape(string(mid), false))
		if cutMid {
			b.WriteString("…")
		}
		b.WriteString(reset)
	}
	b.WriteString(escape(string(after), false))
	if cutAfter {
		b.WriteString("…")
	}
	return b.String()
}

// LineAround returns the line of src that holds byte offset off, cut to
// at most MaxLineBytes around off with "…" where it was cut, as it is (not
// escaped: for JSON, which escapes it). It reads at most MaxLineBytes bytes
// on either side of off, so a call costs the same however long the line.
func LineAround(src []byte, off int) string {
	off = min(max(off, 0), len(src))
	start, end := off, off
	for start > 0 && src[start-1] != '\n' && off-start < MaxLineBytes/2 {
		start--
	}
	for end < len(src) && src[end] != '\n' && end-start < MaxLineBytes {
		end++
	}
	cutBefore := start > 0 && src[start-1] != '\n'
	cutAfter := end < len(src) && src[end] != '\n'
	line := src[runeStart(src, start):runeStart(src, end)]
	var b strings.Builder
	if cutBefore {
		b.WriteString("…")
	}
	b.Write(line)
	if cutAfter {
		b.WriteString("…")
	}
	return b.String()
}

// runeStart moves i back to the start of the rune it falls in.
func runeStart(b []byte, i int) int {
	if i <= 0 {
		return 0
	}
	if i >= len(b) {
		return len(b)
	}
	for j := i; j > i-utf8.UTFMax && j > 0; j-- {
		if utf8.RuneStart(b[j]) {
			return j
		}
	}
	return i
}

// values prints "with NAME as VALUE" for the variables an expression
// refers to, as hcl's writer does, each statement escaped and cut.
func (p *printer) values(d *hcl.Diagnostic) {
	if d.Expression == nil || d.EvalContext == nil {
		return
	}
	vars := d.Expression.Variables()
	stmts := make([]string, 0, len(vars))
	seen := make(map[string]bool, len(vars))
	for _, tr := range vars {
		val, diags := tr.TraverseAbs(d.EvalContext)
		if diags.HasErrors() {
			continue
		}
		name := traversalStr(tr)
		if seen[name] {
			continue
		}
		switch {
		case !val.IsKnown(), val.IsMarked():
			continue
		case val.IsNull():
			stmts = append(stmts, name+" set to null")
		default:
			stmts = append(stmts, name+" as "+valueStr(val))
		}
		seen[name] = true
	}
	sort.Strings(stmts)
	if len(stmts) > maxValues {
		stmts = append(stmts[:maxValues], fmt.Sprintf("and %d more", len(stmts)-maxValues))
	}
	for i, s := range stmts {
		if i == 0 {
			p.buf.WriteString("with ")
		} else {
			p.buf.WriteString("     ")
		}
		p.buf.WriteString(escape(clip(s, maxValueBytes), false))
		if i == len(stmts)-1 {
			p.buf.WriteString(".\n\n")
		} else {
			p.buf.WriteString(",\n")
		}
	}
}

func traversalStr(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteByte('.')
			b.WriteString(s.Name)
		case hcl.TraverseIndex:
			b.WriteByte('[')
			if s.Key.Type().IsPrimitiveType() {
				b.WriteString(valueStr(s.Key))
			} else {
				b.WriteString("...")
			}
			b.WriteByte(']')
		}
	}
	return b.String()
}

func valueStr(val cty.Value) string {
	ty := val.Type()
	switch {
	case val.IsNull():
		return "null"
	case !val.IsKnown():
		return "(not yet known)"
	case val.IsMarked():
		return "(sensitive)"
	case ty == cty.Bool:
		if val.True() {
			return "true"
		}
		return "false"
	case ty == cty.Number:
		return val.AsBigFloat().Text('g', 10)
	case ty == cty.String:
		return fmt.Sprintf("%q", clip(val.AsString(), maxValueBytes))
	case ty.IsCollectionType() || ty.IsTupleType():
		switch l := val.LengthInt(); l {
		case 0:
			return "empty " + ty.FriendlyName()
		case 1:
			return ty.FriendlyName() + " with 1 element"
		default:
			return fmt.Sprintf("%s with %d elements", ty.FriendlyName(), l)
		}
	case ty.IsObjectType():
		atys := ty.AttributeTypes()
		switch l := len(atys); l {
		case 0:
			return "object with no attributes"
		case 1:
			for k := range atys {
				return fmt.Sprintf("object with 1 attribute %q", k)
			}
		default:
			return fmt.Sprintf("object with %d attributes", l)
		}
	}
	return ty.FriendlyName()
}

// clip cuts s to at most n bytes (at a rune start) and marks the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:runeStart([]byte(s[:n+1]), n)] + "…"
}

// Escape returns s with every control byte, non-printing rune and invalid
// UTF-8 byte written as a Go escape (\x1b, \u202e, \xff), so that text
// taken from a repository cannot drive a terminal. Tabs are kept, and
// newlines too when keepNewlines is set.
func Escape(s string, keepNewlines bool) string { return escape(s, keepNewlines) }

func escape(s string, keepNL bool) string {
	clean := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !printable(r, size, keepNL) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case printable(r, size, keepNL):
			b.WriteString(s[i : i+size])
		case r == utf8.RuneError && size <= 1, r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += max(size, 1)
	}
	return b.String()
}

func printable(r rune, size int, keepNL bool) bool {
	switch {
	case r == '\t':
		return true
	case r == '\n':
		return keepNL
	case r == utf8.RuneError && size <= 1:
		return false
	case r < utf8.RuneSelf:
		return r >= 0x20 && r != 0x7f
	}
	return unicode.IsGraphic(r)
}
