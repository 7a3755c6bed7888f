// Package notestest talks to an mcp-notes server (examples/mcp-notes)
// through its MCP tools, over the streamable HTTP transport, as a client of
// the server would: the end-to-end tests of backups and restores write,
// delete and read notes this way, never through the server's files.
//
// Every call opens its own session, so a call made after the server
// restarted (a restore halts and resumes it) needs no reconnecting.
package notestest

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Note is a note as the tools return it.
type Note struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Body  string `json:"body"`
}

// call calls tool of the MCP server at url (such as
// http://127.0.0.1:8080/mcp) with args and decodes its structured result
// into out.
func call(t testing.TB, url, tool string, args map[string]any, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "tend-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s at %s: %v", tool, url, err)
	}
	if res.IsError {
		b, _ := json.Marshal(res.Content)
		t.Fatalf("%s at %s answered an error: %s", tool, url, b)
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("the result of %s: %v (%s)", tool, err, b)
		}
	}
}

// Add writes a note through add_note and returns it.
func Add(t testing.TB, url, title, body string) Note {
	t.Helper()
	var n Note
	call(t, url, "add_note", map[string]any{"title": title, "body": body}, &n)
	if n.ID == "" || n.Title != title {
		t.Fatalf("add_note %q at %s returned %+v", title, url, n)
	}
	return n
}

// List returns every note through list_notes, oldest first.
func List(t testing.TB, url string) []Note {
	t.Helper()
	var out struct {
		Notes []Note `json:"notes"`
	}
	call(t, url, "list_notes", map[string]any{}, &out)
	return out.Notes
}

// Delete deletes a note through delete_note.
func Delete(t testing.TB, url, id string) {
	t.Helper()
	call(t, url, "delete_note", map[string]any{"id": id}, nil)
}

// Clear deletes every note (list_notes, then delete_note each) and returns
// how many there were.
func Clear(t testing.TB, url string) int {
	t.Helper()
	notes := List(t, url)
	for _, n := range notes {
		Delete(t, url, n.ID)
	}
	return len(notes)
}

// Titles returns the titles of notes, sorted.
func Titles(notes []Note) []string {
	out := make([]string, 0, len(notes))
	for _, n := range notes {
		out = append(out, n.Title)
	}
	sort.Strings(out)
	return out
}
