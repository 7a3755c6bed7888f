package main

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tool sets are tested in process, over in-memory transports: what
// tools/list, resources/list and prompts/list serve, and that the handlers
// really accept what the schemas say. The end-to-end test checks the builds.

// connectSet serves the tool set set over a fresh store and connects a
// client to it.
func connectSet(t *testing.T, set string) (*mcp.ClientSession, *Store) {
	t.Helper()
	store, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(time.Now(), store.Count, func() int64 { return 0 })
	srv := newMCPServerFor(set, store, m, false)
	st, ct := mcp.NewInMemoryTransports()
	ctx := t.Context()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "toolset-test", Version: "0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, store
}

// listed returns the tools the session serves, by name.
func listed(t *testing.T, cs *mcp.ClientSession) map[string]*mcp.Tool {
	t.Helper()
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*mcp.Tool{}
	for _, tool := range res.Tools {
		out[tool.Name] = tool
	}
	return out
}

// schemaOf decodes a tool's input schema.
func schemaOf(t *testing.T, tool *mcp.Tool) (props map[string]map[string]any, required []string) {
	t.Helper()
	b, err := json.Marshal(tool.InputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Properties, s.Required
}

func promptNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	if cs.InitializeResult().Capabilities.Prompts == nil {
		return nil
	}
	for p, err := range cs.Prompts(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, p.Name)
	}
	return names
}

func TestToolsetsServeTheirTools(t *testing.T) {
	t.Parallel()
	for set, want := range toolsets {
		name := set
		if name == toolsetDefault {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cs, _ := connectSet(t, set)
			got := slices.Sorted(maps.Keys(listed(t, cs)))
			if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("tools/list = %v, want %v", got, want)
			}
			wantPrompts := []string{summarizePrompt}
			if set == toolsetBreaking {
				wantPrompts = nil
			}
			if got := promptNames(t, cs); !slices.Equal(got, wantPrompts) {
				t.Errorf("prompts/list = %v, want %v", got, wantPrompts)
			}
		})
	}
}

func TestDefaultToolset(t *testing.T) {
	t.Parallel()
	cs, _ := connectSet(t, toolsetDefault)
	tools := listed(t, cs)
	props, required := schemaOf(t, tools["list_notes"])
	if len(props) != 1 || props["tag"]["type"] != "string" || len(required) != 0 {
		t.Errorf("list_notes takes %v (required %v), want one optional string tag", props, required)
	}
	if _, required := schemaOf(t, tools["add_note"]); !slices.Equal(required, []string{"title"}) {
		t.Errorf("add_note requires %v, want only title", required)
	}

	// The resources: every note, and one note by its id.
	note := callAndDecode[Note](t, cs, "add_note", map[string]any{"title": "Groceries", "tags": []string{"home"}})
	res, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: allNotesURI})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Contents) != 1 || res.Contents[0].MIMEType != "application/json" || !strings.Contains(res.Contents[0].Text, note.ID) {
		t.Errorf("%s = %+v, want the note as JSON", allNotesURI, res.Contents)
	}
	res, err = cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: noteURIPrefix + note.ID})
	if err != nil {
		t.Fatal(err)
	}
	var got Note
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &got); err != nil || got.ID != note.ID {
		t.Errorf("%s%s = %s (%v)", noteURIPrefix, note.ID, res.Contents[0].Text, err)
	}
	if _, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: noteURIPrefix + "nope"}); err == nil {
		t.Error("reading an unknown note succeeded")
	}
	templates, err := cs.ListResourceTemplates(t.Context(), nil)
	if err != nil || len(templates.ResourceTemplates) != 1 || templates.ResourceTemplates[0].URITemplate != noteURITemplate {
		t.Errorf("resources/templates/list = %v, %v", templates, err)
	}

	// The prompt carries the notes with the tag.
	pr, err := cs.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: summarizePrompt, Arguments: map[string]string{"tag": "HOME"}})
	if err != nil {
		t.Fatal(err)
	}
	if text := pr.Messages[0].Content.(*mcp.TextContent).Text; !strings.Contains(text, "Groceries") || !strings.Contains(text, `tagged "home"`) {
		t.Errorf("prompt text = %q", text)
	}
}

func TestAdditiveToolset(t *testing.T) {
	t.Parallel()
	cs, _ := connectSet(t, toolsetAdditive)
	tools := listed(t, cs)
	props, required := schemaOf(t, tools["list_notes"])
	if props["limit"]["type"] != "integer" || slices.Contains(required, "limit") {
		t.Errorf("list_notes takes %v (required %v), want an optional integer limit", props, required)
	}
	for _, title := range []string{"one", "two", "three"} {
		callAndDecode[Note](t, cs, "add_note", map[string]any{"title": title, "tags": []string{"x"}})
	}
	if got := callAndDecode[notesOutput](t, cs, "list_notes", map[string]any{"limit": 2}); got.Count != 2 || got.Notes[0].Title != "one" {
		t.Errorf("list_notes(limit 2) = %+v, want the two oldest", got)
	}
	if got := callAndDecode[notesOutput](t, cs, "list_notes", map[string]any{}); got.Count != 3 {
		t.Errorf("list_notes() = %+v, want all three", got)
	}
	wantToolError(t, callTool(t, cs, "list_notes", map[string]any{"limit": -1}), "limit must not be negative")
	if got := callAndDecode[countNotesOutput](t, cs, "count_notes", map[string]any{"tag": "X"}); got.Count != 3 {
		t.Errorf("count_notes(X) = %+v, want 3", got)
	}
	if got := callAndDecode[countNotesOutput](t, cs, "count_notes", map[string]any{"tag": "y"}); got.Count != 0 {
		t.Errorf("count_notes(y) = %+v, want 0", got)
	}
}

func TestBreakingToolset(t *testing.T) {
	t.Parallel()
	cs, _ := connectSet(t, toolsetBreaking)
	tools := listed(t, cs)
	if _, required := schemaOf(t, tools["add_note"]); !slices.Contains(required, "body") {
		t.Errorf("add_note requires %v, want body among them", required)
	}
	props, _ := schemaOf(t, tools["list_notes"])
	if typ, _ := json.Marshal(props["tag"]["type"]); !strings.Contains(string(typ), "array") {
		t.Errorf("list_notes tag has type %s, want array", typ)
	}

	// The handlers accept what the schemas say, and nothing else.
	wantToolError(t, callTool(t, cs, "add_note", map[string]any{"title": "no body"}), "body")
	wantToolError(t, callTool(t, cs, "add_note", map[string]any{"title": "blank body", "body": "  "}), "body must not be empty")
	callAndDecode[Note](t, cs, "add_note", map[string]any{"title": "a", "body": "b", "tags": []string{"work", "urgent"}})
	callAndDecode[Note](t, cs, "add_note", map[string]any{"title": "c", "body": "d", "tags": []string{"work"}})
	if got := callAndDecode[notesOutput](t, cs, "list_notes", map[string]any{"tag": []string{"WORK", "urgent"}}); got.Count != 1 || got.Notes[0].Title != "a" {
		t.Errorf("list_notes([work urgent]) = %+v, want the note with both", got)
	}
	if got := callAndDecode[notesOutput](t, cs, "list_notes", map[string]any{"tag": []string{"work"}}); got.Count != 2 {
		t.Errorf("list_notes([work]) = %+v, want two", got)
	}
	// A client of the default set sends one tag as a string: refused.
	wantToolError(t, callTool(t, cs, "list_notes", map[string]any{"tag": "work"}), "tag")
	// delete_note is gone.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_note", Arguments: map[string]any{"id": "x"}})
	if err == nil && !res.IsError {
		t.Error("delete_note still answers in the v2-breaking tool set")
	}
}

// callAndDecode calls a tool and decodes its structured result.
func callAndDecode[T any](t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) T {
	t.Helper()
	var v T
	structured(t, callTool(t, cs, name, args), &v)
	return v
}

func TestSearchToolset(t *testing.T) {
	t.Parallel()
	cs, _ := connectSet(t, toolsetSearch)
	tools := listed(t, cs)
	props, required := schemaOf(t, tools["search"])
	if props["query"]["type"] != "string" || props["limit"]["type"] != "integer" || !slices.Equal(required, []string{"query"}) {
		t.Errorf("search takes %v (required %v), want a required query and an optional integer limit", props, required)
	}
	first := callAndDecode[Note](t, cs, "add_note", map[string]any{"title": "tend one"})
	callAndDecode[Note](t, cs, "add_note", map[string]any{"title": "tend two"})
	if got := callAndDecode[notesOutput](t, cs, "search", map[string]any{"query": "TEND", "limit": 1}); got.Count != 1 || got.Notes[0].ID != first.ID {
		t.Errorf("search(TEND, limit 1) = %+v, want the oldest match", got)
	}
	wantToolError(t, callTool(t, cs, "search", map[string]any{"query": " "}), "query must not be empty")
	if got := callAndDecode[Note](t, cs, "fetch", map[string]any{"id": first.ID}); got.Title != "tend one" {
		t.Errorf("fetch(%s) = %+v", first.ID, got)
	}
	wantToolError(t, callTool(t, cs, "fetch", map[string]any{"id": "nope"}), "nope")
}
