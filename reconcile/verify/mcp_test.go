package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tendhq/tend/spec"
)

// mcpServer serves a real go-sdk MCP server at /mcp (streamable HTTP) and
// /sse (SSE) on loopback, with the tools search and broken, the resource
// config://app and the prompt summarize.
func mcpServer(t *testing.T, opts *mcp.ServerOptions) Target {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "test-server", Version: "1.4.2"}, opts)
	srv.AddTool(&mcp.Tool{
		Name:        "search",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`),
	}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct{ Q string }
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "results for " + args.Q}}}, nil
	})
	srv.AddTool(&mcp.Tool{
		Name:        "broken",
		InputSchema: json.RawMessage(`{"type":"object"}`),
	}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{
			&mcp.TextContent{Text: "index not loaded; got " + string(req.Params.Arguments)},
		}}, nil
	})
	srv.AddTool(&mcp.Tool{
		Name:        "slow",
		InputSchema: json.RawMessage(`{"type":"object"}`),
	}, func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		select {
		case <-time.After(150 * time.Millisecond):
		case <-ctx.Done():
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
	})
	srv.AddResource(&mcp.Resource{Name: "app-config", URI: "config://app"},
		func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{}, nil
		})
	srv.AddPrompt(&mcp.Prompt{Name: "summarize"},
		func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
	get := func(*http.Request) *mcp.Server { return srv }
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(get, nil))
	mux.Handle("/sse", mcp.NewSSEHandler(get, nil))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return targetOf(t, 0, ts.Listener.Addr())
}

func mcpCheck(m *spec.MCPCheck) *spec.Check {
	if m.Port == "" {
		m.Port = "web"
	}
	if m.Path == "" {
		m.Path = "/mcp"
	}
	if m.Transport == "" {
		m.Transport = "streamable-http"
	}
	return &spec.Check{
		Name: "mcp", Kind: spec.CheckMCP, MCP: m,
		Interval: time.Second, Timeout: 5 * time.Second, SuccessThreshold: 1, FailureThreshold: 1,
	}
}

func TestMCPPass(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{
		CheckVersion: true,
		Tools:        []string{"search", "broken"},
		Resources:    []string{"config://app"},
		Prompts:      []string{"summarize"},
		Call:         &spec.MCPCall{Tool: "search", Arguments: spec.Plain(`{"q":"ping"}`), Expect: "results for ping"},
		MaxLatency:   5 * time.Second,
	})
	wantPass(t, probe(t, c, tg, WithVersion("1.4.2")))
	// A resource may be named by its name too.
	wantPass(t, probe(t, mcpCheck(&spec.MCPCheck{Resources: []string{"app-config"}}), tg))
}

func TestMCPOverSSE(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{Transport: "sse", Path: "/sse", Tools: []string{"search"}})
	wantPass(t, probe(t, c, tg))
	c = mcpCheck(&spec.MCPCheck{Transport: "sse", Path: "/sse", Tools: []string{"fetch"}})
	if msg := wantFail(t, probe(t, c, tg)); !strings.Contains(msg, `missing tool "fetch"`) {
		t.Errorf("message: %s", msg)
	}
}

func TestMCPMissingTool(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	msg := wantFail(t, probe(t, mcpCheck(&spec.MCPCheck{Tools: []string{"search", "fetch", "crawl"}}), tg))
	want := fmt.Sprintf(`mcp http://127.0.0.1:%d/mcp: missing tools "fetch", "crawl"; the server offers `, tg.Ports["web"])
	if !strings.HasPrefix(msg, want) {
		t.Errorf("message:\n got %s\nwant %s...", msg, want)
	}
	for _, name := range []string{`"search"`, `"broken"`, `"slow"`} {
		if !strings.Contains(msg, name) {
			t.Errorf("message does not list the offered tool %s: %s", name, msg)
		}
	}
}

func TestMCPMissingResourceAndPrompt(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	msg := wantFail(t, probe(t, mcpCheck(&spec.MCPCheck{Resources: []string{"config://db"}}), tg))
	if !strings.Contains(msg, `missing resource "config://db"; the server offers "config://app"`) {
		t.Errorf("message: %s", msg)
	}
	msg = wantFail(t, probe(t, mcpCheck(&spec.MCPCheck{Prompts: []string{"translate"}}), tg))
	if !strings.Contains(msg, `missing prompt "translate"; the server offers "summarize"`) {
		t.Errorf("message: %s", msg)
	}
}

func TestMCPFailingCall(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "broken", Arguments: spec.Plain(`{}`)}})
	msg := wantFail(t, probe(t, c, tg))
	if !strings.Contains(msg, `call of tool "broken": the tool reported an error: "index not loaded`) {
		t.Errorf("message: %s", msg)
	}

	c = mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "search", Arguments: spec.Plain(`{"q":"ping"}`), Expect: "pong"}})
	msg = wantFail(t, probe(t, c, tg))
	if !strings.Contains(msg, `call of tool "search": the result does not contain "pong": "results for ping"`) {
		t.Errorf("message: %s", msg)
	}

	c = mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "nosuchtool", Arguments: spec.Plain(`{}`)}})
	msg = wantFail(t, probe(t, c, tg))
	if !strings.Contains(msg, `call of tool "nosuchtool": `) {
		t.Errorf("message: %s", msg)
	}
}

func TestMCPSensitiveArgumentsHidden(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "broken", Arguments: spec.Sensitive(`{"token":"tok-9f8e7d"}`)}})
	msg := wantFail(t, probe(t, c, tg))
	if strings.Contains(msg, "tok-9f8e7d") || !strings.Contains(msg, "(sensitive)") {
		t.Errorf("message: %s", msg)
	}
	if _, err := NewProber(mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "x", Arguments: spec.Sensitive(`{"token":tok-9f8e7d`)}}), nil); err == nil || strings.Contains(err.Error(), "tok-9f8e7d") {
		t.Errorf("invalid sensitive arguments: %v", err)
	}
}

func TestMCPProtocolVersion(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-06-18", "2025-03-26"}})
	wantPass(t, probe(t, mcpCheck(&spec.MCPCheck{ProtocolVersion: "2025-03-26"}), tg))
	wantPass(t, probe(t, mcpCheck(&spec.MCPCheck{ProtocolVersion: "2025-06-18"}), tg))
	msg := wantFail(t, probe(t, mcpCheck(&spec.MCPCheck{ProtocolVersion: "2025-11-25"}), tg))
	if !strings.HasSuffix(msg, `/mcp: protocol version "2025-06-18", want "2025-11-25"`) {
		t.Errorf("message: %s", msg)
	}
}

func TestMCPServerVersion(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	msg := wantFail(t, probe(t, mcpCheck(&spec.MCPCheck{CheckVersion: true}), tg, WithVersion("1.5.0")))
	if !strings.HasSuffix(msg, `server version "1.4.2", want "1.5.0"`) {
		t.Errorf("message: %s", msg)
	}
	wantPass(t, probe(t, mcpCheck(&spec.MCPCheck{CheckVersion: true}), tg, WithVersion("v1.4.2")))
	wantPass(t, probe(t, mcpCheck(&spec.MCPCheck{CheckVersion: false}), tg, WithVersion("1.5.0")))
	wantPass(t, probe(t, mcpCheck(&spec.MCPCheck{CheckVersion: true}), tg)) // no version known
}

func TestMCPMaxLatency(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "slow", Arguments: spec.Plain(`{}`)}, MaxLatency: 50 * time.Millisecond})
	msg := wantFail(t, probe(t, c, tg))
	if !strings.Contains(msg, ", max_latency 50ms") {
		t.Errorf("message: %s", msg)
	}
}

func TestMCPNotAnMCPServer(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.NotFoundHandler())
	msg := wantFail(t, probe(t, mcpCheck(&spec.MCPCheck{Tools: []string{"search"}}), tg))
	if !strings.HasSuffix(msg, "/mcp: initialize: Not Found (the server answers 404: not an MCP endpoint)") {
		t.Errorf("message: %s", msg)
	}
	dead := Target{Host: "127.0.0.1", Ports: map[string]int{"web": freePort(t)}}
	msg = wantFail(t, probe(t, mcpCheck(&spec.MCPCheck{}), dead))
	if msg != fmt.Sprintf("mcp http://127.0.0.1:%d/mcp: initialize: connection refused", dead.Ports["web"]) {
		t.Errorf("message: %s", msg)
	}
}

func TestMCPTimeout(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // until the body is read, the server does not notice a client going away
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	c := mcpCheck(&spec.MCPCheck{})
	c.Timeout = 50 * time.Millisecond
	msg := wantFail(t, probe(t, c, tg))
	if !strings.HasSuffix(msg, "/mcp: initialize: no answer within the 50ms timeout") {
		t.Errorf("message: %s", msg)
	}
}

func TestMCPStdioWithoutRunner(t *testing.T) {
	t.Parallel()
	_, err := NewProber(mcpCheck(&spec.MCPCheck{Transport: "stdio"}), nil)
	if err == nil || !strings.Contains(err.Error(), "needs a provider that runs the server's command") {
		t.Errorf("stdio: %v", err)
	}
}
