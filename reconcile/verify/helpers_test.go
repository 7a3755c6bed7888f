package verify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

// serve starts a loopback HTTP server and returns the target reaching it,
// with the server's port named "web".
func serve(t *testing.T, h http.Handler) Target {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return targetOf(t, 0, ts.Listener.Addr())
}

func targetOf(t *testing.T, replica int, addr net.Addr) Target {
	t.Helper()
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Replica: replica, Host: host, Ports: map[string]int{"web": n}}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func httpCheck(name string, h *spec.HTTPCheck) *spec.Check {
	if h.Port == "" {
		h.Port = "web"
	}
	if h.Path == "" {
		h.Path = "/health"
	}
	if h.Method == "" {
		h.Method = "GET"
	}
	if h.Scheme == "" {
		h.Scheme = "http"
	}
	if len(h.Status) == 0 {
		h.Status = []int{200}
	}
	return &spec.Check{
		Name: name, Kind: spec.CheckHTTP, HTTP: h,
		Interval: 20 * time.Millisecond, Timeout: time.Second,
		SuccessThreshold: 1, FailureThreshold: 1,
	}
}

func probe(t *testing.T, c *spec.Check, tg Target, opts ...ProberOption) error {
	t.Helper()
	p, err := NewProber(c, runLocal, opts...)
	if err != nil {
		t.Fatalf("NewProber: %v", err)
	}
	return p.Probe(context.Background(), tg)
}

// runLocal is an ExecFunc that really runs the command on this machine.
func runLocal(ctx context.Context, _ Target, argv []string) (int, []byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 100 * time.Millisecond // a killed shell's children keep the pipe open
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out, nil
	}
	if err != nil {
		return -1, out, err
	}
	return 0, out, nil
}

func wantPass(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("probe failed: %v", err)
	}
}

func wantFail(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("probe passed, want a failure")
	}
	return err.Error()
}
