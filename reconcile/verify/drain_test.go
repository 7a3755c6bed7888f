package verify

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

// slowServer answers after a while, and counts the requests it finished
// and those whose client gave up halfway.
type slowServer struct {
	delay             time.Duration
	started, finished atomic.Int32
	aborted           atomic.Int32
}

func (s *slowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.started.Add(1)
	select {
	case <-time.After(s.delay):
		s.finished.Add(1)
	case <-r.Context().Done():
		s.aborted.Add(1)
	}
}

// When verification ends, a probe in flight is let finish rather than cut
// halfway (which a server sees as a broken request: an MCP server logs a
// 400 for the half of a POST a proxy forwarded), and no new probe starts.
func TestVerifyLetsProbesInFlightFinish(t *testing.T) {
	t.Parallel()
	slow := &slowServer{delay: 150 * time.Millisecond}
	slowCheck := httpCheck("slow", &spec.HTTPCheck{})
	slowCheck.Interval = 20 * time.Millisecond
	slowCheck.Timeout = time.Second
	for range 3 {
		out := Verify(context.Background(), Options{
			Checks:    []*spec.Check{quickCheck("fast", 1), slowCheck},
			Targets:   []Target{serve(t, slow)},
			VerifyFor: 100 * time.Millisecond,
			Deadline:  5 * time.Second,
		})
		if !out.Verified {
			t.Fatalf("not verified: %s", out.Reason)
		}
		if out.Duration > 1500*time.Millisecond {
			t.Errorf("verified after %s: the end waited longer than a probe takes", out.Duration)
		}
	}
	if n := slow.aborted.Load(); n != 0 {
		t.Errorf("%d of %d probes were cut halfway when verification ended", n, slow.started.Load())
	}
	if s, f := slow.started.Load(), slow.finished.Load(); s != f {
		t.Errorf("the server started %d requests and finished %d after Verify returned", s, f)
	}
}
