package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Kinds of change. See the package documentation for which break clients.
const (
	KindToolRemoved = "tool-removed"
	KindToolAdded   = "tool-added"

	KindParamRemoved        = "param-removed"
	KindParamAdded          = "param-added" // a new optional parameter
	KindParamRequired       = "param-required"
	KindParamOptional       = "param-optional"
	KindParamTypeChanged    = "param-type-changed"
	KindParamTypeWidened    = "param-type-widened"
	KindEnumValueRemoved    = "enum-value-removed"
	KindEnumValueAdded      = "enum-value-added"
	KindEnumRestricted      = "enum-restricted" // an enum where there was none
	KindEnumLifted          = "enum-lifted"     // no enum where there was one
	KindExtraParamsRefused  = "extra-params-refused"
	KindExtraParamsAccepted = "extra-params-accepted"

	KindResourceRemoved = "resource-removed"
	KindResourceAdded   = "resource-added"

	KindPromptRemoved     = "prompt-removed"
	KindPromptAdded       = "prompt-added"
	KindPromptArgRemoved  = "prompt-arg-removed"
	KindPromptArgAdded    = "prompt-arg-added" // a new optional argument
	KindPromptArgRequired = "prompt-arg-required"
	KindPromptArgOptional = "prompt-arg-optional"
)

// Change is one difference between two contracts.
type Change struct {
	Kind string `json:"kind"`
	// Item is the tool or prompt name, or the resource URI or URI template.
	Item string `json:"item"`
	// Param is the parameter (a dotted path for nested properties, "[]"
	// for the items of an array) or the prompt argument, if the change is
	// about one.
	Param string `json:"param,omitempty"`
	// Old and New are the values that changed (types, enum values), if any.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
	// Detail says it for a person: `tool "delete_note" was removed`.
	Detail string `json:"detail"`
}

// Diff is the difference between an old and a new contract: the changes
// that break clients of the old one, and the additions. Both lists are in a
// fixed order: tools, then resources, then prompts, each by name; within a
// tool, by parameter path.
//
// When the two contracts were fetched declaring different client
// capabilities, Capabilities says so, and every difference is in Unjudged
// instead: a tool a server offers only to clients that declare sampling
// comes and goes with the capability, not with the release, so neither
// list can be trusted to break or to add anything.
type Diff struct {
	Breaking  []Change `json:"breaking,omitempty"`
	Additions []Change `json:"additions,omitempty"`

	Capabilities *CapabilitiesChange `json:"capabilities,omitempty"`
	Unjudged     []Change            `json:"unjudged,omitempty"`
}

// CapabilitiesChange is a change of the client capabilities a contract was
// fetched with (Contract.Declared), each list sorted.
type CapabilitiesChange struct {
	Old []string `json:"old"`
	New []string `json:"new"`
}

// IsEmpty reports whether the contracts expose the same things.
func (d Diff) IsEmpty() bool {
	return len(d.Breaking) == 0 && len(d.Additions) == 0 && len(d.Unjudged) == 0
}

// Needs is the least version bump the changes ask for: BumpMajor when some
// break clients, BumpMinor when there are additions, else BumpPatch.
func (d Diff) Needs() string {
	switch {
	case len(d.Breaking) > 0:
		return BumpMajor
	case len(d.Additions) > 0:
		return BumpMinor
	}
	return BumpPatch
}

// maxDepth bounds how deep Compare follows nested schemas.
const maxDepth = 8

// Compare returns what changed from old to new. A nil contract exposes
// nothing: Compare(nil, c) lists everything in c as additions. Contracts
// fetched declaring different client capabilities are not judged: the
// differences go to Unjudged (see Diff).
func Compare(old, new *Contract) Diff {
	var d Diff
	if old != nil && new != nil {
		if o, n := old.Declared(), new.Declared(); !slices.Equal(o, n) {
			d.Capabilities = &CapabilitiesChange{Old: o, New: n}
		}
	}
	if old == nil {
		old = &Contract{}
	}
	if new == nil {
		new = &Contract{}
	}
	compareTools(&d, old.Tools, new.Tools)
	compareResources(&d, old.Resources, new.Resources)
	comparePrompts(&d, old.Prompts, new.Prompts)
	if d.Capabilities != nil {
		d.Unjudged = append(d.Breaking, d.Additions...)
		d.Breaking, d.Additions = nil, nil
	}
	return d
}

func (d *Diff) breaks(c Change) { d.Breaking = append(d.Breaking, c) }
func (d *Diff) adds(c Change)   { d.Additions = append(d.Additions, c) }

// union returns the keys of a and b, sorted, without repeats.
func union[T any](a, b []T, key func(T) string) []string {
	var keys []string
	for _, x := range a {
		keys = append(keys, key(x))
	}
	for _, x := range b {
		keys = append(keys, key(x))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func find[T any](s []T, key func(T) string, k string) (T, bool) {
	for _, x := range s {
		if key(x) == k {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func compareTools(d *Diff, old, new []Tool) {
	name := func(t Tool) string { return t.Name }
	for _, n := range union(old, new, name) {
		o, inOld := find(old, name, n)
		nw, inNew := find(new, name, n)
		switch {
		case !inNew:
			d.breaks(Change{Kind: KindToolRemoved, Item: n, Detail: fmt.Sprintf("tool %q was removed", n)})
		case !inOld:
			d.adds(Change{Kind: KindToolAdded, Item: n, Detail: fmt.Sprintf("tool %q was added", n)})
		default:
			sc := schemaCompare{d: d, tool: n}
			sc.object("", decodeSchema(o.InputSchema), decodeSchema(nw.InputSchema), 0)
		}
	}
}

func compareResources(d *Diff, old, new []Resource) {
	for _, k := range union(old, new, Resource.Key) {
		o, inOld := find(old, Resource.Key, k)
		nw, inNew := find(new, Resource.Key, k)
		switch {
		case !inNew:
			d.breaks(Change{Kind: KindResourceRemoved, Item: k, Detail: fmt.Sprintf("%s %q was removed", resourceNoun(o), k)})
		case !inOld:
			d.adds(Change{Kind: KindResourceAdded, Item: k, Detail: fmt.Sprintf("%s %q was added", resourceNoun(nw), k)})
		}
	}
}

func resourceNoun(r Resource) string {
	if r.IsTemplate() {
		return "resource template"
	}
	return "resource"
}

func comparePrompts(d *Diff, old, new []Prompt) {
	name := func(p Prompt) string { return p.Name }
	arg := func(a PromptArgument) string { return a.Name }
	for _, n := range union(old, new, name) {
		o, inOld := find(old, name, n)
		nw, inNew := find(new, name, n)
		switch {
		case !inNew:
			d.breaks(Change{Kind: KindPromptRemoved, Item: n, Detail: fmt.Sprintf("prompt %q was removed", n)})
			continue
		case !inOld:
			d.adds(Change{Kind: KindPromptAdded, Item: n, Detail: fmt.Sprintf("prompt %q was added", n)})
			continue
		}
		for _, a := range union(o.Arguments, nw.Arguments, arg) {
			oa, inOld := find(o.Arguments, arg, a)
			na, inNew := find(nw.Arguments, arg, a)
			c := Change{Item: n, Param: a}
			switch {
			case !inNew:
				c.Kind, c.Detail = KindPromptArgRemoved, fmt.Sprintf("argument %q of prompt %q was removed", a, n)
				d.breaks(c)
			case !inOld && na.Required:
				c.Kind, c.Detail = KindPromptArgRequired, fmt.Sprintf("prompt %q has a new required argument %q", n, a)
				d.breaks(c)
			case !inOld:
				c.Kind, c.Detail = KindPromptArgAdded, fmt.Sprintf("prompt %q has a new optional argument %q", n, a)
				d.adds(c)
			case !oa.Required && na.Required:
				c.Kind, c.Detail = KindPromptArgRequired, fmt.Sprintf("argument %q of prompt %q is now required", a, n)
				d.breaks(c)
			case oa.Required && !na.Required:
				c.Kind, c.Detail = KindPromptArgOptional, fmt.Sprintf("argument %q of prompt %q is now optional", a, n)
				d.adds(c)
			}
		}
	}
}

// schema is a decoded JSON schema object; nil accepts anything.
type schema map[string]any

// decodeSchema decodes raw; anything but a JSON object (true, an empty
// document) is the schema that accepts anything.
func decodeSchema(raw json.RawMessage) schema {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var s map[string]any
	if err := dec.Decode(&s); err != nil {
		return nil
	}
	return s
}

func asSchema(v any) schema {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return nil
}

// properties returns the schema's properties, or nil.
func (s schema) properties() map[string]schema {
	m, ok := s["properties"].(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]schema, len(m))
	for k, v := range m {
		out[k] = asSchema(v)
	}
	return out
}

func (s schema) required() []string {
	var out []string
	if l, ok := s["required"].([]any); ok {
		for _, v := range l {
			if name, ok := v.(string); ok {
				out = append(out, name)
			}
		}
	}
	return out
}

// types returns the schema's types, sorted; none means any type.
func (s schema) types() []string {
	var out []string
	switch t := s["type"].(type) {
	case string:
		out = []string{t}
	case []any:
		for _, v := range t {
			if name, ok := v.(string); ok {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// enum returns the schema's enum values, each as canonical JSON, and
// whether it has an enum.
func (s schema) enum() ([]string, bool) {
	l, ok := s["enum"].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(l))
	for _, v := range l {
		b, err := marshalCanonical(v)
		if err != nil {
			continue
		}
		out = append(out, string(b))
	}
	return out, true
}

// closed reports whether the schema refuses undeclared properties.
func (s schema) closed() bool {
	b, ok := s["additionalProperties"].(bool)
	return ok && !b
}

func (s schema) items() schema { return asSchema(s["items"]) }

// schemaCompare compares the input schemas of one tool.
type schemaCompare struct {
	d    *Diff
	tool string
}

// paramText names a parameter for a person.
func (sc schemaCompare) paramText(path string) string {
	return fmt.Sprintf("parameter %q of tool %q", path, sc.tool)
}

// object compares the properties of two object schemas; prefix is the path
// of the object ("" at the top, "filter." inside).
func (sc schemaCompare) object(prefix string, old, new schema, depth int) {
	subject := fmt.Sprintf("tool %q", sc.tool)
	if prefix != "" {
		subject = sc.paramText(strings.TrimSuffix(prefix, "."))
	}
	param := strings.TrimSuffix(prefix, ".")
	switch {
	case !old.closed() && new.closed():
		sc.d.breaks(Change{Kind: KindExtraParamsRefused, Item: sc.tool, Param: param,
			Detail: subject + " now refuses properties it does not declare (additionalProperties is false)"})
	case old.closed() && !new.closed():
		sc.d.adds(Change{Kind: KindExtraParamsAccepted, Item: sc.tool, Param: param,
			Detail: subject + " now accepts properties it does not declare"})
	}

	oldProps, newProps := old.properties(), new.properties()
	oldReq, newReq := old.required(), new.required()
	var names []string
	for n := range oldProps {
		names = append(names, n)
	}
	for n := range newProps {
		names = append(names, n)
	}
	names = append(append(names, oldReq...), newReq...)
	slices.Sort(names)
	names = slices.Compact(names)

	for _, n := range names {
		path := prefix + n
		o, inOld := oldProps[n]
		nw, inNew := newProps[n]
		inOld = inOld || slices.Contains(oldReq, n)
		inNew = inNew || slices.Contains(newReq, n)
		wasReq, isReq := slices.Contains(oldReq, n), slices.Contains(newReq, n)
		c := Change{Item: sc.tool, Param: path}
		switch {
		case !inNew:
			c.Kind, c.Detail = KindParamRemoved, sc.paramText(path)+" was removed"
			sc.d.breaks(c)
			continue
		case !inOld && isReq:
			c.Kind, c.Detail = KindParamRequired, fmt.Sprintf("tool %q has a new required parameter %q", sc.tool, path)
			sc.d.breaks(c)
			continue
		case !inOld:
			c.Kind, c.Detail = KindParamAdded, fmt.Sprintf("tool %q has a new optional parameter %q", sc.tool, path)
			sc.d.adds(c)
			continue
		case !wasReq && isReq:
			c.Kind, c.Detail = KindParamRequired, sc.paramText(path)+" is now required"
			sc.d.breaks(c)
		case wasReq && !isReq:
			c.Kind, c.Detail = KindParamOptional, sc.paramText(path)+" is now optional"
			sc.d.adds(c)
		}
		sc.value(path, o, nw, depth+1)
	}
}

// value compares the schemas of one parameter (or of an array's items):
// type, enum, and what is nested.
func (sc schemaCompare) value(path string, old, new schema, depth int) {
	c := Change{Item: sc.tool, Param: path}
	ot, nt := old.types(), new.types()
	typeChanged := false
	if !slices.Equal(ot, nt) {
		c.Old, c.New = typeText(ot), typeText(nt)
		if accepts(nt, ot) {
			c.Kind = KindParamTypeWidened
			c.Detail = fmt.Sprintf("%s widened its type from %s to %s", sc.paramText(path), c.Old, c.New)
			sc.d.adds(c)
		} else {
			typeChanged = true
			c.Kind = KindParamTypeChanged
			c.Detail = fmt.Sprintf("%s changed type from %s to %s", sc.paramText(path), c.Old, c.New)
			sc.d.breaks(c)
		}
	}

	oe, oldHas := old.enum()
	ne, newHas := new.enum()
	switch {
	case oldHas && newHas:
		for _, v := range oe {
			if !slices.Contains(ne, v) {
				sc.d.breaks(Change{Kind: KindEnumValueRemoved, Item: sc.tool, Param: path, Old: v,
					Detail: fmt.Sprintf("value %s was removed from the enum of %s", v, sc.paramText(path))})
			}
		}
		for _, v := range ne {
			if !slices.Contains(oe, v) {
				sc.d.adds(Change{Kind: KindEnumValueAdded, Item: sc.tool, Param: path, New: v,
					Detail: fmt.Sprintf("value %s was added to the enum of %s", v, sc.paramText(path))})
			}
		}
	case newHas:
		list := strings.Join(ne, ", ")
		sc.d.breaks(Change{Kind: KindEnumRestricted, Item: sc.tool, Param: path, New: list,
			Detail: fmt.Sprintf("%s now only accepts the values %s", sc.paramText(path), list)})
	case oldHas:
		sc.d.adds(Change{Kind: KindEnumLifted, Item: sc.tool, Param: path, Old: strings.Join(oe, ", "),
			Detail: sc.paramText(path) + " no longer limits its values to an enum"})
	}

	// What is nested, unless the type changed (which says it all already).
	if typeChanged || depth >= maxDepth {
		return
	}
	if old.properties() != nil || new.properties() != nil || old.closed() || new.closed() {
		sc.object(path+".", old, new, depth)
	}
	if oi, ni := old.items(), new.items(); oi != nil && ni != nil {
		sc.value(path+"[]", oi, ni, depth+1)
	}
}

// accepts reports whether a value of every type in old is also accepted by
// the types in new. No types means any type; a number accepts an integer.
func accepts(new, old []string) bool {
	if len(new) == 0 {
		return true
	}
	if len(old) == 0 {
		return false
	}
	for _, t := range old {
		if !slices.Contains(new, t) && (t != "integer" || !slices.Contains(new, "number")) {
			return false
		}
	}
	return true
}

// typeText renders a set of types: "string", "array or null", "any".
func typeText(types []string) string {
	switch len(types) {
	case 0:
		return "any"
	case 1:
		return types[0]
	}
	// null last: "array or null" reads better than "null or array".
	ts := slices.Clone(types)
	slices.SortStableFunc(ts, func(a, b string) int {
		switch {
		case a == "null" && b != "null":
			return 1
		case b == "null" && a != "null":
			return -1
		}
		return strings.Compare(a, b)
	})
	return strings.Join(ts[:len(ts)-1], ", ") + " or " + ts[len(ts)-1]
}
