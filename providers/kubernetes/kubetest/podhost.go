package kubetest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// PodIPAnnotation on a pod (its value an IP address) makes kwok give the pod
// that IP, so that what a test runs at that address (in a PodHost) answers
// for the pod.
const PodIPAnnotation = "tend.dev/test-pod-ip"

// PodHost is a network namespace joined to this machine by a veth pair: it
// stands for a node's pod network. The API server proxies only to global
// unicast addresses, never to loopback, so a server that is to answer
// through the API server's pod proxy runs in a PodHost, at its IP.
//
// A PodHost needs root and iproute2's ip; without them NewPodHost skips
// the test, or fails it when Required.
type PodHost struct {
	// Name is the network namespace's name (tend-ktN).
	Name string
	// IP is the address inside the namespace (10.213.N.2), routed from this
	// machine through the veth pair; HostIP is this machine's end of it.
	IP, HostIP string

	hostIf string
	mu     sync.Mutex
	cmds   []*exec.Cmd
}

var podHostSeq atomic.Int32

// NewPodHost makes a network namespace with one veth pair on a /30 of
// 10.213.0.0/16, and removes it (and stops what runs in it) when the test
// ends.
func NewPodHost(t testing.TB) *PodHost {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err == nil && os.Geteuid() != 0 {
		err = fmt.Errorf("network namespaces need root")
	}
	if err != nil {
		if Required() {
			t.Fatalf("kubetest: no pod host: %v (%s=1)", err, RequireEnv)
		}
		t.Skipf("kubetest: no pod host: %v", err)
	}
	start := (os.Getpid() + int(podHostSeq.Add(1))*7) % 250
	for i := range 250 {
		n := (start + i) % 250
		h := &PodHost{
			Name:   fmt.Sprintf("tend-kt%d", n),
			IP:     fmt.Sprintf("10.213.%d.2", n),
			HostIP: fmt.Sprintf("10.213.%d.1", n),
			hostIf: fmt.Sprintf("tkth%d", n),
		}
		// "ip netns add" fails when the name is taken: another test's.
		if out, err := exec.Command(ip, "netns", "add", h.Name).CombinedOutput(); err != nil {
			if strings.Contains(string(out), "exists") {
				continue
			}
			t.Fatalf("kubetest: ip netns add %s: %v: %s", h.Name, err, out)
		}
		t.Cleanup(h.remove)
		peer := fmt.Sprintf("tktp%d", n)
		steps := [][]string{
			{"link", "add", h.hostIf, "type", "veth", "peer", "name", peer},
			{"link", "set", peer, "netns", h.Name},
			{"addr", "add", h.HostIP + "/30", "dev", h.hostIf},
			{"link", "set", h.hostIf, "up"},
			{"netns", "exec", h.Name, "ip", "addr", "add", h.IP + "/30", "dev", peer},
			{"netns", "exec", h.Name, "ip", "link", "set", peer, "up"},
			{"netns", "exec", h.Name, "ip", "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if out, err := exec.Command(ip, s...).CombinedOutput(); err != nil {
				t.Fatalf("kubetest: ip %s: %v: %s", strings.Join(s, " "), err, out)
			}
		}
		return h
	}
	t.Fatal("kubetest: no free pod host name (tend-kt0 to tend-kt249 are all taken)")
	return nil
}

// Start runs name with args inside the namespace, its output to out; the
// process is killed when the test ends, if it still runs.
func (h *PodHost) Start(out io.Writer, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.cmds = append(h.cmds, cmd)
	h.mu.Unlock()
	return cmd, nil
}

// Stop kills a process Start started and waits for it.
func (h *PodHost) Stop(cmd *exec.Cmd) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stop(cmd)
}

func (h *PodHost) stop(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func (h *PodHost) remove() {
	h.mu.Lock()
	for _, cmd := range h.cmds {
		h.stop(cmd)
	}
	h.cmds = nil
	h.mu.Unlock()
	// Deleting the namespace takes its end of the pair, and with it ours;
	// deleting ours as well covers a namespace that something still holds.
	_ = exec.Command("ip", "netns", "delete", h.Name).Run()
	_ = exec.Command("ip", "link", "delete", h.hostIf).Run()
}
