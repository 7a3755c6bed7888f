package spec

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/robfig/cron/v3"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// reader evaluates the attributes of one block and converts them to Go
// values, collecting diagnostics with the attribute's range.
type reader struct {
	ctx   *hcl.EvalContext
	diags *hcl.Diagnostics
	// unresolved, when set, collects names of attributes whose values are
	// not known yet (a version constraint or secret resolved later).
	unresolved *[]string
	prefix     string
	// required names the attributes of the block being decoded that must
	// not be null.
	required map[string]bool
	// constraints caches parsed constraints: a fleet repeats the same few
	// pins thousands of times, and parsing one is costly.
	constraints map[string]*semver.Constraints
}

func (r *reader) parseConstraint(s string) (*semver.Constraints, error) {
	if c, ok := r.constraints[s]; ok {
		return c, nil
	}
	c, err := ParseConstraint(s)
	if err == nil && r.constraints != nil {
		r.constraints[s] = c
	}
	return c, err
}

func (r *reader) attrError(a *hcl.Attribute, summary, detail string, args ...any) {
	*r.diags = append(*r.diags, &hcl.Diagnostic{
		Severity:    hcl.DiagError,
		Summary:     summary,
		Detail:      fmt.Sprintf(detail, args...),
		Subject:     a.Expr.Range().Ptr(),
		Context:     a.Range.Ptr(),
		Expression:  a.Expr,
		EvalContext: r.ctx,
	})
}

// eval evaluates an attribute whose value is shown in plans, logs or object
// labels, so it must not be sensitive. It returns ok=false when evaluation
// failed (the error is recorded), the value is null, or it is not known yet.
func (r *reader) eval(a *hcl.Attribute) (cty.Value, bool) {
	return r.evalAttr(a, false)
}

// evalSensitive is eval for attributes that may hold sensitive values.
func (r *reader) evalSensitive(a *hcl.Attribute) (cty.Value, bool) {
	return r.evalAttr(a, true)
}

func (r *reader) evalAttr(a *hcl.Attribute, allowSensitive bool) (v cty.Value, ok bool) {
	v, d := a.Expr.Value(r.ctx)
	if d.HasErrors() {
		*r.diags = append(*r.diags, r.explainRefs(a.Expr, d)...)
		return cty.NilVal, false
	}
	*r.diags = append(*r.diags, d...)
	// Sensitivity is checked before knownness: a secret that cannot be
	// resolved while validating is still a secret.
	if !allowSensitive && v.ContainsMarked() {
		r.plain(a, v)
		return cty.NilVal, false
	}
	if v.IsNull() {
		if r.required[a.Name] {
			r.attrError(a, "Missing value for "+a.Name, "%s is required and must not be null.", a.Name)
		}
		return v, false
	}
	if !v.IsWhollyKnown() {
		if r.unresolved != nil {
			*r.unresolved = append(*r.unresolved, r.prefix+a.Name)
		}
		return v, false
	}
	return v, true
}

// explainRefs replaces HCL's generic "Unsupported attribute" errors about
// var.X and local.X with ones that say what is missing and what is close.
func (r *reader) explainRefs(expr hcl.Expression, diags hcl.Diagnostics) hcl.Diagnostics {
	if r.ctx == nil {
		return diags
	}
	var better hcl.Diagnostics
	for _, t := range expr.Variables() {
		root := t.RootName()
		if (root != "var" && root != "local") || len(t) < 2 {
			continue
		}
		attr, ok := t[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		obj := lookupVar(r.ctx, root)
		if obj == cty.NilVal || !obj.Type().IsObjectType() || obj.Type().HasAttribute(attr.Name) {
			continue
		}
		var names []string
		for n := range obj.Type().AttributeTypes() {
			names = append(names, n)
		}
		kind, decl := "input variable", "variable \"%s\" {}"
		if root == "local" {
			kind, decl = "local value", "a locals block"
		}
		if root == "var" {
			decl = fmt.Sprintf(decl, attr.Name)
		}
		better = append(better, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Reference to undeclared " + kind,
			Detail:   fmt.Sprintf("No %s named %q is declared.%s Declare it in %s.", kind, attr.Name, didYouMean(attr.Name, names), decl),
			Subject:  t.SourceRange().Ptr(),
		})
	}
	if len(better) == 0 {
		return diags
	}
	// Keep the other problems of the expression, drop the generic ones.
	for _, d := range diags {
		if d.Summary != "Unsupported attribute" {
			better = append(better, d)
		}
	}
	return better
}

func lookupVar(ctx *hcl.EvalContext, name string) cty.Value {
	for c := ctx; c != nil; c = c.Parent() {
		if v, ok := c.Variables[name]; ok {
			return v
		}
	}
	return cty.NilVal
}

// get evaluates the attribute name, when it is set, as a plain (not
// sensitive) value of type ty.
func (r *reader) get(attrs hcl.Attributes, name string, ty cty.Type, what string) (*hcl.Attribute, cty.Value, bool) {
	a, ok := attrs[name]
	if !ok {
		return nil, cty.NilVal, false
	}
	v, ok := r.eval(a)
	if !ok {
		return a, cty.NilVal, false
	}
	v, ok = r.typed(a, v, ty, what)
	return a, v, ok
}

// typed converts v to ty, reporting a type error at the attribute.
func (r *reader) typed(a *hcl.Attribute, v cty.Value, ty cty.Type, what string) (cty.Value, bool) {
	out, err := convert.Convert(v, ty)
	if err != nil {
		r.attrError(a, "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s required%s.", a.Name, what, butGot(v))
		return cty.NilVal, false
	}
	return out, true
}

func butGot(v cty.Value) string {
	if v == cty.NilVal {
		return ""
	}
	return ", but got " + v.Type().FriendlyName()
}

// plain rejects a sensitive value in an attribute that is shown in plans,
// object labels or logs.
func (r *reader) plain(a *hcl.Attribute, v cty.Value) (cty.Value, bool) {
	if v.ContainsMarked() {
		r.attrError(a, "Sensitive value not allowed here",
			"The attribute %q is shown in plans, logs and object labels, so it cannot hold a sensitive value (from secret() or a sensitive variable). Pass secrets through env, args or a config file.", a.Name)
		return cty.NilVal, false
	}
	return v, true
}

func (r *reader) str(attrs hcl.Attributes, name string, dst *string) bool {
	_, v, ok := r.get(attrs, name, cty.String, "string")
	if !ok {
		return false
	}
	*dst = v.AsString()
	return true
}

// oneOf decodes a string that must be one of the allowed words.
func (r *reader) oneOf(attrs hcl.Attributes, name string, dst *string, allowed ...string) bool {
	var s string
	if !r.str(attrs, name, &s) {
		return false
	}
	for _, w := range allowed {
		if s == w {
			*dst = s
			return true
		}
	}
	a := attrs[name]
	r.attrError(a, "Invalid value for "+name,
		"%q is not one of %s.%s", s, quoteList(allowed), didYouMean(s, allowed))
	return false
}

func (r *reader) value(attrs hcl.Attributes, name string, dst *Value) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := r.evalSensitive(a)
	if !ok {
		if v != cty.NilVal && !v.IsKnown() {
			*dst = unknownValue(v.IsMarked())
		}
		return false
	}
	return r.toValue(a, v, dst)
}

func (r *reader) toValue(a *hcl.Attribute, v cty.Value, dst *Value) bool {
	uv, marks := v.UnmarkDeep()
	sv, err := convert.Convert(uv, cty.String)
	if err != nil || sv.IsNull() {
		r.attrError(a, "Incorrect attribute value type",
			"Inappropriate value for attribute %q: string required%s.", a.Name, butGot(uv))
		return false
	}
	if !sv.IsKnown() {
		*dst = unknownValue(len(marks) > 0)
		return false
	}
	*dst = Value{v: sv.AsString(), sensitive: len(marks) > 0}
	return true
}

func (r *reader) boolean(attrs hcl.Attributes, name string, dst *bool) bool {
	_, v, ok := r.get(attrs, name, cty.Bool, "bool")
	if !ok {
		return false
	}
	*dst = v.True()
	return true
}

// integer decodes a whole number in [min, max].
func (r *reader) integer(attrs hcl.Attributes, name string, dst *int, min, max int) bool {
	a, v, ok := r.get(attrs, name, cty.Number, "number")
	if !ok {
		return false
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if acc != big.Exact {
		r.attrError(a, "Invalid value for "+name, "%s must be a whole number, not %s.", name, bf.Text('f', -1))
		return false
	}
	if i < int64(min) || i > int64(max) {
		r.attrError(a, "Invalid value for "+name, "%s must be between %d and %d, not %d.", name, min, max, i)
		return false
	}
	*dst = int(i)
	return true
}

func (r *reader) float(attrs hcl.Attributes, name string, dst *float64) bool {
	_, v, ok := r.get(attrs, name, cty.Number, "number")
	if !ok {
		return false
	}
	f, _ := v.AsBigFloat().Float64()
	*dst = f
	return true
}

// duration decodes a Go duration string, with "d" (days) and "w" (weeks)
// accepted as well: "30s", "5m", "1h30m", "30d".
func (r *reader) duration(attrs hcl.Attributes, name string, dst *time.Duration) bool {
	var s string
	if !r.str(attrs, name, &s) {
		return false
	}
	d, err := ParseDuration(s)
	if err != nil {
		r.attrError(attrs[name], "Invalid duration", "%s: %s. Use a number with a unit, such as \"30s\", \"5m\", \"2h\" or \"7d\".", name, err)
		return false
	}
	if d < 0 {
		r.attrError(attrs[name], "Invalid duration", "%s must not be negative.", name)
		return false
	}
	*dst = d
	return true
}

// ParseDuration parses a duration such as "90s", "1h30m" or "30d".
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	// Fold days and weeks into hours; time.ParseDuration knows the rest.
	var total time.Duration
	rest := s
	for {
		i := strings.IndexAny(rest, "dw")
		if i < 0 {
			break
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || i == 0 {
			return 0, fmt.Errorf("%q is not a valid duration", s)
		}
		unit := 24 * time.Hour
		if rest[i] == 'w' {
			unit *= 7
		}
		total += time.Duration(n * float64(unit))
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a valid duration", s)
		}
		total += d
	}
	return total, nil
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronExpr decodes a cron schedule (five fields, or @daily, @every 1h).
func (r *reader) cronExpr(attrs hcl.Attributes, name string, dst *string) bool {
	var s string
	if !r.str(attrs, name, &s) {
		return false
	}
	if _, err := cronParser.Parse(s); err != nil {
		r.attrError(attrs[name], "Invalid cron expression",
			"%s: %s. A schedule has five fields (minute hour day-of-month month day-of-week), such as \"0 3 * * *\", or is a descriptor such as \"@daily\" or \"@every 1h\".", name, err)
		return false
	}
	*dst = s
	return true
}

// ParseSchedule parses a cron schedule as the language accepts it.
func ParseSchedule(s string) (cron.Schedule, error) { return cronParser.Parse(s) }

func (r *reader) constraint(attrs hcl.Attributes, name string, dst **semver.Constraints, text *string) bool {
	var s string
	if !r.str(attrs, name, &s) {
		return false
	}
	c, err := r.parseConstraint(s)
	if err != nil {
		r.attrError(attrs[name], "Invalid version constraint",
			"%q is not a valid version constraint: %s. Write constraints such as \">= 1.2, < 2.0\", \"~> 1.4\" or \"^3\".", s, err)
		return false
	}
	*dst = c
	*text = s
	return true
}

func (r *reader) strings(attrs hcl.Attributes, name string, dst *[]string) bool {
	a, v, ok := r.get(attrs, name, cty.List(cty.String), "list of string")
	if !ok {
		return false
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			r.attrError(a, "Invalid value for "+name, "The list must not contain null.")
			return false
		}
		out = append(out, e.AsString())
	}
	*dst = out
	return true
}

// values decodes a list of strings, any of which may be sensitive.
func (r *reader) values(attrs hcl.Attributes, name string, dst *[]Value) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := r.evalSensitive(a)
	if !ok {
		return false
	}
	lv, ok := r.typed(a, v, cty.List(cty.String), "list of string")
	if !ok {
		return false
	}
	out := make([]Value, 0, lv.LengthInt())
	for it := lv.ElementIterator(); it.Next(); {
		_, e := it.Element()
		var val Value
		if !r.toValue(a, e, &val) {
			return false
		}
		out = append(out, val)
	}
	*dst = out
	return true
}

// valueMap decodes a map of strings, any of which may be sensitive.
func (r *reader) valueMap(attrs hcl.Attributes, name string, dst *map[string]Value) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, d := a.Expr.Value(r.ctx)
	if d.HasErrors() {
		*r.diags = append(*r.diags, r.explainRefs(a.Expr, d)...)
		return false
	}
	*r.diags = append(*r.diags, d...)
	if v.IsNull() {
		return false
	}
	mv, ok := r.typed(a, v, cty.Map(cty.String), "map of string")
	if !ok {
		return false
	}
	if !mv.IsKnown() {
		if r.unresolved != nil {
			*r.unresolved = append(*r.unresolved, r.prefix+a.Name)
		}
		return false
	}
	mv, mapMarks := mv.Unmark()
	out := make(map[string]Value, mv.LengthInt())
	for it := mv.ElementIterator(); it.Next(); {
		k, e := it.Element()
		e, marks := e.Unmark()
		if e.IsNull() {
			r.attrError(a, "Invalid value for "+name, "The value of %q must not be null.", k.AsString())
			return false
		}
		sens := len(marks) > 0 || len(mapMarks) > 0
		if !e.IsKnown() {
			out[k.AsString()] = unknownValue(sens)
			if r.unresolved != nil {
				*r.unresolved = append(*r.unresolved, r.prefix+a.Name+"."+k.AsString())
			}
			continue
		}
		out[k.AsString()] = Value{v: e.AsString(), sensitive: sens}
	}
	*dst = out
	return true
}

// stringMap decodes a map of plain strings.
func (r *reader) stringMap(attrs hcl.Attributes, name string, dst *map[string]string) bool {
	a, v, ok := r.get(attrs, name, cty.Map(cty.String), "map of string")
	if !ok {
		return false
	}
	out := make(map[string]string, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() {
			r.attrError(a, "Invalid value for "+name, "The value of %q must not be null.", k.AsString())
			return false
		}
		out[k.AsString()] = e.AsString()
	}
	*dst = out
	return true
}

// intOrPercent decodes 2 or "25%".
func (r *reader) intOrPercent(attrs hcl.Attributes, name string, dst *IntOrPercent) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := r.eval(a)
	if !ok {
		return false
	}
	out, err := toIntOrPercent(v)
	if err != nil {
		r.attrError(a, "Invalid value for "+name, "%s: %s.", name, err)
		return false
	}
	*dst = out
	return true
}

func toIntOrPercent(v cty.Value) (IntOrPercent, error) {
	switch {
	case v.Type() == cty.Number:
		bf := v.AsBigFloat()
		i, acc := bf.Int64()
		if acc != big.Exact || i < 0 || i > 1_000_000 {
			return IntOrPercent{}, fmt.Errorf("a replica count must be a whole number of at least 0, not %s", bf.Text('f', -1))
		}
		return IntOrPercent{Value: int(i)}, nil
	case v.Type() == cty.String:
		s := v.AsString()
		if p, ok := strings.CutSuffix(s, "%"); ok {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > 100 {
				return IntOrPercent{}, fmt.Errorf("%q is not a percentage from 0%% to 100%%", s)
			}
			return IntOrPercent{Value: n, Percent: true}, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return IntOrPercent{}, fmt.Errorf("%q is neither a whole number nor a percentage such as \"25%%\"", s)
		}
		return IntOrPercent{Value: n}, nil
	}
	return IntOrPercent{}, fmt.Errorf("a whole number or a percentage such as \"25%%\" is required, but got %s", v.Type().FriendlyName())
}

// refs decodes a list of references such as [server.a, server.b].
func (r *reader) refs(attrs hcl.Attributes, name, kind string, dst *[]Ref) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	exprs, d := hcl.ExprList(a.Expr)
	if d.HasErrors() {
		r.attrError(a, "Invalid reference list", "%s must be a list of references such as [%s.NAME].", name, kind)
		return false
	}
	out := make([]Ref, 0, len(exprs))
	good := true
	for _, e := range exprs {
		n, ok := r.ref(e, kind, 2)
		if !ok {
			good = false
			continue
		}
		out = append(out, Ref{Name: n[1], Range: e.Range()})
	}
	*dst = out
	return good
}

// ref decodes one static reference kind.a(.b) with want parts.
func (r *reader) ref(e hcl.Expression, kind string, want int) ([]string, bool) {
	trav, d := hcl.AbsTraversalForExpr(e)
	example := kind + ".NAME"
	if want == 3 {
		example = kind + ".TYPE.NAME"
	}
	if d.HasErrors() || len(trav) != want || trav.RootName() != kind {
		*r.diags = append(*r.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid reference",
			Detail:   fmt.Sprintf("A reference such as %s is required here, not a quoted string or an expression.", example),
			Subject:  e.Range().Ptr(),
		})
		return nil, false
	}
	parts := []string{kind}
	for _, step := range trav[1:] {
		attr, ok := step.(hcl.TraverseAttr)
		if !ok {
			*r.diags = append(*r.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid reference",
				Detail:   fmt.Sprintf("A reference such as %s is required here.", example),
				Subject:  e.Range().Ptr(),
			})
			return nil, false
		}
		parts = append(parts, attr.Name)
	}
	return parts, true
}

// ParseBytes parses a size such as 512, "512Mi", "1G" or "256MB" to bytes.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size: it must start with a number", s)
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	mult, ok := byteUnits[strings.TrimSpace(s[i:])]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit; use B, K, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024)", s)
	}
	return int64(n * float64(mult)), nil
}

var byteUnits = map[string]int64{
	"": 1, "B": 1,
	"K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
	"Ki": 1 << 10, "KiB": 1 << 10, "Mi": 1 << 20, "MiB": 1 << 20, "Gi": 1 << 30, "GiB": 1 << 30, "Ti": 1 << 40, "TiB": 1 << 40,
}

// size decodes a number of bytes or a string with a unit.
func (r *reader) size(attrs hcl.Attributes, name string, dst *int64) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := r.eval(a)
	if !ok {
		return false
	}
	if v.Type() == cty.Number {
		f, _ := v.AsBigFloat().Int64()
		if f <= 0 {
			r.attrError(a, "Invalid size", "%s must be greater than zero.", name)
			return false
		}
		*dst = f
		return true
	}
	sv, ok := r.typed(a, v, cty.String, "size such as \"512Mi\"")
	if !ok {
		return false
	}
	n, err := ParseBytes(sv.AsString())
	if err != nil || n <= 0 {
		if err == nil {
			err = fmt.Errorf("it must be greater than zero")
		}
		r.attrError(a, "Invalid size", "%s: %s.", name, err)
		return false
	}
	*dst = n
	return true
}

// cpu decodes cores as a number (0.5) or millicores as a string ("500m").
func (r *reader) cpu(attrs hcl.Attributes, name string, dst *int64) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := r.eval(a)
	if !ok {
		return false
	}
	var milli float64
	switch v.Type() {
	case cty.Number:
		f, _ := v.AsBigFloat().Float64()
		milli = f * 1000
	case cty.String:
		s := v.AsString()
		if m, ok := strings.CutSuffix(s, "m"); ok {
			f, err := strconv.ParseFloat(m, 64)
			if err != nil {
				milli = -1
			} else {
				milli = f
			}
		} else if f, err := strconv.ParseFloat(s, 64); err == nil {
			milli = f * 1000
		} else {
			milli = -1
		}
	default:
		milli = -1
	}
	if milli < 1 {
		r.attrError(a, "Invalid CPU limit", "%s must be at least one millicore: a number of cores (0.5) or of millicores (\"500m\").", name)
		return false
	}
	*dst = int64(milli)
	return true
}

func quoteList(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = strconv.Quote(w)
	}
	switch len(q) {
	case 0:
		return "none"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// didYouMean returns " Did you mean "x"?" when a close candidate exists.
func didYouMean(given string, candidates []string) string {
	if s := nameSuggestion(given, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

func nameSuggestion(given string, candidates []string) string {
	best, bestDist := "", 3
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := levenshtein(given, c); d < bestDist && d < len(given) {
			best, bestDist = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// DidYouMean returns " Did you mean "x"?" when one of candidates is close
// to given, else "": for errors about names outside the language (a server
// named on the command line).
func DidYouMean(given string, candidates []string) string { return didYouMean(given, candidates) }
