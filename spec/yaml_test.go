package spec

import (
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// TestYAMLEncodeRoundTrip checks that what yamlencode writes decodes, with
// yaml.v3, to the value that was encoded.
func TestYAMLEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	tests := map[string]cty.Value{
		"scalars": cty.ObjectVal(map[string]cty.Value{
			"s": cty.StringVal("hello"), "n": cty.NumberIntVal(42), "f": cty.NumberFloatVal(0.25),
			"neg": cty.NumberIntVal(-3), "big": cty.NumberFloatVal(1e21), "t": cty.True, "nil": cty.NullVal(cty.String),
		}),
		"tricky strings": cty.ObjectVal(map[string]cty.Value{
			"yes": cty.StringVal("yes"), "no": cty.StringVal("NO"), "num": cty.StringVal("123"), "float": cty.StringVal("1.5"),
			"empty": cty.StringVal(""), "colon": cty.StringVal("a: b"), "hash": cty.StringVal("a #b"),
			"quote": cty.StringVal(`say "hi"`), "multi": cty.StringVal("line1\nline2\n"), "lead": cty.StringVal(" x"),
			"dash": cty.StringVal("- x"), "star": cty.StringVal("*ref"), "tilde": cty.StringVal("~"), "null": cty.StringVal("null"),
			"unicode": cty.StringVal("grüße ✓"), "ctrl": cty.StringVal("a\x01b\tc"), "url": cty.StringVal("http://x/y?z=1"),
			"key with space": cty.StringVal("v"), "0777": cty.StringVal("octal"), "path": cty.StringVal("/var/lib/x"),
		}),
		"nested": cty.ObjectVal(map[string]cty.Value{
			"rate_limiting": cty.ObjectVal(map[string]cty.Value{"enabled": cty.True, "max_requests": cty.NumberIntVal(100)}),
			"tools":         cty.TupleVal([]cty.Value{cty.StringVal("search"), cty.StringVal("fetch")}),
			"servers": cty.TupleVal([]cty.Value{
				cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("a"), "ports": cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)})}),
				cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("b"), "opts": cty.ObjectVal(map[string]cty.Value{"x": cty.StringVal("y")})}),
			}),
			"matrix": cty.TupleVal([]cty.Value{cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}), cty.EmptyTupleVal}),
			"emptyo": cty.EmptyObjectVal,
			"emptyl": cty.EmptyTupleVal,
			"deeper": cty.MapVal(map[string]cty.Value{"k": cty.ListVal([]cty.Value{cty.MapVal(map[string]cty.Value{"z": cty.StringVal("1")})})}),
		}),
		"top list":   cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.ObjectVal(map[string]cty.Value{"b": cty.NumberIntVal(1), "c": cty.NumberIntVal(2)})}),
		"top string": cty.StringVal("just: text"),
		"top empty":  cty.EmptyObjectVal,
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := encodeYAML(v)
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			want := ctyToGo(v)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip differs:\n%s\ngot  %#v\nwant %#v", out, got, want)
			}
		})
	}
}

// ctyToGo converts a value to what yaml.v3 decodes into an any.
func ctyToGo(v cty.Value) any {
	if v.IsNull() {
		return nil
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return v.AsString()
	case ty == cty.Bool:
		return v.True()
	case ty == cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); acc == 0 {
			return int(i)
		}
		f, _ := bf.Float64()
		return f
	case ty.IsMapType() || ty.IsObjectType():
		m := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			m[k.AsString()] = ctyToGo(e)
		}
		return m
	default:
		l := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			l = append(l, ctyToGo(e))
		}
		return l
	}
}
