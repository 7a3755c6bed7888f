package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tools' names, in the order tools/list shows them.
var toolNames = []string{"add_note", "get_note", "list_notes", "search_notes", "delete_note"}

// Tool inputs. The SDK derives each tool's JSON schema from these types: a
// field without omitempty is required, and the jsonschema tag is its
// description.

type addNoteInput struct {
	Title string   `json:"title" jsonschema:"the title of the note; must not be empty"`
	Body  string   `json:"body,omitempty" jsonschema:"the text of the note"`
	Tags  []string `json:"tags,omitempty" jsonschema:"tags to file the note under, such as work or todo; stored in lower case"`
}

type idInput struct {
	ID string `json:"id" jsonschema:"the id of the note, as returned by add_note, list_notes or search_notes"`
}

type listNotesInput struct {
	Tag string `json:"tag,omitempty" jsonschema:"if set, only the notes with this tag (case-insensitive)"`
}

type searchNotesInput struct {
	Query string `json:"query" jsonschema:"the text to look for, case-insensitive, in the titles and bodies of the notes"`
}

// Tool outputs.

type notesOutput struct {
	Notes []Note `json:"notes" jsonschema:"the matching notes, oldest first"`
	Count int    `json:"count" jsonschema:"how many notes matched"`
}

type deleteNoteOutput struct {
	Deleted Note `json:"deleted" jsonschema:"the note that was deleted"`
}

// newMCPServer builds the MCP server and its tools over store. An error
// returned by a tool handler becomes a tool result with isError set, which
// the model can read, not a JSON-RPC protocol error.
func newMCPServer(store *Store, m *metrics) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{
		Name:    "mcp-notes",
		Title:   "Notes",
		Version: version,
	}, &mcp.ServerOptions{
		Instructions: "A small notes store. Save notes with add_note, find them with " +
			"search_notes (text) or list_notes (tag), read one with get_note and remove one with delete_note.",
	})

	s.AddReceivingMiddleware(countToolCalls(m))
	yes, no := true, false

	mcp.AddTool(s, &mcp.Tool{
		Name: "add_note",
		Description: "Add a note with a title, an optional body and optional tags. " +
			"Returns the new note, including the id that the other tools take.",
		Annotations: &mcp.ToolAnnotations{Title: "Add a note", DestructiveHint: &no, OpenWorldHint: &no},
	}, func(_ context.Context, _ *mcp.CallToolRequest, in addNoteInput) (*mcp.CallToolResult, Note, error) {
		n, err := store.Add(in.Title, in.Body, in.Tags)
		return nil, n, err
	})

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

	mcp.AddTool(s, &mcp.Tool{
		Name:        "list_notes",
		Description: "List the notes, oldest first. With a tag, only the notes that have that tag.",
		Annotations: &mcp.ToolAnnotations{Title: "List notes", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, func(_ context.Context, _ *mcp.CallToolRequest, in listNotesInput) (*mcp.CallToolResult, notesOutput, error) {
		ns := store.List(in.Tag)
		return nil, notesOutput{Notes: ns, Count: len(ns)}, nil
	})

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

	return s
}

func unknownID(id string) error {
	return fmt.Errorf("no note with id %q; list_notes and search_notes show the ids", id)
}

// countToolCalls is a receiving middleware that counts every tools/call, and
// those that ended in a tool error, including calls whose arguments did not
// match the schema (those never reach the tool's handler).
func countToolCalls(m *metrics) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			ctr, ok := req.(*mcp.CallToolRequest)
			if method != "tools/call" || !ok || ctr.Params == nil {
				return next(ctx, method, req)
			}
			name := ctr.Params.Name
			if !slices.Contains(toolNames, name) {
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
