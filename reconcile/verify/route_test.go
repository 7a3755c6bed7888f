package verify

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tendhq/tend/spec"
)

// pathProxy stands for the Kubernetes API server's pod proxy: a request to
// /pods/PORT/proxy/REST goes to 127.0.0.1:PORT/REST, with the proxy's
// token required and a header added on the way. It records what the
// backends were asked.
type pathProxy struct {
	ts   *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newPathProxy(t *testing.T) *pathProxy {
	t.Helper()
	p := &pathProxy{}
	p.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer proxy-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/pods/")
		port, rest, ok2 := strings.Cut(rest, "/proxy")
		if !ok || !ok2 {
			http.NotFound(w, r)
			return
		}
		if _, err := strconv.Atoi(port); err != nil {
			http.NotFound(w, r)
			return
		}
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+port+" "+rest)
		p.mu.Unlock()
		backend := &url.URL{Scheme: "http", Host: "127.0.0.1:" + port}
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backend)
			pr.Out.URL.Path = rest
			pr.Out.URL.RawPath = ""
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Set("X-Via-Proxy", "yes")
		}}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.ts.Close)
	return p
}

// route returns a Route through the proxy, with the token added by its
// round tripper, as the kubernetes provider's is.
func (p *pathProxy) route(scheme string, port int) (string, http.RoundTripper, error) {
	if scheme != "http" {
		return "", nil, fmt.Errorf("the test proxy speaks http only, not %s", scheme)
	}
	return p.ts.URL + "/pods/" + strconv.Itoa(port) + "/proxy", tokenRT{}, nil
}

func (p *pathProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

type tokenRT struct{}

func (tokenRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer proxy-token")
	return http.DefaultTransport.RoundTrip(r)
}

func TestHTTPThroughRoute(t *testing.T) {
	t.Parallel()
	px := newPathProxy(t)
	var mu sync.Mutex
	var got []string
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" via="+r.Header.Get("X-Via-Proxy")+" host-header="+r.Host)
		mu.Unlock()
		if r.URL.Path == "/down" {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	// Host is an address nothing listens at: only the route reaches it.
	tg.Host = "192.0.2.123"
	tg.Route = px.route

	c := httpCheck("health", &spec.HTTPCheck{Path: "/healthz", Headers: map[string]spec.Value{"Host": spec.Plain("notes.internal")}})
	wantPass(t, probe(t, c, tg))
	err := probe(t, httpCheck("down", &spec.HTTPCheck{Path: "/down"}), tg)
	port := strconv.Itoa(tg.Ports["web"])
	failsWith(t, err, "GET "+px.ts.URL+"/pods/"+port+"/proxy/down: status 503, want 200")

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !strings.HasPrefix(got[0], "GET /healthz via=yes host-header=127.0.0.1:") {
		t.Errorf("the replica saw %q; want GET /healthz through the proxy, with the proxy's Host", got)
	}
	if reqs := px.requests(); len(reqs) != 2 || reqs[0] != "GET "+port+" /healthz" {
		t.Errorf("the proxy saw %q", reqs)
	}
}

func TestMCPThroughRoute(t *testing.T) {
	t.Parallel()
	px := newPathProxy(t)
	tg := mcpServer(t, nil)
	tg.Host = "192.0.2.123"
	tg.Route = px.route
	c := mcpCheck(&spec.MCPCheck{
		CheckVersion: true,
		Tools:        []string{"search"},
		Call:         &spec.MCPCall{Tool: "search", Arguments: spec.Plain(`{"q":"ping"}`), Expect: "results for ping"},
	})
	wantPass(t, probe(t, c, tg, WithVersion("1.4.2")))
	reqs := px.requests()
	if len(reqs) < 3 {
		t.Fatalf("the proxy saw %q; want the whole session (initialize, initialized, tools/list, call)", reqs)
	}
	for _, r := range reqs {
		if !strings.HasSuffix(r, " /mcp") {
			t.Errorf("the proxy was asked %q; want /mcp", r)
		}
	}
	err := probe(t, c, tg, WithVersion("2.0.0"))
	failsWith(t, err, "mcp "+px.ts.URL+"/pods/")
}

func TestRouteErrorAndTCP(t *testing.T) {
	t.Parallel()
	tg := Target{Replica: 2, Host: "127.0.0.1", Ports: map[string]int{"web": freePort(t)},
		Route: func(string, int) (string, http.RoundTripper, error) {
			return "", nil, fmt.Errorf("replica has no pod yet")
		}}
	failsWith(t, probe(t, httpCheck("health", &spec.HTTPCheck{}), tg), "replica 2: replica has no pod yet")
	// A tcp check does not take the route, and says so when it fails.
	c := &spec.Check{Name: "tcp", Kind: spec.CheckTCP, TCP: &spec.TCPCheck{Port: "web"}}
	failsWith(t, probe(t, c, tg), "only http and mcp checks go through the provider's proxy")
	// A route without a URL means directly.
	tg = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	tg.Route = func(string, int) (string, http.RoundTripper, error) { return "", nil, nil }
	wantPass(t, probe(t, httpCheck("health", &spec.HTTPCheck{}), tg))
}

func failsWith(t *testing.T, err error, want string) {
	t.Helper()
	if msg := wantFail(t, err); !strings.Contains(msg, want) {
		t.Errorf("the failure says %q; want it to say %q", msg, want)
	}
}
