package spec

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"gopkg.in/yaml.v3"
)

// SensitiveMark marks a cty value as sensitive. It survives function calls
// and string templates, so a value computed from a secret stays sensitive.
const SensitiveMark = sensitiveMarkType("sensitive")

type sensitiveMarkType string

// SecretSource resolves secret("NAME") on the reconciler's side.
type SecretSource interface {
	// LookupSecret returns the value of a secret and whether it exists.
	LookupSecret(name string) (string, bool, error)
}

// EnvSecrets reads secret NAME from the environment variable
// TEND_SECRET_NAME (upper case, with every other character than A-Z and 0-9
// turned into "_"), then from the file NAME in Dir, when Dir is set.
type EnvSecrets struct {
	Lookup func(string) (string, bool) // os.LookupEnv when nil
	Dir    string
}

// SecretEnvName is the environment variable that holds secret name.
func SecretEnvName(name string) string {
	var b strings.Builder
	b.WriteString("TEND_SECRET_")
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// LookupSecret implements SecretSource.
func (s EnvSecrets) LookupSecret(name string) (string, bool, error) {
	lookup := s.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup(SecretEnvName(name)); ok {
		return v, true, nil
	}
	if s.Dir != "" {
		b, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err == nil {
			return strings.TrimRight(string(b), "\r\n"), true, nil
		}
		if !os.IsNotExist(err) {
			return "", false, err
		}
	}
	return "", false, nil
}

var secretNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// funcEnv holds what the functions need: the repository root and the
// reconciler's environment and secrets.
type funcEnv struct {
	root    string
	files   map[string][]byte // in-memory repository (tests, fuzzing)
	environ func(string) (string, bool)
	secrets SecretSource
	strict  bool

	mu         sync.Mutex
	unresolved map[string]bool // secrets that could not be resolved
	// deps, when set, records what the functions read from outside the
	// file being decoded, for the Cache.
	deps *depRecorder
}

// readFileDep is readFile, recorded in fe.deps.
func (fe *funcEnv) readFileDep(p string) ([]byte, error) {
	b, err := fe.readFile(p)
	fe.deps.add(dep{kind: depFile, name: p, val: readFileSum(b, err)})
	return b, err
}

// lookupSecret looks a secret up and returns, besides, its reading for
// the Cache: a digest of the value, unsetSecret, or the error.
func (fe *funcEnv) lookupSecret(name string) (v string, ok bool, reading string, err error) {
	if fe.secrets != nil {
		v, ok, err = fe.secrets.LookupSecret(name)
	}
	switch {
	case err != nil:
		reading = "error: " + err.Error()
	case !ok:
		reading = unsetSecret
	default:
		reading = "digest " + digest([]byte(v))
	}
	return v, ok, reading, err
}

// readSecret is the Cache's reading of a secret now.
func (fe *funcEnv) readSecret(name string) string {
	_, _, reading, _ := fe.lookupSecret(name)
	return reading
}

// markUnresolved notes a secret that could not be resolved while
// validating.
func (fe *funcEnv) markUnresolved(name string) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if fe.unresolved == nil {
		fe.unresolved = map[string]bool{}
	}
	fe.unresolved[name] = true
}

func (fe *funcEnv) functions() map[string]function.Function {
	fns := map[string]function.Function{
		// numeric
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"log": stdlib.LogFunc, "max": stdlib.MaxFunc, "min": stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc, "pow": stdlib.PowFunc, "signum": stdlib.SignumFunc,
		// string
		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc, "replace": replaceFunc,
		"split": stdlib.SplitFunc, "strlen": stdlib.StrlenFunc, "strrev": stdlib.ReverseFunc,
		"substr": stdlib.SubstrFunc, "title": stdlib.TitleFunc, "trim": stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc, "trimsuffix": stdlib.TrimSuffixFunc,
		"trimspace": stdlib.TrimSpaceFunc, "upper": stdlib.UpperFunc,
		// collections
		"chunklist": stdlib.ChunklistFunc, "coalesce": stdlib.CoalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
		"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
		"element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc, "index": indexFunc,
		"keys": stdlib.KeysFunc, "length": lengthFunc, "lookup": stdlib.LookupFunc,
		"merge": stdlib.MergeFunc, "range": stdlib.RangeFunc, "reverse": stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc, "setproduct": stdlib.SetProductFunc,
		"setsubtract": stdlib.SetSubtractFunc, "setunion": stdlib.SetUnionFunc,
		"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "values": stdlib.ValuesFunc,
		"zipmap": stdlib.ZipmapFunc,
		// encoding
		"csvdecode": stdlib.CSVDecodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "yamlencode": yamlEncodeFunc, "yamldecode": yamlDecodeFunc,
		"base64encode": base64EncodeFunc, "base64decode": base64DecodeFunc, "sha256": sha256Func,
		// time
		"formatdate": stdlib.FormatDateFunc, "timeadd": stdlib.TimeAddFunc,
		// conversion
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)), "tonumber": stdlib.MakeToFunc(cty.Number),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tostring": stdlib.MakeToFunc(cty.String),
		"try": tryfunc.TryFunc, "can": tryfunc.CanFunc,
		// semver
		"semver_satisfies": semverSatisfiesFunc, "semver_compare": semverCompareFunc,
		"semver_major": semverPartFunc(func(v *semver.Version) uint64 { return v.Major() }),
		"semver_minor": semverPartFunc(func(v *semver.Version) uint64 { return v.Minor() }),
		"semver_patch": semverPartFunc(func(v *semver.Version) uint64 { return v.Patch() }),
		"semver_bump":  semverBumpFunc,
		// tend's own
		"sensitive":  sensitiveFunc,
		"file":       fe.fileFunc(),
		"fileexists": fe.fileExistsFunc(),
		"env":        fe.envFunc(),
		"secret":     fe.secretFunc(),
	}
	fns["templatefile"] = fe.templateFileFunc(fns)
	return fns
}

// FunctionNames lists every function the language offers, sorted.
func FunctionNames() []string {
	fe := &funcEnv{}
	return sortedKeys(fe.functions())
}

// readFile reads a repository file, refusing paths outside the repository.
func (fe *funcEnv) readFile(p string) ([]byte, error) {
	if filepath.IsAbs(p) {
		return nil, fmt.Errorf("%q is an absolute path; file paths are relative to the repository root", p)
	}
	clean := filepath.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%q is outside the repository; only files inside it can be read", p)
	}
	if fe.files != nil {
		b, ok := fe.files[filepath.ToSlash(clean)]
		if !ok {
			return nil, fmt.Errorf("no file %q in the repository", p)
		}
		return b, nil
	}
	full := filepath.Join(fe.root, clean)
	// A symbolic link inside the repository must not lead out of it.
	if real, err := filepath.EvalSymlinks(full); err == nil {
		root, rerr := filepath.EvalSymlinks(fe.root)
		if rerr != nil {
			root = fe.root
		}
		if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%q leads outside the repository (through a symbolic link); only files inside it can be read", p)
		}
	}
	// Read regular files only: a named pipe would block the load forever.
	if st, err := os.Stat(full); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%q is %s, not a regular file; only regular files can be read", p, fileKind(st.Mode()))
	}
	b, err := os.ReadFile(full)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("no file %q in the repository", p)
		}
		return nil, fmt.Errorf("cannot read %q: %v", p, unwrapPathError(err))
	}
	return b, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (fe *funcEnv) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Reads a file of the repository (path relative to the repository root) as a string.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := fe.readFileDep(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

func (fe *funcEnv) fileExistsFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Reports whether a file of the repository exists.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			_, err := fe.readFileDep(args[0].AsString())
			return cty.BoolVal(err == nil), nil
		},
	})
}

func (fe *funcEnv) templateFileFunc(fns map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Description: "Renders a template file of the repository with the given variables.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType, AllowMarked: true},
		},
		Type: function.StaticReturnType(cty.String),
		RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder {
			return b.NotNull()
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			src, err := fe.readFileDep(p)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			expr, diags := hclsyntax.ParseTemplate(src, p, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, function.NewArgErrorf(0, "template %s: %s", p, diags.Error())
			}
			vars := args[1]
			if !vars.CanIterateElements() && !vars.IsNull() {
				return cty.NilVal, function.NewArgErrorf(1, "vars must be an object or a map")
			}
			ctxVars := map[string]cty.Value{}
			if !vars.IsNull() {
				for it := vars.ElementIterator(); it.Next(); {
					k, v := it.Element()
					ctxVars[k.AsString()] = v
				}
			}
			// No recursion: templatefile is not available inside a template.
			inner := make(map[string]function.Function, len(fns))
			for k, f := range fns {
				if k != "templatefile" {
					inner[k] = f
				}
			}
			v, diags := expr.Value(&hcl.EvalContext{Variables: ctxVars, Functions: inner})
			if diags.HasErrors() {
				return cty.NilVal, function.NewArgErrorf(1, "template %s: %s", p, diags.Error())
			}
			return v, nil
		},
	})
}

func (fe *funcEnv) envFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Reads an environment variable of the reconciler; the optional second argument is the value when it is not set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default value")
			}
			v, ok := fe.environ(name)
			fe.deps.add(dep{kind: depEnv, name: name, val: readEnv(fe.environ, name)})
			if ok {
				return cty.StringVal(v), nil
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return cty.NilVal, function.NewArgErrorf(0, "environment variable %s is not set and no default was given", name)
		},
	})
}

func (fe *funcEnv) secretFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Reads a secret from the reconciler's secret source; the value is sensitive.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			if !secretNameRe.MatchString(name) {
				return cty.NilVal, function.NewArgErrorf(0, "%q is not a valid secret name: use letters, digits, '_', '.' and '-'", name)
			}
			v, ok, reading, err := fe.lookupSecret(name)
			fe.deps.add(dep{kind: depSecret, name: name, val: reading})
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "secret %q: %v", name, err)
			}
			if !ok {
				if fe.strict {
					return cty.NilVal, function.NewArgErrorf(0, "secret %q"+notSetMarker+"set %s in the reconciler's environment or put a file %q in its secrets directory; nothing can be planned or applied without it", name, SecretEnvName(name), name)
				}
				fe.markUnresolved(name)
				return cty.UnknownVal(cty.String).Mark(SensitiveMark), nil
			}
			return cty.StringVal(v).Mark(SensitiveMark), nil
		},
	})
}

// notSetMarker is the part of the error of an unset secret that
// secretDiags recognises.
const notSetMarker = " is not set: "

var sensitiveFunc = function.New(&function.Spec{
	Description: "Marks a value as sensitive, so that no plan, diff or log shows it.",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowMarked: true, AllowNull: true, AllowUnknown: true, AllowDynamicType: true}},
	Type: func(args []cty.Value) (cty.Type, error) {
		return args[0].Type(), nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return args[0].Mark(SensitiveMark), nil
	},
})

var base64EncodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

var base64DecodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := base64.StdEncoding.DecodeString(args[0].AsString())
		if err != nil {
			return cty.NilVal, function.NewArgErrorf(0, "not valid base64: %v", err)
		}
		return cty.StringVal(string(b)), nil
	},
})

var sha256Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sum := sha256.Sum256([]byte(args[0].AsString()))
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})

func parseVersionArg(i int, v cty.Value) (*semver.Version, error) {
	sv, err := semver.StrictNewVersion(strings.TrimPrefix(v.AsString(), "v"))
	if err != nil {
		return nil, function.NewArgErrorf(i, "%q is not a semantic version (MAJOR.MINOR.PATCH): %v", v.AsString(), err)
	}
	return sv, nil
}

var semverSatisfiesFunc = function.New(&function.Spec{
	Description: "Reports whether a version satisfies a constraint.",
	Params:      []function.Parameter{{Name: "version", Type: cty.String}, {Name: "constraint", Type: cty.String}},
	Type:        function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, err := parseVersionArg(0, args[0])
		if err != nil {
			return cty.NilVal, err
		}
		c, err := ParseConstraint(args[1].AsString())
		if err != nil {
			return cty.NilVal, function.NewArgErrorf(1, "%q is not a version constraint: %v", args[1].AsString(), err)
		}
		return cty.BoolVal(c.Check(v)), nil
	},
})

var semverCompareFunc = function.New(&function.Spec{
	Description: "Compares two versions: -1, 0 or 1.",
	Params:      []function.Parameter{{Name: "a", Type: cty.String}, {Name: "b", Type: cty.String}},
	Type:        function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		a, err := parseVersionArg(0, args[0])
		if err != nil {
			return cty.NilVal, err
		}
		b, err := parseVersionArg(1, args[1])
		if err != nil {
			return cty.NilVal, err
		}
		return cty.NumberIntVal(int64(a.Compare(b))), nil
	},
})

func semverPartFunc(part func(*semver.Version) uint64) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "version", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Number),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, err := parseVersionArg(0, args[0])
			if err != nil {
				return cty.NilVal, err
			}
			return cty.NumberUIntVal(part(v)), nil
		},
	})
}

var semverBumpFunc = function.New(&function.Spec{
	Description: "Increments a version's major, minor or patch part.",
	Params:      []function.Parameter{{Name: "version", Type: cty.String}, {Name: "part", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, err := parseVersionArg(0, args[0])
		if err != nil {
			return cty.NilVal, err
		}
		var nv semver.Version
		switch args[1].AsString() {
		case "major":
			nv = v.IncMajor()
		case "minor":
			nv = v.IncMinor()
		case "patch":
			nv = v.IncPatch()
		default:
			return cty.NilVal, function.NewArgErrorf(1, "part must be \"major\", \"minor\" or \"patch\", not %q", args[1].AsString())
		}
		return cty.StringVal(nv.String()), nil
	},
})

var yamlEncodeFunc = function.New(&function.Spec{
	Description: "Encodes a value as YAML, with object keys in sorted order.",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowNull: true}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if !args[0].IsWhollyKnown() {
			return cty.UnknownVal(cty.String), nil
		}
		out, err := encodeYAML(args[0])
		if err != nil {
			return cty.NilVal, function.NewArgError(0, err)
		}
		return cty.StringVal(out), nil
	},
})

var yamlDecodeFunc = function.New(&function.Spec{
	Description: "Decodes YAML into a value.",
	Params:      []function.Parameter{{Name: "src", Type: cty.String}},
	Type:        function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		var doc any
		if err := yaml.Unmarshal([]byte(args[0].AsString()), &doc); err != nil {
			return cty.NilVal, function.NewArgErrorf(0, "not valid YAML: %v", err)
		}
		return goToCty(doc)
	},
})

func goToCty(x any) (cty.Value, error) {
	switch t := x.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType), nil
	case string:
		return cty.StringVal(t), nil
	case bool:
		return cty.BoolVal(t), nil
	case int, int64, uint64, float64:
		var n cty.Value
		switch v := t.(type) {
		case int:
			n = cty.NumberIntVal(int64(v))
		case int64:
			n = cty.NumberIntVal(v)
		case uint64:
			n = cty.NumberUIntVal(v)
		case float64:
			n = cty.NumberFloatVal(v)
		}
		return n, nil
	case []any:
		if len(t) == 0 {
			return cty.EmptyTupleVal, nil
		}
		vals := make([]cty.Value, len(t))
		for i, e := range t {
			v, err := goToCty(e)
			if err != nil {
				return cty.NilVal, err
			}
			vals[i] = v
		}
		return cty.TupleVal(vals), nil
	case map[string]any:
		if len(t) == 0 {
			return cty.EmptyObjectVal, nil
		}
		vals := make(map[string]cty.Value, len(t))
		for k, e := range t {
			v, err := goToCty(e)
			if err != nil {
				return cty.NilVal, err
			}
			vals[k] = v
		}
		return cty.ObjectVal(vals), nil
	case time.Time:
		return cty.StringVal(t.UTC().Format(time.RFC3339Nano)), nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = e
		}
		return goToCty(m)
	}
	// Anything else (timestamps, for instance) becomes its text.
	return cty.StringVal(fmt.Sprint(x)), nil
}

// indexFunc is Terraform's index(list, value): the position of the first
// element equal to value (cty's own index(collection, key) is element lookup).
var indexFunc = function.New(&function.Spec{
	Description: "Returns the position of the first element of list equal to value.",
	Params: []function.Parameter{
		{Name: "list", Type: cty.DynamicPseudoType},
		{Name: "value", Type: cty.DynamicPseudoType},
	},
	Type: function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		list := args[0]
		ty := list.Type()
		if !(ty.IsListType() || ty.IsTupleType()) {
			return cty.NilVal, function.NewArgErrorf(0, "a list or tuple is required")
		}
		if !list.IsWhollyKnown() || !args[1].IsWhollyKnown() {
			return cty.UnknownVal(cty.Number), nil
		}
		i := 0
		for it := list.ElementIterator(); it.Next(); i++ {
			_, e := it.Element()
			if eq := e.Equals(args[1]); eq.IsKnown() && eq.True() {
				return cty.NumberIntVal(int64(i)), nil
			}
		}
		return cty.NilVal, function.NewArgErrorf(1, "the value is not in the list")
	},
})

// lengthFunc counts a string's characters, or a collection's elements.
var lengthFunc = function.New(&function.Spec{
	Description: "Returns the number of characters of a string, or of elements of a collection.",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:        function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

// replaceFunc is Terraform's replace: a search string written as /RE/ is a
// regular expression.
var replaceFunc = function.New(&function.Spec{
	Description: "Replaces every occurrence of substr (or of the regular expression /substr/) in str.",
	Params: []function.Parameter{
		{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}, {Name: "replace", Type: cty.String},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sub := args[1].AsString()
		if len(sub) > 1 && sub[0] == '/' && sub[len(sub)-1] == '/' {
			return stdlib.RegexReplace(args[0], cty.StringVal(sub[1:len(sub)-1]), args[2])
		}
		return stdlib.Replace(args[0], args[1], args[2])
	},
})
