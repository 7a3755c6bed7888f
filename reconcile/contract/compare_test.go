package contract

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// tools builds a normalized contract of tools from name → input schema.
func tools(t *testing.T, schemas map[string]string) *Contract {
	t.Helper()
	c := &Contract{}
	for name, s := range schemas {
		c.Tools = append(c.Tools, Tool{Name: name, InputSchema: json.RawMessage(s)})
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return c
}

// lines renders changes as "kind param: detail" lines, to compare.
func lines(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s: %s", c.Kind, c.Param, c.Detail))
	}
	return out
}

func checkDiff(t *testing.T, d Diff, breaking, additions []string) {
	t.Helper()
	if got := lines(d.Breaking); !slices.Equal(got, breaking) {
		t.Errorf("breaking:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(breaking, "\n"))
	}
	if got := lines(d.Additions); !slices.Equal(got, additions) {
		t.Errorf("additions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(additions, "\n"))
	}
}

const (
	// notesV1 is the add_note schema of mcp-notes, as the go-sdk derives it.
	addNoteV1 = `{"type":"object","properties":{"title":{"type":"string"},"body":{"type":"string"},"tags":{"type":["null","array"],"items":{"type":"string"}}},"required":["title"],"additionalProperties":false}`
	listV1    = `{"type":"object","properties":{"tag":{"type":"string"}},"additionalProperties":false}`
)

func TestCompareTools(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		old, new            map[string]string
		breaking, additions []string
	}{
		{
			name:     "ToolRemoved",
			old:      map[string]string{"add_note": addNoteV1, "delete_note": `{"type":"object"}`},
			new:      map[string]string{"add_note": addNoteV1},
			breaking: []string{`tool-removed : tool "delete_note" was removed`},
		},
		{
			name:      "ToolAdded",
			old:       map[string]string{"add_note": addNoteV1},
			new:       map[string]string{"add_note": addNoteV1, "count_notes": `{"type":"object"}`},
			additions: []string{`tool-added : tool "count_notes" was added`},
		},
		{
			name:     "ParamNowRequired",
			old:      map[string]string{"add_note": addNoteV1},
			new:      map[string]string{"add_note": strings.Replace(addNoteV1, `"required":["title"]`, `"required":["title","body"]`, 1)},
			breaking: []string{`param-required body: parameter "body" of tool "add_note" is now required`},
		},
		{
			name:      "ParamNowOptional",
			old:       map[string]string{"add_note": addNoteV1},
			new:       map[string]string{"add_note": strings.Replace(addNoteV1, `"required":["title"]`, `"required":[]`, 1)},
			additions: []string{`param-optional title: parameter "title" of tool "add_note" is now optional`},
		},
		{
			name:     "NewRequiredParam",
			old:      map[string]string{"list_notes": listV1},
			new:      map[string]string{"list_notes": `{"type":"object","properties":{"tag":{"type":"string"},"folder":{"type":"string"}},"required":["folder"],"additionalProperties":false}`},
			breaking: []string{`param-required folder: tool "list_notes" has a new required parameter "folder"`},
		},
		{
			name:      "NewOptionalParam",
			old:       map[string]string{"list_notes": listV1},
			new:       map[string]string{"list_notes": `{"type":"object","properties":{"tag":{"type":"string"},"limit":{"type":"integer"}},"additionalProperties":false}`},
			additions: []string{`param-added limit: tool "list_notes" has a new optional parameter "limit"`},
		},
		{
			name:     "ParamRemovedClosedSchema",
			old:      map[string]string{"list_notes": listV1},
			new:      map[string]string{"list_notes": `{"type":"object","properties":{},"additionalProperties":false}`},
			breaking: []string{`param-removed tag: parameter "tag" of tool "list_notes" was removed`},
		},
		{
			name:     "ParamRemovedOpenSchema",
			old:      map[string]string{"list_notes": `{"type":"object","properties":{"tag":{"type":"string"}}}`},
			new:      map[string]string{"list_notes": `{"type":"object","properties":{}}`},
			breaking: []string{`param-removed tag: parameter "tag" of tool "list_notes" was removed`},
		},
		{
			name:     "TypeChanged",
			old:      map[string]string{"list_notes": listV1},
			new:      map[string]string{"list_notes": `{"type":"object","properties":{"tag":{"type":"array","items":{"type":"string"}}},"additionalProperties":false}`},
			breaking: []string{`param-type-changed tag: parameter "tag" of tool "list_notes" changed type from string to array`},
		},
		{
			name:     "TypeChangedToNullableArray",
			old:      map[string]string{"list_notes": listV1},
			new:      map[string]string{"list_notes": `{"type":"object","properties":{"tag":{"type":["null","array"],"items":{"type":"string"}}},"additionalProperties":false}`},
			breaking: []string{`param-type-changed tag: parameter "tag" of tool "list_notes" changed type from string to array or null`},
		},
		{
			name:     "TypeNarrowed",
			old:      map[string]string{"t": `{"properties":{"n":{"type":["number","string"]}}}`},
			new:      map[string]string{"t": `{"properties":{"n":{"type":"number"}}}`},
			breaking: []string{`param-type-changed n: parameter "n" of tool "t" changed type from number or string to number`},
		},
		{
			name:     "TypeFromAny",
			old:      map[string]string{"t": `{"properties":{"n":{}}}`},
			new:      map[string]string{"t": `{"properties":{"n":{"type":"string"}}}`},
			breaking: []string{`param-type-changed n: parameter "n" of tool "t" changed type from any to string`},
		},
		{
			name: "TypeWidened",
			old:  map[string]string{"t": `{"properties":{"n":{"type":"integer"},"s":{"type":"string"},"a":{"type":"string"}}}`},
			new:  map[string]string{"t": `{"properties":{"n":{"type":"number"},"s":{"type":["string","null"]},"a":{}}}`},
			additions: []string{
				`param-type-widened a: parameter "a" of tool "t" widened its type from string to any`,
				`param-type-widened n: parameter "n" of tool "t" widened its type from integer to number`,
				`param-type-widened s: parameter "s" of tool "t" widened its type from string to string or null`,
			},
		},
		{
			name: "EnumValues",
			old:  map[string]string{"list_notes": `{"properties":{"order":{"type":"string","enum":["oldest","newest","title"]},"n":{"enum":[1,2]}}}`},
			new:  map[string]string{"list_notes": `{"properties":{"order":{"type":"string","enum":["oldest","newest","random"]},"n":{"enum":[1,2,3]}}}`},
			breaking: []string{
				`enum-value-removed order: value "title" was removed from the enum of parameter "order" of tool "list_notes"`,
			},
			additions: []string{
				`enum-value-added n: value 3 was added to the enum of parameter "n" of tool "list_notes"`,
				`enum-value-added order: value "random" was added to the enum of parameter "order" of tool "list_notes"`,
			},
		},
		{
			name:      "EnumRestrictedAndLifted",
			old:       map[string]string{"t": `{"properties":{"a":{"type":"string"},"b":{"type":"string","enum":["x"]}}}`},
			new:       map[string]string{"t": `{"properties":{"a":{"type":"string","enum":["x","y"]},"b":{"type":"string"}}}`},
			breaking:  []string{`enum-restricted a: parameter "a" of tool "t" now only accepts the values "x", "y"`},
			additions: []string{`enum-lifted b: parameter "b" of tool "t" no longer limits its values to an enum`},
		},
		{
			name: "Nested",
			old: map[string]string{"search": `{"type":"object","properties":{"query":{"type":"string"},"filter":{"type":"object",` +
				`"properties":{"tag":{"type":"string"},"after":{"type":"string"},"old":{"type":"string"}},"additionalProperties":false}},"required":["query"]}`},
			new: map[string]string{"search": `{"type":"object","properties":{"query":{"type":"string"},"filter":{"type":"object",` +
				`"properties":{"tag":{"type":"integer"},"after":{"type":"string"},"limit":{"type":"integer"},"sort":{"enum":["a"]}},"required":["after","sort"],"additionalProperties":false}},"required":["query"]}`},
			breaking: []string{
				`param-required filter.after: parameter "filter.after" of tool "search" is now required`,
				`param-removed filter.old: parameter "filter.old" of tool "search" was removed`,
				`param-required filter.sort: tool "search" has a new required parameter "filter.sort"`,
				`param-type-changed filter.tag: parameter "filter.tag" of tool "search" changed type from string to integer`,
			},
			additions: []string{
				`param-added filter.limit: tool "search" has a new optional parameter "filter.limit"`,
			},
		},
		{
			name: "ArrayItems",
			old:  map[string]string{"t": `{"properties":{"tags":{"type":"array","items":{"type":"string"}},"people":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}}}}}}`},
			new:  map[string]string{"t": `{"properties":{"tags":{"type":"array","items":{"type":"integer"}},"people":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}}`},
			breaking: []string{
				`param-required people[].name: parameter "people[].name" of tool "t" is now required`,
				`param-type-changed tags[]: parameter "tags[]" of tool "t" changed type from string to integer`,
			},
		},
		{
			name: "TypeChangeHidesNestedNoise",
			old:  map[string]string{"t": `{"properties":{"filter":{"type":"object","properties":{"tag":{"type":"string"}},"required":["tag"]}}}`},
			new:  map[string]string{"t": `{"properties":{"filter":{"type":"string"}}}`},
			breaking: []string{
				`param-type-changed filter: parameter "filter" of tool "t" changed type from object to string`,
			},
		},
		{
			name:      "ExtraParams",
			old:       map[string]string{"a": `{"type":"object","properties":{}}`, "b": `{"type":"object","additionalProperties":false}`},
			new:       map[string]string{"a": `{"type":"object","properties":{},"additionalProperties":false}`, "b": `{"type":"object"}`},
			breaking:  []string{`extra-params-refused : tool "a" now refuses properties it does not declare (additionalProperties is false)`},
			additions: []string{`extra-params-accepted : tool "b" now accepts properties it does not declare`},
		},
		{
			name: "SameSchemaOtherKeyOrderAndDescriptions",
			old:  map[string]string{"add_note": addNoteV1},
			new: map[string]string{"add_note": `{"additionalProperties":false,"required":["title"],"type":"object","properties":{"tags":{"items":{"type":"string"},"type":["null","array"],` +
				`"description":"new words"},"body":{"type":"string"},"title":{"type":"string","description":"the title"}}}`},
		},
		{
			name: "Order",
			old: map[string]string{
				"b": `{"properties":{"y":{"type":"string"},"x":{"type":"string"}},"required":["x"]}`,
				"a": `{"properties":{"z":{"type":"string"}}}`,
				"c": `{}`,
			},
			new: map[string]string{
				"b": `{"properties":{"y":{"type":"integer"}},"required":["y"]}`,
				"a": `{"properties":{}}`,
				"d": `{}`,
			},
			breaking: []string{
				`param-removed z: parameter "z" of tool "a" was removed`,
				`param-removed x: parameter "x" of tool "b" was removed`,
				`param-required y: parameter "y" of tool "b" is now required`,
				`param-type-changed y: parameter "y" of tool "b" changed type from string to integer`,
				`tool-removed : tool "c" was removed`,
			},
			additions: []string{`tool-added : tool "d" was added`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := Compare(tools(t, tc.old), tools(t, tc.new))
			checkDiff(t, d, tc.breaking, tc.additions)
			// Compare is deterministic.
			for range 5 {
				if again := Compare(tools(t, tc.old), tools(t, tc.new)); !slices.Equal(lines(again.Breaking), lines(d.Breaking)) ||
					!slices.Equal(lines(again.Additions), lines(d.Additions)) {
					t.Fatal("Compare gave another order on another run")
				}
			}
		})
	}
}

func TestCompareResourcesAndPrompts(t *testing.T) {
	t.Parallel()
	old := &Contract{
		Resources: []Resource{
			{URI: "notes://all", Name: "all-notes"},
			{URITemplate: "notes://note/{id}", Name: "note"},
			{URI: "notes://stats", Name: "stats"},
		},
		Prompts: []Prompt{
			{Name: "summarize_notes", Arguments: []PromptArgument{{Name: "tag"}, {Name: "style", Required: true}, {Name: "lang"}, {Name: "tone", Required: true}}},
			{Name: "triage"},
		},
	}
	new := &Contract{
		Resources: []Resource{
			{URI: "notes://all", Name: "all-notes", Description: "changed words"},
			{URITemplate: "notes://tag/{tag}", Name: "by-tag"},
			{URI: "notes://stats", Name: "stats"},
		},
		Prompts: []Prompt{
			{Name: "summarize_notes", Arguments: []PromptArgument{{Name: "tag", Required: true}, {Name: "style"}, {Name: "length"}, {Name: "audience", Required: true}}},
			{Name: "plan"},
		},
	}
	for _, c := range []*Contract{old, new} {
		if err := c.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	checkDiff(t, Compare(old, new),
		[]string{
			`resource-removed : resource template "notes://note/{id}" was removed`,
			`prompt-arg-required audience: prompt "summarize_notes" has a new required argument "audience"`,
			`prompt-arg-removed lang: argument "lang" of prompt "summarize_notes" was removed`,
			`prompt-arg-required tag: argument "tag" of prompt "summarize_notes" is now required`,
			`prompt-arg-removed tone: argument "tone" of prompt "summarize_notes" was removed`,
			`prompt-removed : prompt "triage" was removed`,
		},
		[]string{
			`resource-added : resource template "notes://tag/{tag}" was added`,
			`prompt-added : prompt "plan" was added`,
			`prompt-arg-added length: prompt "summarize_notes" has a new optional argument "length"`,
			`prompt-arg-optional style: argument "style" of prompt "summarize_notes" is now optional`,
		})

	gone := &Contract{Resources: []Resource{{URI: "notes://stats", Name: "stats"}}}
	checkDiff(t, Compare(old, gone),
		[]string{
			`resource-removed : resource "notes://all" was removed`,
			`resource-removed : resource template "notes://note/{id}" was removed`,
			`prompt-removed : prompt "summarize_notes" was removed`,
			`prompt-removed : prompt "triage" was removed`,
		}, nil)
}

func TestCompareNil(t *testing.T) {
	t.Parallel()
	c := tools(t, map[string]string{"a": `{}`})
	checkDiff(t, Compare(nil, c), nil, []string{`tool-added : tool "a" was added`})
	checkDiff(t, Compare(c, nil), []string{`tool-removed : tool "a" was removed`}, nil)
	if d := Compare(c, c); !d.IsEmpty() || d.Needs() != BumpPatch {
		t.Errorf("Compare(c, c) = %+v, needs %s", d, d.Needs())
	}
}

func TestDiffNeeds(t *testing.T) {
	t.Parallel()
	if got := (Diff{Additions: []Change{{}}}).Needs(); got != BumpMinor {
		t.Errorf("additions need %s, want minor", got)
	}
	if got := (Diff{Breaking: []Change{{}}, Additions: []Change{{}}}).Needs(); got != BumpMajor {
		t.Errorf("breaks need %s, want major", got)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	c := &Contract{
		Tools: []Tool{
			{Name: "b", InputSchema: json.RawMessage(`{ "type": "object", "description": "<b> & co", "properties": {"z": {"type":"number","default":1.50}, "a": {}} }`)},
			{Name: "a"},
			{Name: "b", Description: "a repeat: dropped"},
		},
		Resources: []Resource{{URI: "z://"}, {URITemplate: "a://{x}"}, {URI: "m://"}},
		Prompts:   []Prompt{{Name: "p", Arguments: []PromptArgument{{Name: "y"}, {Name: "x"}}}},
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"","protocol_version":"","client_capabilities":["roots"],"tools":[{"name":"a","input_schema":{}},` +
		`{"name":"b","input_schema":{"description":"\u003cb\u003e \u0026 co","properties":{"a":{},"z":{"default":1.50,"type":"number"}},"type":"object"}}],` +
		`"resources":[{"uri_template":"a://{x}","name":""},{"uri":"m://","name":""},{"uri":"z://","name":""}],` +
		`"prompts":[{"name":"p","arguments":[{"name":"x","required":false},{"name":"y","required":false}]}]}`
	if string(b) != want {
		t.Errorf("normalized contract:\n%s\nwant:\n%s", b, want)
	}
	if got := string(c.Tool("b").InputSchema); !strings.Contains(got, `"<b> & co"`) {
		t.Errorf("the canonical schema escapes HTML: %s", got)
	}
	if c.Tool("nope") != nil {
		t.Error("Tool(nope) is not nil")
	}
	empty := &Contract{}
	if err := empty.Normalize(); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(empty); string(b) != `{"version":"","protocol_version":"","client_capabilities":["roots"],"tools":[],"resources":[],"prompts":[]}` {
		t.Errorf("empty contract = %s", b)
	}
	bad := &Contract{Tools: []Tool{{Name: "x", InputSchema: json.RawMessage(`{"a":`)}}}
	if err := bad.Normalize(); err == nil || !strings.Contains(err.Error(), `tool "x"`) {
		t.Errorf("Normalize of a bad schema: %v", err)
	}
}
