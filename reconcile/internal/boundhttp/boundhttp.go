// Package boundhttp ties HTTP requests to a lifetime. The MCP SDK sends some
// requests on contexts of its own (the session's DELETE, a cancellation
// notice after a timeout); a check or a contract fetch binds every request
// to its own life, so that nothing it started outlives it.
package boundhttp

import (
	"context"
	"io"
	"net/http"
	"sync"
)

// Transport returns a transport that carries requests over base and
// cancels each one when life ends, even one made on a context that
// outlives it; a response body keeps its request alive until it is closed
// or life ends.
func Transport(base http.RoundTripper, life context.Context) http.RoundTripper {
	return &transport{base: base, life: life}
}

type transport struct {
	base http.RoundTripper
	life context.Context
}

func (b *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(b.life, cancel)
	release := func() {
		stop()
		cancel()
	}
	resp, err := b.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releasingBody) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
