package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

var _ providers.CheckRouter = (*Provider)(nil)

// ChecksViaProxy reports whether tend's http and mcp checks reach pods
// through the API server's pod proxy (checks_via = "api-proxy", the default
// outside a cluster) rather than at the pod's IP (checks_via = "pod-ip",
// the default with in_cluster = true).
func (p *Provider) ChecksViaProxy() bool {
	switch p.set.ChecksVia {
	case spec.ChecksViaAPIProxy:
		return true
	case spec.ChecksViaPodIP:
		return false
	}
	return !p.set.InCluster
}

// CheckRoute implements providers.CheckRouter: with checks going through
// the API server, a replica's port is reached at
// /api/v1/namespaces/NS/pods/[https:]POD:PORT/proxy on the API server, with
// tend's credentials.
func (p *Provider) CheckRoute(in providers.Instance, scheme string, port int) (string, http.RoundTripper, bool, error) {
	if !p.ChecksViaProxy() {
		return "", nil, false, nil
	}
	pod := in.ID
	if pod == "" || strings.ContainsAny(pod, "/#") {
		return "", nil, false, fmt.Errorf("replica %d has no pod to reach through the API server", in.Replica)
	}
	rt, base, err := p.apiTransport()
	if err != nil {
		return "", nil, false, err
	}
	target := pod + ":" + strconv.Itoa(port)
	switch scheme {
	case "", "http":
	case "https":
		target = "https:" + target
	default:
		return "", nil, false, fmt.Errorf("the API server's pod proxy speaks http and https, not %s", scheme)
	}
	u := *base
	u.Path = path.Join(u.Path, "/api/v1/namespaces", p.set.Namespace, "pods", target, "proxy")
	return u.String(), &proxyTransport{base: rt, namespace: p.set.Namespace, pod: pod}, true, nil
}

// apiTransport returns the round tripper of the provider's client
// configuration (its TLS and credentials) and the API server's URL.
func (p *Provider) apiTransport() (http.RoundTripper, *url.URL, error) {
	cfg, err := p.RESTConfig()
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proxyRT == nil {
		rt, err := rest.TransportFor(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("kubernetes client: %w", err)
		}
		base, _, err := rest.DefaultServerUrlFor(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("kubernetes client: %w", err)
		}
		p.proxyRT, p.proxyBase = rt, base
	}
	return p.proxyRT, p.proxyBase, nil
}

// proxyTransport carries requests to a pod through the API server and
// turns the API server's own refusals (it could not reach the pod, tend may
// not use the proxy, the pod is gone) into errors that say so; what the pod
// answers passes through untouched.
type proxyTransport struct {
	base      http.RoundTripper
	namespace string
	pod       string
}

// maxStatusBody bounds how much of a possible API server error is read.
const maxStatusBody = 64 << 10

func (t *proxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes API server is not reachable: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable:
	default:
		return resp, nil
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp, nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("reading the answer of the Kubernetes API server: %w", err)
	}
	if msg := t.refusal(resp.StatusCode, head); msg != "" {
		resp.Body.Close()
		return nil, fmt.Errorf("%s", msg)
	}
	// The pod's own answer: give it back whole.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	return resp, nil
}

// refusal says what an answer means when the API server, not the pod, made
// it; "" for the pod's own answers.
func (t *proxyTransport) refusal(code int, body []byte) string {
	var st metav1.Status
	if json.Unmarshal(body, &st) != nil || st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure {
		return ""
	}
	// The details name the proxied pod as the request did: [scheme:]POD:PORT.
	aboutPod := false
	if d := st.Details; d != nil && d.Kind == "pods" {
		name := strings.TrimPrefix(strings.TrimPrefix(d.Name, "https:"), "http:")
		name, _, _ = strings.Cut(name, ":")
		aboutPod = name == t.pod
	}
	switch {
	case code == http.StatusUnauthorized && st.Reason == metav1.StatusReasonUnauthorized:
		return "the Kubernetes API server refused tend's credentials: " + st.Message
	case code == http.StatusForbidden && aboutPod:
		return fmt.Sprintf("tend's Kubernetes user may not reach pods through the API server's proxy (it needs get, create and delete of pods/proxy in namespace %s): %s", t.namespace, st.Message)
	case code == http.StatusNotFound && aboutPod:
		return fmt.Sprintf("the pod %s is gone", t.pod)
	case strings.HasPrefix(st.Message, "error trying to reach service: "):
		return fmt.Sprintf("the API server could not reach the pod %s: %s", t.pod, strings.TrimPrefix(st.Message, "error trying to reach service: "))
	case strings.HasPrefix(st.Message, "address not allowed"):
		return fmt.Sprintf("the API server will not proxy to the pod %s: %s", t.pod, st.Message)
	}
	return ""
}
