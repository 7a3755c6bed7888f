package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tendhq/tend/spec"
)

// Target is one replica to check.
type Target struct {
	Replica int
	Host    string         // address to reach it at, such as "127.0.0.1"
	Ports   map[string]int // port name → port on Host
	// Route, when set, carries http and mcp checks to the replica through a
	// proxy (the Kubernetes API server's pod proxy) instead of to Host. It
	// returns the URL that stands for scheme://Host:port and the round
	// tripper that carries requests to it; a nil round tripper means
	// directly, as without a Route. tcp checks still go to Host.
	Route func(scheme string, port int) (url string, rt http.RoundTripper, err error)
}

// Prober runs one check once against one target.
type Prober interface {
	// Probe returns nil when the check passes; otherwise the error says what
	// was expected and what was seen. It never shows a header value, a
	// sensitive command argument or sensitive call arguments.
	Probe(ctx context.Context, t Target) error
}

// answer is the error of a probe the replica answered, saying something
// that waiting will not change: a status outside the check's list (not a
// 5xx, 408, 425 or 429, which a starting or busy server gives), a body
// without the expected text, an MCP server of another protocol or server
// version, or without a declared tool, resource or prompt, or a smoke call
// whose result lacks the expected text. A refused connection, a timeout, a
// 5xx, a tool that reports an error or a command's exit code are not
// answers of this kind: a replica that is still starting gives them too.
type answer struct{ error }

func (a answer) Unwrap() error { return a.error }

// Definite reports whether err is the failure of a probe the replica
// answered with something that waiting will not change (see Options.FailAfter).
func Definite(err error) bool {
	var a answer
	return errors.As(err, &a)
}

// ExecFunc runs a command for an exec check (the engine passes the
// provider's one-off task runner). It must honour ctx's deadline.
type ExecFunc func(ctx context.Context, t Target, argv []string) (exitCode int, output []byte, err error)

// ProberOption adjusts what NewProber builds.
type ProberOption func(*proberConfig)

type proberConfig struct {
	version string
	stdio   StdioFunc
}

// StdioFunc runs argv beside the replica t, with its environment, its
// standard input from stdin and its standard output to stdout, until it
// ends or ctx does (the engine passes the provider's task runner). A stdio
// MCP check talks to the command through them.
type StdioFunc func(ctx context.Context, t Target, argv []string, stdin io.Reader, stdout, stderr io.Writer) (exitCode int, err error)

// WithStdio gives the probers the runner of stdio MCP checks; without it,
// such checks cannot be built.
func WithStdio(f StdioFunc) ProberOption {
	return func(c *proberConfig) { c.stdio = f }
}

// WithVersion gives the probers the version the server should now run: an
// mcp check with check_version compares it to the server's serverInfo.version.
// An empty version turns that comparison off.
func WithVersion(v string) ProberOption {
	return func(c *proberConfig) { c.version = v }
}

// NewProber builds the prober of one check. It fails for a check it cannot
// run: an unknown or empty kind, a stdio MCP check without a StdioFunc, an exec check without an
// ExecFunc, an invalid regular expression or smoke-call arguments.
//
// Every probe of the returned prober is bounded by the check's timeout (its
// interval when it has none).
func NewProber(c *spec.Check, exec ExecFunc, opts ...ProberOption) (Prober, error) {
	if c == nil {
		return nil, errors.New("no check")
	}
	var cfg proberConfig
	for _, o := range opts {
		o(&cfg)
	}
	var (
		p   Prober
		err error
	)
	switch {
	case c.Kind == spec.CheckHTTP && c.HTTP != nil:
		p, err = newHTTPProber(c.HTTP)
	case c.Kind == spec.CheckTCP && c.TCP != nil:
		p = &tcpProber{port: c.TCP.Port}
	case c.Kind == spec.CheckExec && c.Exec != nil:
		p, err = newExecProber(c.Exec, exec)
	case c.Kind == spec.CheckMCP && c.MCP != nil:
		p, err = newMCPProber(c.MCP, cfg.version, cfg.stdio)
	case c.Kind == "":
		err = errors.New("the check has no kind")
	default:
		err = fmt.Errorf("cannot run a check of kind %q", c.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("check %q: %w", c.Name, err)
	}
	return &boundedProber{p: p, timeout: timeoutOf(c)}, nil
}

// timeoutOf is the check's timeout; without one, its interval (a probe
// never outlasts the wait before the next), else spec.DefaultCheckTimeout.
func timeoutOf(c *spec.Check) time.Duration {
	switch {
	case c.Timeout > 0:
		return c.Timeout
	case c.Interval > 0:
		return c.Interval
	}
	return spec.DefaultCheckTimeout
}

// boundedProber applies the check's timeout to every probe and words a
// probe that ran out of time the same way for every kind.
type boundedProber struct {
	p       Prober
	timeout time.Duration
}

func (b *boundedProber) Probe(ctx context.Context, t Target) error {
	if b.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, b.timeout, probeTimeout{b.timeout})
		defer cancel()
	}
	return b.p.Probe(ctx, t)
}

// probeTimeout is the cause of a probe's context that ran out of the
// check's timeout (rather than the caller's deadline).
type probeTimeout struct{ d time.Duration }

func (e probeTimeout) Error() string { return fmt.Sprintf("no answer within the %s timeout", e.d) }

// ranOut words a probe whose context ended while it waited: "WHAT: no answer
// within the 2s timeout" instead of a raw error that often repeats the URL and
// says "context deadline exceeded". It returns nil while ctx is still live.
func ranOut(ctx context.Context, what string) error {
	if ctx.Err() == nil {
		return nil
	}
	var pt probeTimeout
	switch cause := context.Cause(ctx); {
	case errors.As(cause, &pt):
		return fmt.Errorf("%s: %v", what, pt)
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%s: cancelled", what)
	}
	return fmt.Errorf("%s: no answer before the deadline", what)
}

// failed is the error of an operation of a probe: a timeout if ctx ran out,
// else "WHAT: ERR".
func failed(ctx context.Context, what string, err error) error {
	if e := ranOut(ctx, what); e != nil {
		return e
	}
	return fmt.Errorf("%s: %v", what, err)
}

// netError drops the layers of a network error that repeat what the
// message already says ("dial tcp ADDR: connect: "), down to the cause:
// "connection refused", "no route to host", a DNS error.
func netError(err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Err == nil {
		return err
	}
	err = oe.Err
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
	}
	return err
}

// address joins a target's host and the port the check names.
func address(t Target, port string) (string, error) {
	n, err := portOf(t, port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(hostOf(t), strconv.Itoa(n)), nil
}

// baseURL is where an HTTP request for the replica's port goes: its
// Route's URL, or scheme://Host:port. rt is the Route's round tripper, nil
// for a direct request.
func baseURL(t Target, port, scheme string) (base string, rt http.RoundTripper, err error) {
	n, err := portOf(t, port)
	if err != nil {
		return "", nil, err
	}
	if t.Route != nil {
		base, rt, err := t.Route(scheme, n)
		if err != nil {
			return "", nil, fmt.Errorf("replica %d: %v", t.Replica, err)
		}
		if base != "" {
			return strings.TrimSuffix(base, "/"), rt, nil
		}
	}
	return scheme + "://" + net.JoinHostPort(hostOf(t), strconv.Itoa(n)), nil, nil
}

func hostOf(t Target) string {
	if t.Host == "" {
		return "127.0.0.1"
	}
	return t.Host
}

func portOf(t Target, port string) (int, error) {
	n, ok := t.Ports[port]
	if !ok && port == "" && len(t.Ports) == 1 {
		for _, v := range t.Ports {
			n, ok = v, true
		}
	}
	if !ok {
		names := make([]string, 0, len(t.Ports))
		for k := range t.Ports {
			names = append(names, strconv.Quote(k))
		}
		if len(names) == 0 {
			return 0, fmt.Errorf("replica %d has no port %q (it has no ports)", t.Replica, port)
		}
		slices.Sort(names)
		return 0, fmt.Errorf("replica %d has no port %q (it has %s)", t.Replica, port, strings.Join(names, ", "))
	}
	return n, nil
}

// snippetLen is how much of a body, an output or a tool result a message shows.
const snippetLen = 200

// head returns the first snippetLen bytes of b, cut at a character boundary.
func head(b []byte) string {
	if len(b) <= snippetLen {
		return string(b)
	}
	n := snippetLen
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + "…"
}

// tail returns the last snippetLen bytes of b, cut at a character boundary.
func tail(b []byte) string {
	if len(b) <= snippetLen {
		return string(b)
	}
	i := len(b) - snippetLen
	for i < len(b) && !utf8.RuneStart(b[i]) {
		i++
	}
	return "…" + string(b[i:])
}

// redact replaces every secret in s with spec.Redacted. Secrets shorter than
// minSecret are left alone: replacing "1" everywhere would garble messages
// while hiding nothing.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= minSecret {
			s = strings.ReplaceAll(s, v, spec.Redacted)
		}
	}
	return s
}

const minSecret = 3
