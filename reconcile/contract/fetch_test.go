package contract

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Fetch is tested against go-sdk servers served in the test, over both
// transports, and (in notes_test.go) against real mcp-notes builds.

type searchInput struct {
	Query  string `json:"query" jsonschema:"what to look for"`
	Filter *struct {
		Tag   string `json:"tag,omitempty" jsonschema:"only notes with this tag"`
		After string `json:"after,omitempty"`
	} `json:"filter,omitempty" jsonschema:"narrows the search"`
}

type empty struct{}

// testServer is an MCP server with five tools (listed two per page), a
// resource, a resource template and two prompts; with bare, only one tool.
func testServer(bare bool) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "test-server", Version: "3.1.4"},
		&mcp.ServerOptions{PageSize: 2, Instructions: "Be nice."})
	noop := func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, any, error) {
		return nil, nil, nil
	}
	mcp.AddTool(s, &mcp.Tool{Name: "search", Description: "Search.", Annotations: &mcp.ToolAnnotations{Title: "Search things"}},
		func(context.Context, *mcp.CallToolRequest, searchInput) (*mcp.CallToolResult, any, error) {
			return nil, nil, nil
		})
	if bare {
		return s
	}
	for _, name := range []string{"echo", "alpha", "zulu", "mid"} {
		mcp.AddTool(s, &mcp.Tool{Name: name, Title: strings.ToUpper(name)}, noop)
	}
	read := func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) { return nil, nil }
	s.AddResource(&mcp.Resource{URI: "test://stats", Name: "stats", MIMEType: "application/json", Description: "Stats."}, read)
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "test://item/{id}", Name: "item"}, read)
	get := func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) { return nil, nil }
	s.AddPrompt(&mcp.Prompt{Name: "review", Description: "Review.", Arguments: []*mcp.PromptArgument{
		{Name: "style"}, {Name: "code", Required: true, Description: "the code"},
	}}, get)
	s.AddPrompt(&mcp.Prompt{Name: "explain"}, get)
	return s
}

// serve serves srv at /mcp (streamable HTTP) and /sse.
func serve(t *testing.T, srv *mcp.Server) string {
	t.Helper()
	get := func(*http.Request) *mcp.Server { return srv }
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(get, nil))
	mux.Handle("/sse", mcp.NewSSEHandler(get, nil))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

func fetch(t *testing.T, opts FetchOptions) *Contract {
	t.Helper()
	c, err := Fetch(t.Context(), opts)
	if err != nil {
		t.Fatalf("Fetch(%s): %v", opts.URL, err)
	}
	return c
}

func TestFetch(t *testing.T) {
	t.Parallel()
	base := serve(t, testServer(false))
	c := fetch(t, FetchOptions{URL: base + "/mcp", Server: "test"})

	if c.Server != "test" || c.Implementation != "test-server" || c.Version != "3.1.4" || c.Instructions != "Be nice." || c.ProtocolVersion == "" {
		t.Errorf("header = %q %q %q %q %q", c.Server, c.Implementation, c.Version, c.Instructions, c.ProtocolVersion)
	}
	var names []string
	for _, tool := range c.Tools {
		names = append(names, tool.Name+"/"+tool.Title)
	}
	// Five tools on three pages, sorted; a title from the annotations.
	if got := strings.Join(names, " "); got != "alpha/ALPHA echo/ECHO mid/MID search/Search things zulu/ZULU" {
		t.Errorf("tools = %s", got)
	}
	search := c.Tool("search")
	want := `{"additionalProperties":false,"properties":{"filter":{"additionalProperties":false,"description":"narrows the search",` +
		`"properties":{"after":{"type":"string"},"tag":{"description":"only notes with this tag","type":"string"}},"type":["null","object"]},` +
		`"query":{"description":"what to look for","type":"string"}},"required":["query"],"type":"object"}`
	if string(search.InputSchema) != want {
		t.Errorf("search input schema:\n%s\nwant:\n%s", search.InputSchema, want)
	}
	if len(c.Resources) != 2 || c.Resources[0].URITemplate != "test://item/{id}" || c.Resources[1].URI != "test://stats" ||
		c.Resources[1].MIMEType != "application/json" || c.Resources[1].Description != "Stats." {
		t.Errorf("resources = %+v", c.Resources)
	}
	if len(c.Prompts) != 2 || c.Prompts[0].Name != "explain" || c.Prompts[1].Name != "review" {
		t.Fatalf("prompts = %+v", c.Prompts)
	}
	if args := c.Prompts[1].Arguments; len(args) != 2 || args[0] != (PromptArgument{Name: "code", Description: "the code", Required: true}) || args[1].Name != "style" {
		t.Errorf("arguments of review = %+v", args)
	}

	// The same server over SSE exposes the same contract.
	sse := fetch(t, FetchOptions{URL: base + "/sse", Transport: TransportSSE, Server: "test"})
	sse.ProtocolVersion = c.ProtocolVersion // SSE speaks older protocol versions only
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(sse)
	if string(a) != string(b) {
		t.Errorf("over SSE:\n%s\nover streamable HTTP:\n%s", b, a)
	}

	// Fetching again gives the same bytes.
	again, _ := json.Marshal(fetch(t, FetchOptions{URL: base + "/mcp", Server: "test"}))
	if string(again) != string(a) {
		t.Errorf("a second fetch differs:\n%s\n%s", again, a)
	}
}

func TestFetchOnlyAdvertisedCapabilities(t *testing.T) {
	t.Parallel()
	base := serve(t, testServer(true))
	c := fetch(t, FetchOptions{URL: base + "/mcp"})
	if len(c.Tools) != 1 || len(c.Resources) != 0 || len(c.Prompts) != 0 || c.Resources == nil || c.Prompts == nil {
		t.Errorf("contract of a server with tools only = %+v", c)
	}
}

func TestFetchUsesTheGivenClient(t *testing.T) {
	t.Parallel()
	base := serve(t, testServer(true))
	var n atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	fetch(t, FetchOptions{URL: base + "/mcp", HTTPClient: hc})
	if n.Load() == 0 {
		t.Error("Fetch did not use the given HTTP client")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/health", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	mux.Handle("/boom", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the database is on fire\nmore lines", http.StatusInternalServerError)
	}))
	mux.Handle("/hang", http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices when the client hangs up
		<-r.Context().Done()
	}))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name string
		opts FetchOptions
		want string
	}{
		{"NotFound", FetchOptions{URL: ts.URL + "/mcp"},
			"POST " + ts.URL + "/mcp: the server answers 404 Not Found: not an MCP endpoint"},
		{"NotFoundSSE", FetchOptions{URL: ts.URL + "/sse", Transport: TransportSSE},
			"GET " + ts.URL + "/sse: the server answers 404 Not Found: not an MCP endpoint"},
		{"ServerError", FetchOptions{URL: ts.URL + "/boom"},
			"POST " + ts.URL + "/boom: the server answers 500 Internal Server Error: the database is on fire"},
		{"Refused", FetchOptions{URL: closed + "/mcp"},
			closed + "/mcp: initialize: connection refused"},
		{"Timeout", FetchOptions{URL: ts.URL + "/hang", Timeout: 300 * time.Millisecond},
			ts.URL + "/hang: initialize: no answer within 300ms"},
		{"BadTransport", FetchOptions{URL: ts.URL + "/mcp", Transport: "stdio"},
			`unknown MCP transport "stdio"; want "streamable-http" or "sse"`},
		{"BadURL", FetchOptions{URL: "localhost:8410/mcp"},
			`"localhost:8410/mcp" is not an http:// or https:// URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Fetch(t.Context(), tc.opts)
			if err == nil {
				t.Fatalf("Fetch succeeded: %+v", c)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}

	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := Fetch(ctx, FetchOptions{URL: ts.URL + "/hang"})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
}
