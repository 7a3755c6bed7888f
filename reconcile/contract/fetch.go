package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tendhq/tend/reconcile/internal/boundhttp"
)

// Transports Fetch speaks.
const (
	TransportStreamable = "streamable-http"
	TransportSSE        = "sse"
)

// DefaultTimeout bounds a Fetch whose options give no timeout.
const DefaultTimeout = 30 * time.Second

// FetchOptions say where and how to fetch a contract.
type FetchOptions struct {
	// URL is the MCP endpoint, such as http://127.0.0.1:8410/mcp.
	URL string
	// Transport is TransportStreamable (the default, when empty) or
	// TransportSSE.
	Transport string
	// HTTPClient carries the requests; its Transport is wrapped, not
	// changed. When nil, Fetch uses a transport of its own without a proxy.
	HTTPClient *http.Client
	// Timeout bounds the whole fetch; DefaultTimeout when zero.
	Timeout time.Duration
	// ProtocolVersion is the MCP protocol version to ask for; empty lets the
	// SDK offer its latest.
	ProtocolVersion string
	// Server is tend's name of the server, copied into Contract.Server.
	Server string
	// ClientCapabilities are the client capabilities the session declares
	// (ClientCapabilityNames), so that the contract is what clients with
	// them see: a server may offer a tool only to clients that declare
	// sampling. Nil declares DefaultClientCapabilities; an empty list
	// declares none. They are recorded in Contract.ClientCapabilities.
	ClientCapabilities []string
}

// Fetch connects to an MCP server as a client, initializes a session, lists
// the tools, resources, resource templates and prompts that the server's
// capabilities advertise (following pagination) and closes the session. A
// server without the prompts capability has no prompts; that is not an
// error. The contract is normalized.
//
// Errors name the endpoint and the step that failed, and say what the
// server answered: "POST http://127.0.0.1:8410/mcp: the server answers 404
// Not Found: not an MCP endpoint".
func Fetch(ctx context.Context, opts FetchOptions) (*Contract, error) {
	switch opts.Transport {
	case "", TransportStreamable, TransportSSE:
	default:
		return nil, fmt.Errorf("unknown MCP transport %q; want %q or %q", opts.Transport, TransportStreamable, TransportSSE)
	}
	declared := opts.ClientCapabilities
	if declared == nil {
		declared = DefaultClientCapabilities
	}
	clientOpts, err := clientOptions(declared)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL", opts.URL)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// Every request the SDK makes, even on a context of its own (the
	// session's DELETE), ends when the fetch ends.
	life, endLife := context.WithCancel(ctx)
	defer endLife()
	var base http.RoundTripper
	hc := &http.Client{}
	if opts.HTTPClient != nil {
		*hc = *opts.HTTPClient
		base = hc.Transport
	}
	if base == nil {
		tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext}
		defer tr.CloseIdleConnections()
		base = tr
	}
	rec := &recorder{base: boundhttp.Transport(base, life)}
	hc.Transport = rec

	var transport mcp.Transport
	if opts.Transport == TransportSSE {
		transport = &mcp.SSEClientTransport{Endpoint: opts.URL, HTTPClient: hc}
	} else {
		transport = &mcp.StreamableClientTransport{
			Endpoint:             opts.URL,
			HTTPClient:           hc,
			MaxRetries:           -1,   // one fetch, no reconnection
			DisableStandaloneSSE: true, // only answers to our own requests
		}
	}
	f := &fetcher{parent: parent, ctx: ctx, url: opts.URL, timeout: timeout, rec: rec}

	client := mcp.NewClient(&mcp.Implementation{Name: "tend-contract", Version: "1"}, clientOpts)
	rec.reset()
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: opts.ProtocolVersion})
	if err != nil {
		return nil, f.fail("initialize", err)
	}
	defer cs.Close()
	ir := cs.InitializeResult()
	if ir == nil {
		return nil, fmt.Errorf("%s: the server sent no initialize result", opts.URL)
	}
	c := &Contract{
		Server:             opts.Server,
		ProtocolVersion:    ir.ProtocolVersion,
		Instructions:       ir.Instructions,
		ClientCapabilities: append([]string{}, declared...),
	}
	if ir.ServerInfo != nil {
		c.Implementation = ir.ServerInfo.Name
		c.Version = ir.ServerInfo.Version
	}
	caps := ir.Capabilities
	if caps == nil {
		caps = &mcp.ServerCapabilities{}
	}

	if caps.Tools != nil {
		rec.reset()
		for t, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return nil, f.fail("tools/list", err)
			}
			tool, err := toolOf(t)
			if err != nil {
				return nil, fmt.Errorf("%s: tools/list: %w", opts.URL, err)
			}
			c.Tools = append(c.Tools, tool)
		}
	}
	if caps.Resources != nil {
		rec.reset()
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				return nil, f.fail("resources/list", err)
			}
			c.Resources = append(c.Resources, Resource{
				URI: r.URI, Name: r.Name, Title: r.Title, Description: r.Description, MIMEType: r.MIMEType,
			})
		}
		rec.reset()
		for r, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				if isMethodNotFound(err) { // templates are optional
					break
				}
				return nil, f.fail("resources/templates/list", err)
			}
			c.Resources = append(c.Resources, Resource{
				URITemplate: r.URITemplate, Name: r.Name, Title: r.Title, Description: r.Description, MIMEType: r.MIMEType,
			})
		}
	}
	if caps.Prompts != nil {
		rec.reset()
		for p, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				return nil, f.fail("prompts/list", err)
			}
			pr := Prompt{Name: p.Name, Title: p.Title, Description: p.Description}
			for _, a := range p.Arguments {
				if a != nil {
					pr.Arguments = append(pr.Arguments, PromptArgument{Name: a.Name, Description: a.Description, Required: a.Required})
				}
			}
			c.Prompts = append(c.Prompts, pr)
		}
	}
	if err := c.Normalize(); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.URL, err)
	}
	return c, nil
}

// clientOptions are the options of a client that declares exactly the
// capabilities caps (ClientCapabilityNames). The client has no handler for
// sampling or elicitation requests: it declares them to see what clients
// with them see, and only lists; a server that asks it to sample or elicit
// during a fetch gets an error.
//
// Roots and sampling are deprecated by the MCP protocol version 2026-07-28
// (SEP-2577), but clients still declare them and servers still offer tools
// by them, so tend declares them when asked.
func clientOptions(caps []string) (*mcp.ClientOptions, error) {
	cc := &mcp.ClientCapabilities{}
	for _, c := range caps {
		switch c {
		case CapabilityRoots:
			// As the go-sdk's default: roots, with list-changed notifications.
			//lint:ignore SA1019 clients still declare roots
			cc.RootsV2 = &mcp.RootCapabilities{ListChanged: true}
		case CapabilitySampling:
			//lint:ignore SA1019 clients still declare sampling
			cc.Sampling = &mcp.SamplingCapabilities{}
		case CapabilityElicitation:
			cc.Elicitation = &mcp.ElicitationCapabilities{}
		default:
			return nil, fmt.Errorf("unknown client capability %q; want one of %s", c, strings.Join(ClientCapabilityNames, ", "))
		}
	}
	return &mcp.ClientOptions{Capabilities: cc}, nil
}

func toolOf(t *mcp.Tool) (Tool, error) {
	tool := Tool{Name: t.Name, Title: t.Title, Description: t.Description}
	if tool.Title == "" && t.Annotations != nil {
		tool.Title = t.Annotations.Title
	}
	raw, err := json.Marshal(t.InputSchema)
	if err != nil {
		return Tool{}, fmt.Errorf("the input schema of tool %q: %w", t.Name, err)
	}
	if string(raw) == "null" {
		raw = nil
	}
	tool.InputSchema = raw
	if t.OutputSchema != nil {
		raw, err := json.Marshal(t.OutputSchema)
		if err != nil {
			return Tool{}, fmt.Errorf("the output schema of tool %q: %w", t.Name, err)
		}
		if string(raw) != "null" {
			tool.OutputSchema = raw
		}
	}
	return tool, nil
}

func isMethodNotFound(err error) bool {
	var we *jsonrpc.Error
	return errors.As(err, &we) && we.Code == jsonrpc.CodeMethodNotFound
}

// fetcher turns the errors of one fetch into messages for a person.
type fetcher struct {
	parent, ctx context.Context
	url         string
	timeout     time.Duration
	rec         *recorder
}

// fail explains why step failed: the time ran out, the server answered an
// HTTP error, the network failed, or the server answered an MCP error.
func (f *fetcher) fail(step string, err error) error {
	if f.parent.Err() != nil {
		return fmt.Errorf("%s: %s: %w", f.url, step, f.parent.Err())
	}
	if f.ctx.Err() != nil {
		return fmt.Errorf("%s: %s: no answer within %s", f.url, step, f.timeout)
	}
	if a, ok := f.rec.last(); ok && a.code >= 400 {
		msg := fmt.Sprintf("%s %s: the server answers %s", a.method, a.url, statusText(a.code))
		switch a.code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			msg += ": not an MCP endpoint"
		default:
			if a.body != "" {
				msg += ": " + a.body
			}
		}
		return errors.New(msg)
	}
	if ne := netError(err); ne != nil {
		return fmt.Errorf("%s: %s: %v", f.url, step, ne)
	}
	return fmt.Errorf("%s: %s: %v", f.url, step, sdkError(err))
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}

// netError is the cause of a network error without the layers that repeat
// the address ("dial tcp ADDR: connect: "), or nil if err is not one.
func netError(err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Err == nil {
		return nil
	}
	err = oe.Err
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
	}
	return err
}

// sdkError shortens an error of the SDK client to its cause, without the
// SDK's `calling "M": sending "M": ` layers.
func sdkError(err error) error {
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
			return errors.New(s)
		}
		s = t
	}
}

// answer is one HTTP response, as the recorder saw it.
type answer struct {
	method, url string
	code        int
	body        string // the start of an error response's body
}

// maxErrorBody is how much of an error response's body a message quotes.
const maxErrorBody = 200

// recorder remembers the last HTTP response of the current step, so that a
// failed step can say what the server answered rather than what the SDK
// made of it.
type recorder struct {
	base http.RoundTripper

	mu   sync.Mutex
	ans  answer
	seen bool
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.seen = false
	r.mu.Unlock()
}

func (r *recorder) last() (answer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ans, r.seen
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || req.Method == http.MethodDelete { // the DELETE that ends a session says nothing
		return resp, err
	}
	u := *req.URL
	u.RawQuery, u.Fragment = "", "" // an SSE session id is nobody's business
	a := answer{method: req.Method, url: u.String(), code: resp.StatusCode}
	if resp.StatusCode >= 400 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxErrorBody))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		a.body = firstLine(string(head))
	}
	r.mu.Lock()
	r.ans, r.seen = a, true
	r.mu.Unlock()
	return resp, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if r := []rune(s); len(r) > maxErrorBody {
		s = string(r[:maxErrorBody]) + "…"
	}
	return s
}
