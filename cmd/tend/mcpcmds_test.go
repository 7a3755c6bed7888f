package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rogpeppe/go-internal/testscript"
)

// mcpSession connects to the MCP server at url for one script command.
func mcpSession(ts *testscript.TestScript, url string) (*mcp.ClientSession, context.Context, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	client := mcp.NewClient(&mcp.Implementation{Name: "tend-script", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		cancel()
		ts.Fatalf("connecting to %s: %v", url, err)
	}
	return cs, ctx, func() { cs.Close(); cancel() }
}

// callTool calls tool with args (JSON) and returns its structured result
// as JSON.
func callTool(ts *testscript.TestScript, cs *mcp.ClientSession, ctx context.Context, tool, args string) []byte {
	var in map[string]any
	if err := json.Unmarshal([]byte(args), &in); err != nil {
		ts.Fatalf("arguments of %s: %v", tool, err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: in})
	if err != nil {
		ts.Fatalf("calling %s: %v", tool, err)
	}
	if res.IsError {
		b, _ := json.Marshal(res.Content)
		ts.Fatalf("%s answered an error: %s", tool, b)
	}
	out, err := json.Marshal(res.StructuredContent)
	ts.Check(err)
	return out
}

// cmdMCPCall: mcp-call URL TOOL [ARGS-JSON] calls a tool of the MCP server
// at URL and prints its structured result (JSON) on stdout.
func cmdMCPCall(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mcp-call URL TOOL [ARGS-JSON]")
	}
	in := "{}"
	if len(args) > 2 {
		in = args[2]
	}
	cs, ctx, done := mcpSession(ts, args[0])
	defer done()
	fmt.Fprintf(ts.Stdout(), "%s\n", callTool(ts, cs, ctx, args[1], in))
}

// cmdNotesClear: notes-clear URL deletes every note of the mcp-notes
// server at URL through its MCP tools (list_notes, delete_note).
func cmdNotesClear(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: notes-clear URL")
	}
	cs, ctx, done := mcpSession(ts, args[0])
	defer done()
	var list struct {
		Notes []struct {
			ID string `json:"id"`
		} `json:"notes"`
	}
	ts.Check(json.Unmarshal(callTool(ts, cs, ctx, "list_notes", "{}"), &list))
	for _, n := range list.Notes {
		callTool(ts, cs, ctx, "delete_note", fmt.Sprintf(`{"id":%q}`, n.ID))
	}
	fmt.Fprintf(ts.Stdout(), "deleted %d notes\n", len(list.Notes))
}

// cmdFlipByte: flip-byte GLOB flips one byte in the middle of every file
// that GLOB (relative to $WORK) matches, as a damaged disk would.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: flip-byte GLOB")
	}
	files, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(files) == 0 {
		ts.Fatalf("no file matches %s", args[0])
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		ts.Check(err)
		if len(b) == 0 {
			ts.Fatalf("%s is empty", f)
		}
		b[len(b)/2] ^= 0x01
		ts.Check(os.WriteFile(f, b, 0o600))
	}
}
