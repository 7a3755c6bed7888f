// Package diagtext prints HCL diagnostics for a person: the layout of
// hcl.NewDiagnosticTextWriter (summary, "on FILE line N, in BLOCK:", a
// snippet of the source with the subject highlighted, the detail wrapped to
// a width), with three differences that matter when the source is hostile:
//
//   - It is linear. Each file's line starts are indexed once per Write, and
//     a snippet is found by binary search; hcl's writer re-scans the whole
//     file, grapheme by grapheme, for every diagnostic, which made 4,000
//     diagnostics of an 8 KB file take minutes.
//   - It is bounded. Only the first Max errors and the first Max warnings
//     (DefaultMax: 20 of each, counted over all files together) are
//     printed, then one line says how many more there are. A snippet shows
//     at most MaxSnippetLines lines, a snippet line at most MaxLineBytes
//     bytes of source around the highlight, a summary and a detail at most
//     MaxSummaryBytes and MaxDetailBytes.
//   - It never writes a control byte it did not mean to. Every control byte,
//     other non-printing rune (bidirectional overrides, zero-width
//     characters) and invalid UTF-8 byte of a snippet, summary, detail or
//     file name is written as a Go escape (\x1b, \u202e); tabs stay tabs and
//     newlines of a detail stay newlines. Only the writer's own color codes
//     (when Color is set) are escape sequences.
//
// The daemon's stalled message and every command that prints diagnostics use
// it, so a person sees the same text everywhere.
//
// diagtext must not import any other package of tend: spec's own tests and
// everything above spec use it.
package diagtext
