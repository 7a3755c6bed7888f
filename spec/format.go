package spec

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical layout: indentation, aligned equals signs,
// spacing in expressions, one blank line at most between items. It refuses
// (with diagnostics) a file that does not parse, so it never rewrites a file
// into something else; and when the canonical layout would not parse as the
// file did (HCL's formatter joins "x.0 .1" into "x.0.1", which reads as a
// number), it returns the file as it is, with a warning.
func Format(src []byte, filename string) ([]byte, hcl.Diagnostics) {
	_, diags := hclwrite.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	out := hclwrite.Format(src)
	if _, before := hclsyntax.ParseConfig(src, filename, hcl.InitialPos); !before.HasErrors() {
		if _, after := hclsyntax.ParseConfig(out, filename, hcl.InitialPos); after.HasErrors() {
			d := &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Left as it is",
				Detail:   "Formatting this file would change how it parses, so it is left as it is. Write index steps as [0] to let tend fmt lay it out.",
			}
			if len(after) > 0 && after[0].Subject != nil {
				d.Subject = after[0].Subject
			}
			return src, hcl.Diagnostics{d}
		}
	}
	return out, nil
}
