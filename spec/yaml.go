package spec

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
)

// encodeYAML writes a cty value as YAML: block style, keys sorted, two
// spaces of indentation. It is a direct emitter rather than yaml.v3's,
// because yamlencode runs once per config file of every server and the
// general emitter costs about 17 KB of garbage per call. Strings that could
// read as anything but a string are double-quoted, so the output decodes to
// the same value (TestYAMLEncodeRoundTrip checks this against yaml.v3).
func encodeYAML(v cty.Value) (string, error) {
	var b strings.Builder
	if err := yamlValue(&b, v, 0, true); err != nil {
		return "", err
	}
	b.WriteByte('\n')
	return b.String(), nil
}

func isCollection(v cty.Value) bool {
	ty := v.Type()
	return !v.IsNull() && (ty.IsListType() || ty.IsTupleType() || ty.IsSetType() || ty.IsMapType() || ty.IsObjectType())
}

// yamlValue writes v. top is true at the document root; inline values follow
// "key:" or "- " on the same line.
func yamlValue(b *strings.Builder, v cty.Value, indent int, top bool) error {
	if v.IsNull() {
		b.WriteString("null")
		return nil
	}
	if !v.IsKnown() {
		return fmt.Errorf("value is not known yet")
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		yamlString(b, v.AsString())
	case ty == cty.Bool:
		b.WriteString(strconv.FormatBool(v.True()))
	case ty == cty.Number:
		b.WriteString(yamlNumber(v.AsBigFloat()))
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		if v.LengthInt() == 0 {
			b.WriteString("[]")
			return nil
		}
		first := true
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if !first || !top {
				b.WriteByte('\n')
				b.WriteString(strings.Repeat(" ", indent))
			}
			first = false
			b.WriteString("- ")
			if err := yamlNested(b, e, indent+2, true); err != nil {
				return err
			}
		}
	case ty.IsMapType() || ty.IsObjectType():
		if v.LengthInt() == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, 0, v.LengthInt())
		vals := make(map[string]cty.Value, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			keys = append(keys, k.AsString())
			vals[k.AsString()] = e
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 || !top {
				b.WriteByte('\n')
				b.WriteString(strings.Repeat(" ", indent))
			}
			yamlString(b, k)
			b.WriteByte(':')
			e := vals[k]
			if isCollection(e) && e.LengthInt() > 0 {
				if err := yamlNested(b, e, indent+2, false); err != nil {
					return err
				}
				continue
			}
			b.WriteByte(' ')
			if err := yamlValue(b, e, indent+2, false); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("cannot encode %s as YAML", ty.FriendlyName())
	}
	return nil
}

// yamlNested writes a value that starts after "- " (inSeq) or "key:".
func yamlNested(b *strings.Builder, v cty.Value, indent int, inSeq bool) error {
	if !isCollection(v) || v.LengthInt() == 0 {
		if !inSeq {
			b.WriteByte(' ')
		}
		return yamlValue(b, v, indent, false)
	}
	if inSeq {
		// The first item of a nested block continues the "- " line.
		return yamlValue(b, v, indent, true)
	}
	ty := v.Type()
	if ty.IsListType() || ty.IsTupleType() || ty.IsSetType() {
		// A sequence under a key sits at the key's indentation.
		return yamlValue(b, v, indent-2, false)
	}
	return yamlValue(b, v, indent, false)
}

func yamlNumber(bf *big.Float) string {
	if i, acc := bf.Int64(); acc == big.Exact {
		return strconv.FormatInt(i, 10)
	}
	if bf.IsInt() {
		return bf.Text('f', 0)
	}
	f, _ := bf.Float64()
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// yamlPlainWords read as something other than a string when unquoted.
var yamlPlainWords = map[string]bool{
	"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
	"y": true, "n": true, "null": true, "~": true,
}

// yamlString writes s plainly when that is unambiguous, quoted otherwise.
func yamlString(b *strings.Builder, s string) {
	if yamlPlainSafe(s) {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff || r == utf8.RuneError {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

func yamlPlainSafe(s string) bool {
	if s == "" || yamlPlainWords[strings.ToLower(s)] {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '/') {
		return false // digits, signs and dots could read as numbers; indicators are special
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}
