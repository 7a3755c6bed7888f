package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tool sets a build can serve, chosen with -ldflags "-X main.toolset=NAME"
// (see README.md). Each really changes what tools/list shows and what the
// handlers accept, so that tend's contract checks meet real differences.
const (
	// toolsetDefault is the five tools, the resources and the prompt.
	toolsetDefault = ""
	// toolsetAdditive adds the tool count_notes and the optional parameter
	// limit of list_notes: a compatible (minor) release.
	toolsetAdditive = "v2-additive"
	// toolsetBreaking removes delete_note and the prompt summarize_notes,
	// makes the body of add_note required and turns the tag of list_notes
	// into a list of tags: a release that breaks clients.
	toolsetBreaking = "v2-breaking"
	// toolsetSearch adds the tools search and fetch, the generic pair
	// search-style MCP clients expect (examples/mcp-fleet's search server
	// declares them): mcp-notes stands in for that server in tests.
	toolsetSearch = "search"
)

// toolsets lists the tools of each tool set.
var toolsets = map[string][]string{
	toolsetDefault:  {"add_note", "get_note", "list_notes", "search_notes", "delete_note"},
	toolsetAdditive: {"add_note", "get_note", "list_notes", "search_notes", "delete_note", "count_notes"},
	toolsetBreaking: {"add_note", "get_note", "list_notes", "search_notes"},
	toolsetSearch:   {"add_note", "get_note", "list_notes", "search_notes", "delete_note", "search", "fetch"},
}

// toolNames are the names of the tools this build serves (nil for an
// unknown tool set, which run refuses).
var toolNames = toolsets[toolset]

// Tool inputs. The SDK derives each tool's JSON schema from these types: a
// field without omitempty is required, and the jsonschema tag is its
// description.

type addNoteInput struct {
	Title string   `json:"title" jsonschema:"the title of the note; must not be empty"`
	Body  string   `json:"body,omitempty" jsonschema:"the text of the note"`
	Tags  []string `json:"tags,omitempty" jsonschema:"tags to file the note under, such as work or todo; stored in lower case"`
}

// addNoteInputV2 is add_note's input in the v2-breaking tool set: the body
// is required.
type addNoteInputV2 struct {
	Title string   `json:"title" jsonschema:"the title of the note; must not be empty"`
	Body  string   `json:"body" jsonschema:"the text of the note; must not be empty"`
	Tags  []string `json:"tags,omitempty" jsonschema:"tags to file the note under, such as work or todo; stored in lower case"`
}

type idInput struct {
	ID string `json:"id" jsonschema:"the id of the note, as returned by add_note, list_notes or search_notes"`
}

type listNotesInput struct {
	Tag string `json:"tag,omitempty" jsonschema:"if set, only the notes with this tag (case-insensitive)"`
}

// listNotesInputV2 is list_notes' input in the v2-additive tool set: a new
// optional limit.
type listNotesInputV2 struct {
	Tag   string `json:"tag,omitempty" jsonschema:"if set, only the notes with this tag (case-insensitive)"`
	Limit int    `json:"limit,omitempty" jsonschema:"if set, at most this many notes, the oldest first"`
}

// listNotesInputTags is list_notes' input in the v2-breaking tool set: tag
// is a list of tags instead of one tag.
type listNotesInputTags struct {
	Tag []string `json:"tag,omitempty" jsonschema:"if set, only the notes that have every one of these tags (case-insensitive)"`
}

type searchNotesInput struct {
	Query string `json:"query" jsonschema:"the text to look for, case-insensitive, in the titles and bodies of the notes"`
}

type searchInput struct {
	Query string `json:"query" jsonschema:"the text to look for, case-insensitive, in the titles and bodies of the notes"`
	Limit int    `json:"limit,omitempty" jsonschema:"at most this many results; 0 or absent means all"`
}

type countNotesInput struct {
	Tag string `json:"tag,omitempty" jsonschema:"if set, count only the notes with this tag (case-insensitive)"`
}

// Tool outputs.

type notesOutput struct {
	Notes []Note `json:"notes" jsonschema:"the matching notes, oldest first"`
	Count int    `json:"count" jsonschema:"how many notes matched"`
}

type deleteNoteOutput struct {
	Deleted Note `json:"deleted" jsonschema:"the note that was deleted"`
}

type countNotesOutput struct {
	Count int `json:"count" jsonschema:"how many notes there are (with the tag, if one was given)"`
}

// The resources and the prompt.
const (
	allNotesURI     = "notes://all"
	noteURIPrefix   = "notes://note/"
	noteURITemplate = noteURIPrefix + "{id}"
	summarizePrompt = "summarize_notes"
)

// newMCPServer builds the MCP server of this build's tool set over store;
// with samplingTool, it adds summarize_with_model (sampling.go).
func newMCPServer(store *Store, m *metrics, samplingTool bool) *mcp.Server {
	return newMCPServerFor(toolset, store, m, samplingTool)
}

// newMCPServerFor builds the MCP server and its tools, resources and prompt
// over store, for the tool set set (one of toolsets). An error returned by a
// tool handler becomes a tool result with isError set, which the model can
// read, not a JSON-RPC protocol error.
func newMCPServerFor(set string, store *Store, m *metrics, samplingTool bool) *mcp.Server {
	instructions := "A small notes store. Save notes with add_note, find them with " +
		"search_notes (text) or list_notes (tag), read one with get_note and remove one with delete_note."
	switch set {
	case toolsetAdditive:
		instructions += " count_notes counts them."
	case toolsetBreaking:
		instructions = "A small notes store. Save notes with add_note (a title and a body), find them with " +
			"search_notes (text) or list_notes (tags) and read one with get_note. Notes cannot be deleted."
	}
	s := mcp.NewServer(&mcp.Implementation{
		Name:    "mcp-notes",
		Title:   "Notes",
		Version: version,
	}, &mcp.ServerOptions{Instructions: instructions})

	names := toolsets[set]
	if samplingTool {
		names = append(slices.Clone(names), summarizeTool)
	}
	s.AddReceivingMiddleware(countToolCalls(m, names))
	yes, no := true, false

	addNote := &mcp.Tool{
		Name: "add_note",
		Description: "Add a note with a title, an optional body and optional tags. " +
			"Returns the new note, including the id that the other tools take.",
		Annotations: &mcp.ToolAnnotations{Title: "Add a note", DestructiveHint: &no, OpenWorldHint: &no},
	}
	if set == toolsetBreaking {
		addNote.Description = "Add a note with a title, a body and optional tags. " +
			"Returns the new note, including the id that the other tools take."
		mcp.AddTool(s, addNote, func(_ context.Context, _ *mcp.CallToolRequest, in addNoteInputV2) (*mcp.CallToolResult, Note, error) {
			if strings.TrimSpace(in.Body) == "" {
				return nil, Note{}, errors.New("body must not be empty")
			}
			n, err := store.Add(in.Title, in.Body, in.Tags)
			return nil, n, err
		})
	} else {
		mcp.AddTool(s, addNote, func(_ context.Context, _ *mcp.CallToolRequest, in addNoteInput) (*mcp.CallToolResult, Note, error) {
			n, err := store.Add(in.Title, in.Body, in.Tags)
			return nil, n, err
		})
	}

	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_note",
		Description: "Get one note by its id. An unknown id is an error.",
		Annotations: &mcp.ToolAnnotations{Title: "Get a note", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, func(_ context.Context, _ *mcp.CallToolRequest, in idInput) (*mcp.CallToolResult, Note, error) {
		n, err := store.Get(in.ID)
		if errors.Is(err, errNotFound) {
			return nil, Note{}, unknownID(in.ID)
		}
		return nil, n, err
	})

	listNotes := &mcp.Tool{
		Name:        "list_notes",
		Description: "List the notes, oldest first. With a tag, only the notes that have that tag.",
		Annotations: &mcp.ToolAnnotations{Title: "List notes", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}
	switch set {
	case toolsetAdditive:
		listNotes.Description = "List the notes, oldest first. With a tag, only the notes that have that tag; " +
			"with a limit, at most that many."
		mcp.AddTool(s, listNotes, func(_ context.Context, _ *mcp.CallToolRequest, in listNotesInputV2) (*mcp.CallToolResult, notesOutput, error) {
			if in.Limit < 0 {
				return nil, notesOutput{}, errors.New("limit must not be negative; leave it out for every note")
			}
			ns := store.List(in.Tag)
			if in.Limit > 0 && len(ns) > in.Limit {
				ns = ns[:in.Limit]
			}
			return nil, notesOutput{Notes: ns, Count: len(ns)}, nil
		})
	case toolsetBreaking:
		listNotes.Description = "List the notes, oldest first. With tags, only the notes that have every one of them."
		mcp.AddTool(s, listNotes, func(_ context.Context, _ *mcp.CallToolRequest, in listNotesInputTags) (*mcp.CallToolResult, notesOutput, error) {
			ns := store.ListTags(in.Tag)
			return nil, notesOutput{Notes: ns, Count: len(ns)}, nil
		})
	default:
		mcp.AddTool(s, listNotes, func(_ context.Context, _ *mcp.CallToolRequest, in listNotesInput) (*mcp.CallToolResult, notesOutput, error) {
			ns := store.List(in.Tag)
			return nil, notesOutput{Notes: ns, Count: len(ns)}, nil
		})
	}

	mcp.AddTool(s, &mcp.Tool{
		Name: "search_notes",
		Description: "Find the notes whose title or body contains the query, ignoring case " +
			"(a plain substring match, not a word or regular-expression search). Oldest first.",
		Annotations: &mcp.ToolAnnotations{Title: "Search notes", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, func(_ context.Context, _ *mcp.CallToolRequest, in searchNotesInput) (*mcp.CallToolResult, notesOutput, error) {
		if strings.TrimSpace(in.Query) == "" {
			return nil, notesOutput{}, errors.New("query must not be empty; to see every note, use list_notes")
		}
		ns := store.Search(in.Query)
		return nil, notesOutput{Notes: ns, Count: len(ns)}, nil
	})

	if set != toolsetBreaking {
		mcp.AddTool(s, &mcp.Tool{
			Name:        "delete_note",
			Description: "Delete a note by its id, for good. Returns the deleted note. An unknown id is an error.",
			Annotations: &mcp.ToolAnnotations{Title: "Delete a note", DestructiveHint: &yes, IdempotentHint: true, OpenWorldHint: &no},
		}, func(_ context.Context, _ *mcp.CallToolRequest, in idInput) (*mcp.CallToolResult, deleteNoteOutput, error) {
			n, err := store.Delete(in.ID)
			if errors.Is(err, errNotFound) {
				return nil, deleteNoteOutput{}, unknownID(in.ID)
			}
			return nil, deleteNoteOutput{Deleted: n}, err
		})
	}

	if set == toolsetAdditive {
		mcp.AddTool(s, &mcp.Tool{
			Name:        "count_notes",
			Description: "Count the notes. With a tag, only the notes that have that tag.",
			Annotations: &mcp.ToolAnnotations{Title: "Count notes", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
		}, func(_ context.Context, _ *mcp.CallToolRequest, in countNotesInput) (*mcp.CallToolResult, countNotesOutput, error) {
			return nil, countNotesOutput{Count: len(store.List(in.Tag))}, nil
		})
	}

	if set == toolsetSearch {
		mcp.AddTool(s, &mcp.Tool{
			Name:        "search",
			Description: "Search the notes: those whose title or body contains the query, ignoring case, oldest first.",
			Annotations: &mcp.ToolAnnotations{Title: "Search", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
		}, func(_ context.Context, _ *mcp.CallToolRequest, in searchInput) (*mcp.CallToolResult, notesOutput, error) {
			if strings.TrimSpace(in.Query) == "" {
				return nil, notesOutput{}, errors.New("query must not be empty")
			}
			if in.Limit < 0 {
				return nil, notesOutput{}, errors.New("limit must not be negative")
			}
			ns := store.Search(in.Query)
			if in.Limit > 0 && len(ns) > in.Limit {
				ns = ns[:in.Limit]
			}
			return nil, notesOutput{Notes: ns, Count: len(ns)}, nil
		})
		mcp.AddTool(s, &mcp.Tool{
			Name:        "fetch",
			Description: "Fetch one note by the id a search returned. An unknown id is an error.",
			Annotations: &mcp.ToolAnnotations{Title: "Fetch", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
		}, func(_ context.Context, _ *mcp.CallToolRequest, in idInput) (*mcp.CallToolResult, Note, error) {
			n, err := store.Get(in.ID)
			if errors.Is(err, errNotFound) {
				return nil, Note{}, unknownID(in.ID)
			}
			return nil, n, err
		})
	}

	if samplingTool {
		addSamplingTool(s, store)
	}
	addResources(s, store)
	if set != toolsetBreaking {
		addSummarizePrompt(s, store)
	}
	return s
}

// addResources serves every note as one JSON document (notes://all) and
// each note by its id (notes://note/{id}).
func addResources(s *mcp.Server, store *Store) {
	s.AddResource(&mcp.Resource{
		URI:         allNotesURI,
		Name:        "all-notes",
		Title:       "All notes",
		Description: "Every note, oldest first, as a JSON array.",
		MIMEType:    "application/json",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return jsonResource(req.Params.URI, store.List(""))
	})
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: noteURITemplate,
		Name:        "note",
		Title:       "One note",
		Description: "One note by its id, as a JSON object.",
		MIMEType:    "application/json",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		uri := req.Params.URI
		n, err := store.Get(strings.TrimPrefix(uri, noteURIPrefix))
		if errors.Is(err, errNotFound) {
			return nil, mcp.ResourceNotFoundError(uri)
		}
		if err != nil {
			return nil, err
		}
		return jsonResource(uri, n)
	})
}

func jsonResource(uri string, v any) (*mcp.ReadResourceResult, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
		URI: uri, MIMEType: "application/json", Text: string(b),
	}}}, nil
}

// addSummarizePrompt adds the prompt summarize_notes, which asks the model
// for a summary of the notes (with a tag: of the notes that have it).
func addSummarizePrompt(s *mcp.Server, store *Store) {
	s.AddPrompt(&mcp.Prompt{
		Name:        summarizePrompt,
		Title:       "Summarize notes",
		Description: "Ask for a short summary of the notes, or of the notes with one tag.",
		Arguments: []*mcp.PromptArgument{{
			Name:        "tag",
			Description: "if set, summarize only the notes with this tag",
		}},
	}, func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		tag := req.Params.Arguments["tag"]
		ns := store.List(tag)
		b, err := json.MarshalIndent(ns, "", "  ")
		if err != nil {
			return nil, err
		}
		what := "these notes"
		if tag != "" {
			what = fmt.Sprintf("these notes tagged %q", strings.ToLower(strings.TrimSpace(tag)))
		}
		return &mcp.GetPromptResult{
			Description: "A summary of " + what,
			Messages: []*mcp.PromptMessage{{
				Role: "user",
				Content: &mcp.TextContent{Text: fmt.Sprintf(
					"Summarize %s in a few bullet points, most recent last (%d notes):\n\n%s", what, len(ns), b)},
			}},
		}, nil
	})
}

func unknownID(id string) error {
	return fmt.Errorf("no note with id %q; list_notes and search_notes show the ids", id)
}

// countToolCalls is a receiving middleware that counts every tools/call, and
// those that ended in a tool error, including calls whose arguments did not
// match the schema (those never reach the tool's handler). A name not among
// names (the served tools) counts as "unknown", which bounds the label.
func countToolCalls(m *metrics, names []string) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			ctr, ok := req.(*mcp.CallToolRequest)
			if method != "tools/call" || !ok || ctr.Params == nil {
				return next(ctx, method, req)
			}
			name := ctr.Params.Name
			if !slices.Contains(names, name) {
				name = "unknown" // bound the label's values
			}
			m.toolCall(name)
			res, err := next(ctx, method, req)
			if r, ok := res.(*mcp.CallToolResult); err != nil || (ok && r != nil && r.IsError) {
				m.toolError(name)
			}
			return res, err
		}
	}
}
