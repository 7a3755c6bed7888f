package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tendhq/tend/spec"
)

type nopWC struct{ io.Writer }

func (nopWC) Close() error { return nil }

// stdioServer is a StdioFunc that serves a real go-sdk MCP server on the
// pipes it is given, until its input ends, and records the command.
func stdioServer(version string, got *[]string) StdioFunc {
	return func(ctx context.Context, _ Target, argv []string, stdin io.Reader, stdout, _ io.Writer) (int, error) {
		*got = argv
		srv := mcp.NewServer(&mcp.Implementation{Name: "stdio-server", Version: version}, nil)
		srv.AddTool(&mcp.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "pong"}}}, nil
			})
		if err := srv.Run(ctx, &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWC{stdout}}); err != nil {
			return 1, nil
		}
		return 0, nil
	}
}

func stdioCheck(m *spec.MCPCheck) *spec.Check {
	c := mcpCheck(m)
	c.MCP.Transport, c.MCP.Port = "stdio", ""
	return c
}

func TestMCPOverStdio(t *testing.T) {
	t.Parallel()
	var argv []string
	c := stdioCheck(&spec.MCPCheck{
		CheckVersion: true,
		Tools:        []string{"echo"},
		Call:         &spec.MCPCall{Tool: "echo", Arguments: spec.Plain(`{}`), Expect: "pong"},
		Command:      []spec.Value{spec.Plain("./server"), spec.Plain("--stdio"), spec.Sensitive("--token=stdio-s3cret")},
	})
	p, err := NewProber(c, nil, WithVersion("2.1.0"), WithStdio(stdioServer("2.1.0", &argv)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Probe(context.Background(), Target{}); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if strings.Join(argv, " ") != "./server --stdio --token=stdio-s3cret" {
		t.Errorf("the command run: %q", argv)
	}
	// The wrong version fails, and the message hides the secret argument.
	p, _ = NewProber(c, nil, WithVersion("3.0.0"), WithStdio(stdioServer("2.1.0", &argv)))
	err = p.Probe(context.Background(), Target{})
	if err == nil || !strings.Contains(err.Error(), `server version "2.1.0", want "3.0.0"`) || strings.Contains(err.Error(), "stdio-s3cret") {
		t.Errorf("a wrong version: %v", err)
	}
	if !strings.Contains(err.Error(), `mcp over stdio of "./server --stdio (sensitive)"`) {
		t.Errorf("the failure does not name the command: %v", err)
	}
}

func TestMCPOverStdioCommandExits(t *testing.T) {
	t.Parallel()
	exits := func(_ context.Context, _ Target, _ []string, _ io.Reader, _, stderr io.Writer) (int, error) {
		fmt.Fprintln(stderr, "config: missing api key")
		return 3, nil
	}
	c := stdioCheck(&spec.MCPCheck{Command: []spec.Value{spec.Plain("./server")}})
	p, err := NewProber(c, nil, WithStdio(exits))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Probe(context.Background(), Target{})
	if err == nil || !strings.Contains(err.Error(), "initialize") {
		t.Fatalf("a command that exits: %v", err)
	}
	for _, want := range []string{"exited with code 3", "config: missing api key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the failure does not say %q: %v", want, err)
		}
	}
	// Without a runner (a provider that cannot run the command), the
	// check cannot be built.
	if _, err := NewProber(c, nil); err == nil || !strings.Contains(err.Error(), "needs a provider that runs the server's command") {
		t.Errorf("no runner: %v", err)
	}
}
