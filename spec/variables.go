package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true},
		{Name: "error_message", Required: true},
	},
}

type validation struct {
	condition hcl.Expression
	message   hcl.Expression
	rng       hcl.Range
}

// VarEnvPrefix is the prefix of environment variables that set variables.
const VarEnvPrefix = "TEND_VAR_"

func (d *decoder) decodeVariables(blocks []*hcl.Block, envFile *hcl.File) {
	checks := map[string][]validation{}
	defaultRanges := map[string]hcl.Range{}
	// Declarations are evaluated without variables: a default is a constant.
	constCtx := &hcl.EvalContext{Functions: d.ctx.Functions}
	for _, b := range blocks {
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid variable name", "%q is not a valid name: use letters, digits, underscores and dashes, not starting with a digit or a dash.", name)
			continue
		}
		if prev, ok := d.cfg.Variables[name]; ok {
			d.duplicate("variable", name, b, prev.DeclRange)
			continue
		}
		content, diags := b.Body.Content(variableSchema)
		d.diags = append(d.diags, diags...)
		v := &Variable{Name: name, Type: cty.DynamicPseudoType, TypeName: "any", DeclRange: b.DefRange}
		r := d.reader(constCtx)
		if a, ok := content.Attributes["type"]; ok {
			ty, diags := typeexpr.TypeConstraint(a.Expr)
			d.diags = append(d.diags, diags...)
			if !diags.HasErrors() {
				v.Type = ty
				v.TypeName = typeexpr.TypeString(ty)
			}
		}
		r.str(content.Attributes, "description", &v.Description)
		r.boolean(content.Attributes, "sensitive", &v.Sensitive)
		if a, ok := content.Attributes["default"]; ok {
			val, diags := a.Expr.Value(constCtx)
			d.diags = append(d.diags, diags...)
			if diags.HasErrors() {
				v.Value = cty.UnknownVal(v.Type) // reported; no second error for a missing value
			} else {
				conv, err := convert.Convert(val, v.Type)
				if err != nil {
					d.errorf(a.Expr.Range().Ptr(), "Invalid default value for variable",
						"The default value does not match the variable's type %s: %s.", v.TypeName, err)
					v.Value = cty.UnknownVal(v.Type) // reported; no second error for a missing value
				} else {
					v.Default = conv
					v.Value = conv
					v.Source = "default"
					defaultRanges[name] = a.Expr.Range()
				}
			}
		}
		for _, vb := range content.Blocks {
			vc, diags := vb.Body.Content(validationSchema)
			d.diags = append(d.diags, diags...)
			if diags.HasErrors() {
				continue
			}
			checks[name] = append(checks[name], validation{
				condition: vc.Attributes["condition"].Expr,
				message:   vc.Attributes["error_message"].Expr,
				rng:       vb.DefRange,
			})
		}
		d.cfg.Variables[name] = v
	}

	valueRanges := defaultRanges
	// Values from the environment's file.
	if envFile != nil {
		attrs, diags := envFile.Body.JustAttributes()
		d.diags = append(d.diags, diags...)
		for _, name := range sortedKeys(attrs) {
			a := attrs[name]
			v, ok := d.cfg.Variables[name]
			if !ok {
				d.errorf(a.NameRange.Ptr(), "Undeclared variable",
					"The environment %q sets %q, but no variable of that name is declared.%s", d.opts.Env, name, didYouMean(name, sortedKeys(d.cfg.Variables)))
				continue
			}
			val, diags := a.Expr.Value(constCtx)
			d.diags = append(d.diags, diags...)
			if diags.HasErrors() {
				continue
			}
			rng := a.Expr.Range()
			d.setVariable(v, val, "env-file", &rng, "")
			valueRanges[name] = a.Expr.Range()
		}
	}
	// Values from TEND_VAR_NAME, then from --var.
	for _, name := range sortedKeys(d.cfg.Variables) {
		v := d.cfg.Variables[name]
		if s, ok := d.opts.Environ(VarEnvPrefix + name); ok {
			if rng, ok := d.setRaw(v, s, "environment", VarEnvPrefix+name); ok {
				valueRanges[name] = rng
			}
		}
	}
	for _, name := range sortedKeys(d.opts.Vars) {
		v, ok := d.cfg.Variables[name]
		if !ok {
			d.errorf(nil, "Undeclared variable", "--var sets %q, but no variable of that name is declared.%s", name, didYouMean(name, sortedKeys(d.cfg.Variables)))
			continue
		}
		if rng, ok := d.setRaw(v, d.opts.Vars[name], "flag", "--var "+name); ok {
			valueRanges[name] = rng
		}
	}

	vars := map[string]cty.Value{}
	for name, v := range d.cfg.Variables {
		if v.Value == cty.NilVal {
			rng := v.DeclRange
			d.errorf(&rng, "No value for required variable",
				"The variable %q has no default, and no value was given: set it in an environment file (--env), with TEND_VAR_%s, or with --var %s=VALUE.", name, name, name)
			v.Value = cty.UnknownVal(v.Type)
		}
		if v.Sensitive {
			v.Value = v.Value.Mark(SensitiveMark)
		}
		vars[name] = v.Value
	}
	d.ctx.Variables["var"] = cty.ObjectVal(vars)

	// Validation rules, with only var in scope.
	for _, name := range sortedKeys(checks) {
		v := d.cfg.Variables[name]
		if !v.Value.IsWhollyKnown() {
			continue
		}
		for _, c := range checks[name] {
			d.runValidation(v, c, valueRanges)
		}
	}
}

func (d *decoder) runValidation(v *Variable, c validation, valueRanges map[string]hcl.Range) {
	ctx := &hcl.EvalContext{Functions: d.ctx.Functions, Variables: map[string]cty.Value{"var": d.ctx.Variables["var"]}}
	for _, t := range c.condition.Variables() {
		if t.RootName() != "var" || len(t) < 2 {
			d.errorf(t.SourceRange().Ptr(), "Invalid reference in variable validation", "A validation condition may only refer to var.%s.", v.Name)
			return
		}
		if a, ok := t[1].(hcl.TraverseAttr); !ok || a.Name != v.Name {
			d.errorf(t.SourceRange().Ptr(), "Invalid reference in variable validation", "A validation condition may only refer to var.%s.", v.Name)
			return
		}
	}
	res, diags := c.condition.Value(ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	res, _ = res.Unmark()
	res, err := convert.Convert(res, cty.Bool)
	if err == nil && !res.IsKnown() {
		return // the expression's own problem is already reported
	}
	if err != nil || res.IsNull() {
		d.errorf(c.condition.Range().Ptr(), "Invalid validation condition", "The condition must be true or false.")
		return
	}
	if res.True() {
		return
	}
	msg, diags := c.message.Value(ctx)
	d.diags = append(d.diags, diags...)
	text := "the value is not valid"
	if !diags.HasErrors() {
		if m, err := convert.Convert(msg, cty.String); err == nil && m.IsKnown() && !m.IsMarked() && !m.IsNull() {
			text = m.AsString()
		}
	}
	rng, ok := valueRanges[v.Name]
	if !ok {
		rng = c.rng
	}
	d.errorf(&rng, "Invalid value for variable", "%s\n\nThis was checked by the validation rule at %s.", text, c.rng.String())
}

// setVariable converts and stores a value for a variable. rng is where the
// value is written (nil for a value from the environment or a flag, which
// origin then names).
func (d *decoder) setVariable(v *Variable, val cty.Value, source string, rng *hcl.Range, origin string) bool {
	conv, err := convert.Convert(val, v.Type)
	if err != nil {
		from := ""
		if origin != "" {
			from = " given by " + origin
		}
		d.errorf(rng, "Invalid value for variable", "The value for %q%s does not match its type %s: %s.", v.Name, from, v.TypeName, err)
		return false
	}
	v.Value = conv
	v.Source = source
	return true
}

// setRaw stores a value given as text (environment or flag). For variables
// of a primitive type the text is converted ("3" to a number, "true" to a
// bool); for collections it is parsed as HCL ('["a", "b"]').
func (d *decoder) setRaw(v *Variable, s, source, origin string) (hcl.Range, bool) {
	name := fmt.Sprintf("<value for var.%s from %s>", v.Name, origin)
	rng := hcl.Range{Filename: name, Start: hcl.InitialPos, End: hcl.Pos{Line: 1, Column: len(s) + 1, Byte: len(s)}}
	if v.Type.IsPrimitiveType() || (v.Type == cty.DynamicPseudoType && !looksLikeHCL(s)) {
		return rng, d.setVariable(v, cty.StringVal(s), source, nil, origin)
	}
	expr, diags := hclsyntax.ParseExpression([]byte(s), name, hcl.InitialPos)
	if !diags.HasErrors() {
		var val cty.Value
		if val, diags = expr.Value(nil); !diags.HasErrors() {
			return rng, d.setVariable(v, val, source, nil, origin)
		}
	}
	d.errorf(nil, "Invalid value for variable", "The value for %q given by %s is not a valid %s: write it as HCL, such as [\"a\", \"b\"] or { key = \"value\" }.", v.Name, origin, v.TypeName)
	return rng, false
}

func looksLikeHCL(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{")
}

// decodeLocals evaluates locals in the order their references need,
// reporting a cycle among them.
func (d *decoder) decodeLocals(blocks []*hcl.Block) {
	attrs := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		as, diags := b.Body.JustAttributes()
		d.diags = append(d.diags, diags...)
		for _, name := range sortedKeys(as) {
			a := as[name]
			if prev, ok := attrs[name]; ok {
				d.errorf(a.NameRange.Ptr(), fmt.Sprintf("Duplicate local value %q", name),
					"A local value named %q was already defined at %s.", name, prev.NameRange.String())
				continue
			}
			attrs[name] = a
		}
	}
	vals := map[string]cty.Value{}
	pending := sortedKeys(attrs)
	for len(pending) > 0 {
		var next []string
		progressed := false
		for _, name := range pending {
			ready := true
			for _, t := range attrs[name].Expr.Variables() {
				if t.RootName() != "local" || len(t) < 2 {
					continue
				}
				if ref, ok := t[1].(hcl.TraverseAttr); ok {
					if _, known := attrs[ref.Name]; known {
						if _, done := vals[ref.Name]; !done {
							ready = false
						}
					}
				}
			}
			if !ready {
				next = append(next, name)
				continue
			}
			d.ctx.Variables["local"] = cty.ObjectVal(vals)
			v, diags := attrs[name].Expr.Value(d.ctx)
			d.diags = append(d.diags, diags...)
			if diags.HasErrors() {
				v = cty.DynamicVal
			}
			vals[name] = v
			progressed = true
		}
		if !progressed {
			sort.Strings(next)
			a := attrs[next[0]]
			d.errorf(a.NameRange.Ptr(), "Cycle in local values",
				"These local values refer to each other, so none can be computed: local.%s.", strings.Join(next, ", local."))
			for _, n := range next {
				vals[n] = cty.DynamicVal
			}
			break
		}
		pending = next
	}
	d.cfg.Locals = vals
	d.ctx.Variables["local"] = cty.ObjectVal(vals)
}

type secretSite struct {
	name string
	rng  hcl.Range
}

// secretCallSites finds every secret("NAME") call with a literal name in f.
func secretCallSites(f *hcl.File) []secretSite {
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []secretSite
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "secret" || len(call.Args) != 1 {
			return nil
		}
		v, diags := call.Args[0].Value(nil)
		if diags.HasErrors() || v.Type() != cty.String || !v.IsKnown() || v.IsNull() {
			return nil
		}
		out = append(out, secretSite{name: v.AsString(), rng: call.Range()})
		return nil
	})
	return out
}
