package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tendhq/tend/reconcile/internal/boundhttp"
	"github.com/tendhq/tend/spec"
)

const (
	transportStreamable = "streamable-http"
	transportSSE        = "sse"
	transportStdio      = "stdio"
)

// maxOffered is how many offered names a "missing" message lists.
const maxOffered = 20

type mcpProber struct {
	c       *spec.MCPCheck
	version string          // desired serverInfo.version; empty: not compared
	args    json.RawMessage // smoke-call arguments, a JSON object
	secrets []string        // string values of sensitive call arguments
}

func newMCPProber(c *spec.MCPCheck, version string) (*mcpProber, error) {
	switch c.Transport {
	case "", transportStreamable, transportSSE:
	case transportStdio:
		return nil, errors.New(`mcp transport "stdio" is not supported by this check runner`)
	default:
		return nil, fmt.Errorf("unknown mcp transport %q", c.Transport)
	}
	p := &mcpProber{c: c}
	if c.CheckVersion {
		p.version = version
	}
	if call := c.Call; call != nil {
		if call.Tool == "" {
			return nil, errors.New("the smoke call names no tool")
		}
		raw := strings.TrimSpace(call.Arguments.Reveal())
		if raw == "" {
			raw = "{}"
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
			if call.Arguments.IsSensitive() {
				return nil, fmt.Errorf("the arguments of the call of %q are not a JSON object", call.Tool)
			}
			return nil, fmt.Errorf("the arguments of the call of %q are not a JSON object: %s", call.Tool, raw)
		}
		p.args = json.RawMessage(raw)
		if call.Arguments.IsSensitive() {
			p.secrets = stringLeaves(obj, nil)
			slices.SortFunc(p.secrets, func(a, b string) int { return len(b) - len(a) })
		}
	}
	return p, nil
}

func (p *mcpProber) Probe(ctx context.Context, t Target) error {
	start := time.Now()
	base, rt, err := baseURL(t, p.c.Port, "http")
	if err != nil {
		return err
	}
	path := p.c.Path
	if path == "" {
		path = "/mcp"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	endpoint := base + path
	what := "mcp " + endpoint

	// A transport of its own (or the route's): no proxy from the
	// environment, and nothing left behind. The SDK sends some requests on
	// contexts of its own (the session's DELETE, a cancellation notice after
	// a timeout); binding every request to life ends them all when the
	// probe ends or runs out of time.
	life, endLife := context.WithCancel(ctx)
	defer endLife()
	if rt == nil {
		tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext}
		defer tr.CloseIdleConnections()
		rt = tr
	}
	hc := &http.Client{Transport: boundhttp.Transport(rt, life)}

	var transport mcp.Transport
	if p.c.Transport == transportSSE {
		transport = &mcp.SSEClientTransport{Endpoint: endpoint, HTTPClient: hc}
	} else {
		transport = &mcp.StreamableClientTransport{
			Endpoint:             endpoint,
			HTTPClient:           hc,
			MaxRetries:           -1,   // a probe does not reconnect: the next probe will
			DisableStandaloneSSE: true, // a probe only needs answers to its own requests
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "tend-verify", Version: "1"}, nil)
	// Asking for the declared version lets a server that speaks several
	// versions agree to it; one that cannot answers with another.
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: p.c.ProtocolVersion})
	if err != nil {
		return failed(ctx, what+": initialize", sdkError(err))
	}
	defer cs.Close()

	ir := cs.InitializeResult()
	if ir == nil {
		return fmt.Errorf("%s: the server sent no initialize result", what)
	}
	if want := p.c.ProtocolVersion; want != "" && ir.ProtocolVersion != want {
		return fmt.Errorf("%s: protocol version %q, want %q", what, ir.ProtocolVersion, want)
	}
	if p.version != "" {
		got := ""
		if ir.ServerInfo != nil {
			got = ir.ServerInfo.Version
		}
		if strings.TrimPrefix(got, "v") != strings.TrimPrefix(p.version, "v") {
			if got == "" {
				return fmt.Errorf("%s: the server reports no version (serverInfo.version), want %q", what, p.version)
			}
			return fmt.Errorf("%s: server version %q, want %q", what, got, p.version)
		}
	}

	if len(p.c.Tools) > 0 {
		var offered []string
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return failed(ctx, what+": tools/list", sdkError(err))
			}
			offered = append(offered, tool.Name)
		}
		if err := missing(what, "tools", p.c.Tools, offered, offered); err != nil {
			return err
		}
	}
	if len(p.c.Resources) > 0 {
		var offered, names []string
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				return failed(ctx, what+": resources/list", sdkError(err))
			}
			offered = append(offered, r.URI)
			names = append(names, r.URI, r.Name)
		}
		// A declared resource may be a template; a server without
		// templates may not answer this list at all.
		for rt, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				break
			}
			offered = append(offered, rt.URITemplate)
			names = append(names, rt.URITemplate, rt.Name)
		}
		if err := missing(what, "resources", p.c.Resources, names, offered); err != nil {
			return err
		}
	}
	if len(p.c.Prompts) > 0 {
		var offered []string
		for pr, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				return failed(ctx, what+": prompts/list", sdkError(err))
			}
			offered = append(offered, pr.Name)
		}
		if err := missing(what, "prompts", p.c.Prompts, offered, offered); err != nil {
			return err
		}
	}

	if call := p.c.Call; call != nil {
		callWhat := fmt.Sprintf("%s: call of tool %q", what, call.Tool)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: call.Tool, Arguments: p.args})
		if err != nil {
			return failed(ctx, callWhat, errors.New(p.hide(sdkError(err).Error())))
		}
		text := resultText(res)
		if res.IsError {
			if text == "" {
				return fmt.Errorf("%s: the tool reported an error, with no text", callWhat)
			}
			return fmt.Errorf("%s: the tool reported an error: %q", callWhat, head([]byte(p.hide(text))))
		}
		if call.Expect != "" && !strings.Contains(text, call.Expect) {
			return fmt.Errorf("%s: the result does not contain %q: %q", callWhat, call.Expect, head([]byte(p.hide(text))))
		}
	}

	if limit := p.c.MaxLatency; limit > 0 {
		if took := time.Since(start); took > limit {
			return fmt.Errorf("%s: took %s, max_latency %s", what, took.Round(time.Millisecond), limit)
		}
	}
	return nil
}

func (p *mcpProber) hide(s string) string { return redact(s, p.secrets) }

// sdkError shortens an error of the SDK client to its cause: a network
// error without the address the message already names, or the server's
// answer without the SDK's `calling "M": sending "M": ` layers.
func sdkError(err error) error {
	if ne := netError(err); ne != err {
		return ne
	}
	s := err.Error()
	for {
		t := s
		for _, prefix := range []string{"calling ", "sending "} {
			if strings.HasPrefix(t, prefix+`"`) {
				if i := strings.Index(t, `": `); i > 0 {
					t = t[i+3:]
				}
			}
		}
		t = strings.TrimPrefix(t, "rejected by transport: ")
		if t == s {
			if s == "Not Found" || strings.HasSuffix(s, ": Not Found") {
				s += " (the server answers 404: not an MCP endpoint)"
			}
			return errors.New(s)
		}
		s = t
	}
}

// missing fails when a declared name is not among have; the message lists
// the missing names and (part of) what the server offered.
func missing(what, kind string, declared, have, offered []string) error {
	var miss []string
	for _, d := range declared {
		if !slices.Contains(have, d) {
			miss = append(miss, strconv.Quote(d))
		}
	}
	if len(miss) == 0 {
		return nil
	}
	noun := kind
	if len(miss) == 1 {
		noun = strings.TrimSuffix(kind, "s")
	}
	msg := fmt.Sprintf("%s: missing %s %s; ", what, noun, strings.Join(miss, ", "))
	if len(offered) == 0 {
		return errors.New(msg + "the server offers no " + kind)
	}
	shown := make([]string, 0, min(len(offered), maxOffered))
	for _, o := range offered[:min(len(offered), maxOffered)] {
		shown = append(shown, strconv.Quote(o))
	}
	msg += "the server offers " + strings.Join(shown, ", ")
	if n := len(offered) - maxOffered; n > 0 {
		msg += fmt.Sprintf(" and %d more", n)
	}
	return errors.New(msg)
}

// resultText is the text of a tool result: its text contents, then its
// structured content as JSON.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			parts = append(parts, string(b))
		}
	}
	return strings.Join(parts, "\n")
}

// stringLeaves collects the string values inside a decoded JSON value.
func stringLeaves(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case map[string]any:
		for _, e := range v {
			out = stringLeaves(e, out)
		}
	case []any:
		for _, e := range v {
			out = stringLeaves(e, out)
		}
	}
	return out
}
