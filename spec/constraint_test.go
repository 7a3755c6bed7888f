package spec

import (
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/zclconf/go-cty/cty"
)

func TestParseConstraint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		constraint string
		version    string
		want       bool
	}{
		{"~> 1.4", "1.4.0", true},
		{"~> 1.4", "1.9.3", true},
		{"~> 1.4", "2.0.0", false},
		{"~> 1.4", "1.3.9", false},
		{"~> 1.4.2", "1.4.9", true},
		{"~> 1.4.2", "1.5.0", false},
		{">= 3.0, < 4.0", "3.7.1", true},
		{">= 3.0, < 4.0", "4.0.0", false},
		{"~> 1.4 || ~> 3.1", "3.9.0", true},
		{"~> 1.4 || ~> 3.1", "2.0.0", false},
		{"^2", "2.9.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.constraint+" "+tt.version, func(t *testing.T) {
			c, err := ParseConstraint(tt.constraint)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Check(semver.MustParse(tt.version)); got != tt.want {
				t.Errorf("%q.Check(%s) = %v, want %v", tt.constraint, tt.version, got, tt.want)
			}
		})
	}
}

func TestTerraformCompatibleFunctions(t *testing.T) {
	t.Parallel()
	fns := (&funcEnv{}).functions()
	call := func(name string, args ...cty.Value) cty.Value {
		t.Helper()
		v, err := fns[name].Call(args)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	list := cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b"), cty.StringVal("c")})
	if got := call("index", list, cty.StringVal("b")); !got.RawEquals(cty.NumberIntVal(1)) {
		t.Errorf("index(list, \"b\") = %#v, want 1", got)
	}
	if _, err := fns["index"].Call([]cty.Value{list, cty.StringVal("z")}); err == nil {
		t.Errorf("index of a missing value did not fail")
	}
	if got := call("length", cty.StringVal("grüße")); !got.RawEquals(cty.NumberIntVal(5)) {
		t.Errorf("length(\"grüße\") = %#v, want 5", got)
	}
	if got := call("length", list); !got.RawEquals(cty.NumberIntVal(3)) {
		t.Errorf("length(list) = %#v, want 3", got)
	}
	if got := call("replace", cty.StringVal("v1.2.3"), cty.StringVal("/^v/"), cty.StringVal("")); got.AsString() != "1.2.3" {
		t.Errorf("replace with a regex = %q", got.AsString())
	}
	if got := call("replace", cty.StringVal("a.b.c"), cty.StringVal("."), cty.StringVal("-")); got.AsString() != "a-b-c" {
		t.Errorf("replace with a string = %q", got.AsString())
	}
}
