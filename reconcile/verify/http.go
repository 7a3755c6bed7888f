package verify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tendhq/tend/spec"
)

// maxBody is how much of a response body an http check reads.
const maxBody = 1 << 20

type httpProber struct {
	c       *spec.HTTPCheck
	re      *regexp.Regexp
	client  *http.Client
	secrets []string // revealed header values, kept out of messages
}

func newHTTPProber(c *spec.HTTPCheck) (*httpProber, error) {
	p := &httpProber{c: c}
	switch strings.ToLower(c.Scheme) {
	case "", "http", "https":
	default:
		return nil, fmt.Errorf("unsupported scheme %q", c.Scheme)
	}
	if c.BodyRegex != "" {
		re, err := regexp.Compile(c.BodyRegex)
		if err != nil {
			return nil, fmt.Errorf("body_regex: %v", err)
		}
		p.re = re
	}
	for _, v := range c.Headers {
		p.secrets = append(p.secrets, v.Reveal())
	}
	// Longest first, so that a secret containing another is hidden whole.
	slices.SortFunc(p.secrets, func(a, b string) int { return len(b) - len(a) })
	p.client = &http.Client{
		Transport: &http.Transport{
			// A probe asks the replica itself: never through a proxy from
			// the environment, and on a new connection every time, so that
			// a replica that stopped accepting cannot pass on an old one.
			Proxy:             nil,
			DialContext:       (&net.Dialer{}).DialContext,
			DisableKeepAlives: true,
			// Like the kubelet: a replica reached at an address rarely has a
			// certificate for that address.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		// The status list decides about redirects; following one could
		// make a check pass on another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p, nil
}

func (p *httpProber) Probe(ctx context.Context, t Target) error {
	scheme := strings.ToLower(p.c.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	base, rt, err := baseURL(t, p.c.Port, scheme)
	if err != nil {
		return err
	}
	path := p.c.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	method := p.c.Method
	if method == "" {
		method = http.MethodGet
	}
	target := base + path
	what := method + " " + target

	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	req.Header.Set("User-Agent", "tend-verify")
	for k, v := range p.c.Headers {
		if strings.EqualFold(k, "Host") {
			// Through a proxy, the Host header is the proxy's business.
			if rt == nil {
				req.Host = v.Reveal()
			}
			continue
		}
		req.Header.Set(k, v.Reveal())
	}
	client := p.client
	if rt != nil {
		client = &http.Client{Transport: rt, CheckRedirect: p.client.CheckRedirect}
	}
	resp, err := client.Do(req)
	if err != nil {
		return failed(ctx, what, p.unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return failed(ctx, what, fmt.Errorf("reading the body after status %d: %v", resp.StatusCode, err))
	}

	want := p.c.Status
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	if !slices.Contains(want, resp.StatusCode) {
		msg := fmt.Sprintf("%s: status %d, want %s", what, resp.StatusCode, statusList(want))
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += " (redirect to " + p.hide(loc) + ")"
		}
		err := errors.New(msg + p.bodyNote(body))
		if settledStatus(resp.StatusCode) {
			return answer{err}
		}
		return err
	}
	if s := p.c.BodyContains; s != "" && !bytes.Contains(body, []byte(s)) {
		return answer{fmt.Errorf("%s: status %d, body does not contain %q%s", what, resp.StatusCode, s, p.bodyNote(body))}
	}
	if p.re != nil && !p.re.Match(body) {
		return answer{fmt.Errorf("%s: status %d, body does not match /%s/%s", what, resp.StatusCode, p.re, p.bodyNote(body))}
	}
	return nil
}

// unwrap drops the layers of a request error that repeat method and URL.
func (p *httpProber) unwrap(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return errors.New(p.hide(netError(err).Error()))
}

// bodyNote is the start of the body for a message, with header values hidden
// (a server may echo the request).
func (p *httpProber) bodyNote(body []byte) string {
	if len(body) == 0 {
		return ", empty body"
	}
	// Hide before cutting, so that no part of a value shows either.
	return fmt.Sprintf(", body %q", head([]byte(p.hide(string(body)))))
}

func (p *httpProber) hide(s string) string { return redact(s, p.secrets) }

// settledStatus reports whether an unwanted status is a definite answer:
// not a 5xx (a server or a proxy in front of it that is not ready yet),
// 408 (timeout), 425 (too early) or 429 (too many requests), which a server
// that is starting or busy gives and later stops giving.
func settledStatus(code int) bool {
	switch {
	case code >= 500:
		return false
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
		return false
	}
	return true
}

func statusList(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = strconv.Itoa(c)
	}
	if len(s) == 1 {
		return s[0]
	}
	return "one of " + strings.Join(s, ", ")
}
