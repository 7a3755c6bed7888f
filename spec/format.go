package spec

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical layout: indentation, aligned equals signs,
// spacing in expressions, one blank line at most between items. It refuses
// (with diagnostics) a file that does not parse, so it never rewrites a file
// into something else.
func Format(src []byte, filename string) ([]byte, hcl.Diagnostics) {
	_, diags := hclwrite.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), nil
}
