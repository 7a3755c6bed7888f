package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	stdio   StdioFunc       // runs the command of a stdio check
	argv    []string        // that command, revealed
	shown   string          // that command as messages show it
}

func newMCPProber(c *spec.MCPCheck, version string, stdio StdioFunc) (*mcpProber, error) {
	p := &mcpProber{c: c}
	switch c.Transport {
	case "", transportStreamable, transportSSE:
	case transportStdio:
		if stdio == nil {
			return nil, errors.New(`mcp transport "stdio" needs a provider that runs the server's command beside it (the process provider)`)
		}
		if len(c.Command) == 0 {
			return nil, errors.New(`mcp transport "stdio" needs a command`)
		}
		p.stdio = stdio
		shown := make([]string, len(c.Command))
		for i, v := range c.Command {
			p.argv = append(p.argv, v.Reveal())
			shown[i] = v.String()
			if v.IsSensitive() {
				p.secrets = append(p.secrets, v.Reveal())
			}
		}
		p.shown = strings.Join(shown, " ")
	default:
		return nil, fmt.Errorf("unknown mcp transport %q", c.Transport)
	}
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
			p.secrets = stringLeaves(obj, p.secrets)
			slices.SortFunc(p.secrets, func(a, b string) int { return len(b) - len(a) })
		}
	}
	return p, nil
}

func (p *mcpProber) Probe(ctx context.Context, t Target) error {
	start := time.Now()
	if p.stdio != nil {
		return p.probeStdio(ctx, t, start)
	}
	endpoint, rt, err := MCPEndpoint(t, p.c)
	if err != nil {
		return err
	}
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
	return p.session(ctx, transport, what, start)
}

// MCPEndpoint is the URL of the MCP endpoint that the mcp check c reaches
// on t (its port and path, through t's Route when it has one), and the
// round tripper of that route (nil: a direct request).
func MCPEndpoint(t Target, c *spec.MCPCheck) (string, http.RoundTripper, error) {
	base, rt, err := baseURL(t, c.Port, "http")
	if err != nil {
		return "", nil, err
	}
	path := c.Path
	if path == "" {
		path = "/mcp"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return base + path, rt, nil
}

// probeStdio starts the check's command beside replica t, with its
// environment, and speaks MCP over the command's standard input and
// output; closing its input ends it.
func (p *mcpProber) probeStdio(ctx context.Context, t Target, start time.Time) error {
	what := fmt.Sprintf("mcp over stdio of %q", p.hide(p.shown))
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	type exit struct {
		code int
		err  error
	}
	done := make(chan exit, 1)
	var stderr tailBuffer
	go func() {
		code, err := p.stdio(runCtx, t, p.argv, inR, outW, &stderr)
		// The client reads EOF, or why the command ended, after its
		// last line.
		if err == nil && code != 0 {
			err = fmt.Errorf("the command exited with code %d", code)
		} else if err == nil {
			err = errors.New("the command exited")
		}
		if tail := stderr.String(); tail != "" {
			err = fmt.Errorf("%w; its stderr ends: %q", err, tail)
		}
		outW.CloseWithError(errors.New(p.hide(err.Error())))
		inR.Close()
		done <- exit{code, err}
	}()
	err := p.session(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, what, start)
	var init initFailed
	if errors.As(err, &init) {
		// A command that ended by itself is why the session could not
		// start: say how it ended rather than what the closed pipe did to
		// the client.
		select {
		case e := <-done:
			outR.Close()
			return fmt.Errorf("%s: initialize: %s", what, p.hide(e.err.Error()))
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The session is closed: end the command's input, and give it a moment
	// to leave by itself before it is killed.
	inW.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		stop()
		<-done
	}
	outR.Close()
	return err
}

// session runs the check's MCP conversation over transport.
func (p *mcpProber) session(ctx context.Context, transport mcp.Transport, what string, start time.Time) error {
	client := mcp.NewClient(&mcp.Implementation{Name: "tend-verify", Version: "1"}, nil)
	// Asking for the declared version lets a server that speaks several
	// versions agree to it; one that cannot answers with another.
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: p.c.ProtocolVersion})
	if err != nil {
		return initFailed{failed(ctx, what+": initialize", sdkError(err))}
	}
	defer cs.Close()

	ir := cs.InitializeResult()
	if ir == nil {
		return fmt.Errorf("%s: the server sent no initialize result", what)
	}
	if want := p.c.ProtocolVersion; want != "" && ir.ProtocolVersion != want {
		return answer{fmt.Errorf("%s: protocol version %q, want %q", what, ir.ProtocolVersion, want)}
	}
	if p.version != "" {
		got := ""
		if ir.ServerInfo != nil {
			got = ir.ServerInfo.Version
		}
		if strings.TrimPrefix(got, "v") != strings.TrimPrefix(p.version, "v") {
			if got == "" {
				return answer{fmt.Errorf("%s: the server reports no version (serverInfo.version), want %q", what, p.version)}
			}
			return answer{fmt.Errorf("%s: server version %q, want %q", what, got, p.version)}
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
			return answer{fmt.Errorf("%s: the result does not contain %q: %q", callWhat, call.Expect, head([]byte(p.hide(text))))}
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
// the missing names and (part of) what the server offered. The failure is
// definite: the server answered the list.
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
		return answer{errors.New(msg + "the server offers no " + kind)}
	}
	shown := make([]string, 0, min(len(offered), maxOffered))
	for _, o := range offered[:min(len(offered), maxOffered)] {
		shown = append(shown, strconv.Quote(o))
	}
	msg += "the server offers " + strings.Join(shown, ", ")
	if n := len(offered) - maxOffered; n > 0 {
		msg += fmt.Sprintf(" and %d more", n)
	}
	return answer{errors.New(msg)}
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

// tailBuffer keeps the last tailMax bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 512

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailMax {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}

// initFailed is a session that could not be initialized.
type initFailed struct{ error }

func (e initFailed) Unwrap() error { return e.error }
