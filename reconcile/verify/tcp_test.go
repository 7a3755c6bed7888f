package verify

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

func tcpCheck(port string) *spec.Check {
	return &spec.Check{
		Name: "port", Kind: spec.CheckTCP, TCP: &spec.TCPCheck{Port: port},
		Interval: 20 * time.Millisecond, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 1,
	}
}

func TestTCPPass(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	wantPass(t, probe(t, tcpCheck("web"), targetOf(t, 0, l.Addr())))
}

func TestTCPRefused(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	tg := Target{Host: "127.0.0.1", Ports: map[string]int{"db": port}}
	msg := wantFail(t, probe(t, tcpCheck("db"), tg))
	want := fmt.Sprintf("connect 127.0.0.1:%d: ", port)
	if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "refused") || strings.Contains(msg, "dial tcp") {
		t.Errorf("message: %s", msg)
	}
}

func TestTCPSinglePortWithoutName(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	tg := Target{Host: "127.0.0.1", Ports: map[string]int{"only": port}}
	msg := wantFail(t, probe(t, tcpCheck(""), tg))
	if !strings.HasPrefix(msg, fmt.Sprintf("connect 127.0.0.1:%d: ", port)) {
		t.Errorf("message: %s", msg)
	}
}
