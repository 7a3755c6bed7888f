package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// connectSampling serves the default tool set with --sampling-tool and
// connects a client with the given options to it.
func connectSampling(t *testing.T, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	store, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Add("Groceries", "milk, eggs", []string{"home"}); err != nil {
		t.Fatal(err)
	}
	srv := newMCPServerFor(toolsetDefault, store, newMetrics(time.Now(), store.Count, func() int64 { return 0 }), true)
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "sampling-test", Version: "0"}, opts).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func TestSamplingToolOnlyForSamplingClients(t *testing.T) {
	t.Parallel()
	t.Run("WithoutSampling", func(t *testing.T) {
		t.Parallel()
		cs := connectSampling(t, nil)
		tools := listed(t, cs)
		if _, ok := tools[summarizeTool]; ok {
			t.Errorf("a client without sampling is offered %s", summarizeTool)
		}
		if _, ok := tools["add_note"]; !ok || len(tools) != len(toolsets[toolsetDefault]) {
			t.Errorf("tools = %v, want the default tool set", tools)
		}
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: summarizeTool, Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(textOf(res), "declares the sampling capability") {
			t.Errorf("calling %s without sampling = %+v, want a tool error", summarizeTool, res)
		}
	})
	t.Run("WithSampling", func(t *testing.T) {
		t.Parallel()
		var asked string
		cs := connectSampling(t, &mcp.ClientOptions{
			//lint:ignore SA1019 the test is about sampling
			CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
				if tc, ok := req.Params.Messages[0].Content.(*mcp.TextContent); ok {
					asked = tc.Text
				}
				//lint:ignore SA1019 the test is about sampling
				return &mcp.CreateMessageResult{Role: "assistant", Model: "test", Content: &mcp.TextContent{Text: "- buy milk and eggs"}}, nil
			},
		})
		if _, ok := listed(t, cs)[summarizeTool]; !ok {
			t.Fatalf("a client with sampling is not offered %s", summarizeTool)
		}
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: summarizeTool, Arguments: map[string]any{"tag": "home"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError || !strings.Contains(textOf(res), "buy milk and eggs") {
			t.Errorf("calling %s = %s, want the model's summary", summarizeTool, textOf(res))
		}
		if !strings.Contains(asked, "Groceries") {
			t.Errorf("the model was asked %q, want the notes", asked)
		}
	})
}

// textOf is the text of a tool result's first content.
func textOf(res *mcp.CallToolResult) string {
	if len(res.Content) == 0 {
		return ""
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); ok {
		return tc.Text
	}
	return ""
}
