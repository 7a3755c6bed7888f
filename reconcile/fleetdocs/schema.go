package fleetdocs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// param is one row of a tool's parameter table.
type param struct {
	Path        string // dotted for nested properties, [] for array items
	Type        string
	Required    bool
	Description string
	Values      string // enum values, default
}

// maxParamDepth bounds how deep the table follows nested schemas.
const maxParamDepth = 8

// params lists the parameters of an input schema: every property, sorted by
// name, each followed by its nested properties.
func params(raw json.RawMessage) ([]param, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var s map[string]any
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	var out []param
	objectParams(&out, "", s, 0)
	return out, nil
}

func objectParams(out *[]param, prefix string, s map[string]any, depth int) {
	props, _ := s["properties"].(map[string]any)
	var required []string
	if l, ok := s["required"].([]any); ok {
		for _, v := range l {
			if name, ok := v.(string); ok {
				required = append(required, name)
			}
		}
	}
	for _, name := range sortedKeys(props) {
		p, _ := props[name].(map[string]any)
		path := prefix + name
		*out = append(*out, param{
			Path:        path,
			Type:        typeText(p),
			Required:    slices.Contains(required, name),
			Description: str(p["description"]),
			Values:      valuesText(p),
		})
		nested(out, path, p, depth+1)
	}
}

// nested adds the rows of what p holds: an object's properties, an array's
// items (when they are objects).
func nested(out *[]param, path string, p map[string]any, depth int) {
	if p == nil || depth >= maxParamDepth {
		return
	}
	if _, ok := p["properties"].(map[string]any); ok {
		objectParams(out, path+".", p, depth)
	}
	if items, ok := p["items"].(map[string]any); ok {
		if _, ok := items["properties"].(map[string]any); ok {
			objectParams(out, path+"[].", items, depth)
		}
	}
}

// typeText renders a schema's type: "string", "array of string",
// "integer or string", with " (nullable)" when null is allowed; "any" when
// it has no type.
func typeText(p map[string]any) string {
	var types []string
	switch t := p["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, v := range t {
			if s, ok := v.(string); ok {
				types = append(types, s)
			}
		}
	}
	nullable := slices.Contains(types, "null")
	types = slices.DeleteFunc(types, func(t string) bool { return t == "null" })
	slices.Sort(types)
	for i, t := range types {
		if t == "array" {
			if items, ok := p["items"].(map[string]any); ok {
				if it := typeText(items); it != "any" {
					types[i] = "array of " + it
				}
			}
		}
	}
	text := strings.Join(types, " or ")
	if text == "" {
		text = "any"
		if nullable {
			text = "null"
		}
	} else if nullable {
		text += " (nullable)"
	}
	return text
}

// valuesText lists the enum values and the default of a schema.
func valuesText(p map[string]any) string {
	var parts []string
	if l, ok := p["enum"].([]any); ok {
		vals := make([]string, 0, len(l))
		for _, v := range l {
			vals = append(vals, jsonText(v))
		}
		parts = append(parts, "one of "+strings.Join(vals, ", "))
	}
	if v, ok := p["const"]; ok {
		parts = append(parts, "always "+jsonText(v))
	}
	if v, ok := p["default"]; ok {
		parts = append(parts, "default "+jsonText(v))
	}
	return strings.Join(parts, "; ")
}

func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// indentJSON pretty-prints a canonical JSON document for a code block.
func indentJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}
