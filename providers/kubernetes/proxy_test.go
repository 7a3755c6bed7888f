package kubernetes_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/kubernetes"
	"github.com/tendhq/tend/providers/kubernetes/kubetest"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/verify"
	"github.com/tendhq/tend/spec"
)

// proxyRepo runs mcp-notes on Kubernetes with an http and an mcp check.
// Its pods' IP is var.pod_ip (kwok honours the annotation
// tend.dev/test-pod-ip), where the test runs a real mcp-notes in a network
// namespace: the API server proxies tend's checks to it.
const proxyRepo = `
variable "kubeconfig" {
  type = string
}

variable "pod_ip" {
  type = string
}

variable "notes_version" {
  default = "1.0.0"
}

provider "kubernetes" "test" {
  kubeconfig = var.kubeconfig
  context    = "tend-test"
  namespace  = "tend-proxy"
}

server "notes" {
  provider = provider.kubernetes.test
  version  = var.notes_version
  image    = "registry.example.com/mcp/notes:${version}"
  replicas = 2
  port     = 8080
  contract = "enforce"
  labels = {
    "annotation:tend.dev/test-pod-ip" = var.pod_ip
  }
  check "health" {
    interval = "1s"
    timeout  = "1s"
    http {
      path          = "/health"
      body_contains = "ok"
    }
  }
  check "mcp" {
    interval = "1s"
    timeout  = "1s"
    mcp {
      check_version = true
      tools         = ["add_note", "search_notes"]
      call {
        tool   = "list_notes"
        expect = "notes"
      }
    }
  }
  rollout {
    max_unavailable   = 1
    verify_for        = "1s"
    progress_deadline = "6s"
  }
}
`

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestChecksThroughAPIProxy runs tend's engine from outside the cluster:
// the pods' IP is not where tend could reach a pod of a real cluster, so its
// http and mcp checks, and the contract fetch, go through the API server's
// pod proxy. mcp-notes 1.0.0 answers for the pods; a release of 1.1.0 fails
// its mcp check (the server still says 1.0.0), through the proxy, and is
// rolled back. With mcp-notes stopped, the API server's own failure to
// reach the pod is reported as such.
func TestChecksThroughAPIProxy(t *testing.T) {
	c := kubetest.Start(t)
	host := kubetest.NewPodHost(t)

	bin := filepath.Join(t.TempDir(), "mcp-notes")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=1.0.0", "-o", bin, "../../examples/mcp-notes")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building mcp-notes: %v\n%s", err, out)
	}
	var notesLog syncBuffer
	notes, err := host.Start(&notesLog, bin, "--host", host.IP, "--port", "8080", "--data-dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// mcp-notes answers at the pod IP before tend is asked to check it.
	addr := net.JoinHostPort(host.IP, "8080")
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mcp-notes does not answer at %s: %v\n%s", addr, err, notesLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	h := newEngineHarness(t, "proxy", proxyRepo, map[string]string{"kubeconfig": c.Kubeconfig, "pod_ip": host.IP})
	h.OnFailure = func() string { return "mcp-notes:\n" + notesLog.String() }
	vars, eng, st := h.Vars, h.Eng, h.Store
	apply := func() string { t.Helper(); return h.Apply("notes") }
	proxyPath := "/api/v1/namespaces/tend-proxy/pods/notes-"

	// 1.0.0: verified through the proxy, its contract read through it.
	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) {
		t.Fatalf("create: %s", out)
	}
	log := notesLog.String()
	for _, want := range []string{
		"path=/health code=200",
		"forwarded_uri=" + proxyPath,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("mcp-notes' log does not show %q:\n%s", want, log)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "msg=request") && !strings.Contains(line, "forwarded_uri="+proxyPath) &&
			!strings.HasSuffix(line, "remote="+host.HostIP) {
			t.Errorf("a request that came neither through the proxy nor from this machine's startup probe: %s", line)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, " path=/mcp ") && !strings.Contains(line, " code=2") {
			t.Errorf("an MCP request through the proxy failed: %s", line)
		}
	}
	ct, err := st.LastVerifiedContract("notes")
	if err != nil || ct == nil || !bytes.Contains(ct.Contract, []byte("search_notes")) {
		t.Errorf("the contract of 1.0.0, read through the proxy: %+v, %v", ct, err)
	}

	// 1.1.0: the pods roll, but mcp-notes still says 1.0.0: the mcp check
	// fails through the proxy, and the engine rolls back.
	vars["notes_version"] = "1.1.0"
	out := apply()
	if !strings.HasPrefix(out, reconcile.ResultRolledBack) {
		t.Fatalf("1.1.0: %s, want rolled back", out)
	}
	for _, want := range []string{proxyPath, `"1.0.0"`, `"1.1.0"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the rollback's reason does not say %s: %s", want, out)
		}
	}

	// The API server's own failure to reach a pod is said as such.
	prov := h.Provider()
	insts := h.Observe("notes")
	if len(insts) == 0 {
		t.Fatal("Observe lists no instance of notes")
	}
	in := insts[0]
	if in.Host != host.IP {
		t.Fatalf("the pod's IP is %q, want %s (kwok's pod-ready stage honours %s)", in.Host, host.IP, kubetest.PodIPAnnotation)
	}
	probe, err := verify.NewProber(&spec.Check{Name: "health", Kind: spec.CheckHTTP,
		HTTP: &spec.HTTPCheck{Path: "/health"}, Timeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	route := func(scheme string, port int) (string, http.RoundTripper, error) {
		u, rt, ok, err := prov.(providers.CheckRouter).CheckRoute(in, scheme, port)
		if err == nil && !ok {
			err = errors.New("no route")
		}
		return u, rt, err
	}
	// A user without pods/proxy is told what it lacks.
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = "tend-without-proxy"
	}
	restricted := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, restricted); err != nil {
		t.Fatal(err)
	}
	other, err := kubernetes.New(&spec.Provider{Type: "kubernetes", Name: "restricted", Kubernetes: &spec.KubernetesSettings{
		Kubeconfig: restricted, Context: kubetest.ContextName, Namespace: "tend-proxy"}}, eng.ProvEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = probe.Probe(context.Background(), verify.Target{Host: in.Host, Ports: in.Ports,
		Route: func(scheme string, port int) (string, http.RoundTripper, error) {
			u, rt, _, err := other.CheckRoute(in, scheme, port)
			return u, rt, err
		}})
	if err == nil || !strings.Contains(err.Error(), "may not reach pods through the API server's proxy (it needs get, create and delete of pods/proxy in namespace tend-proxy)") {
		t.Errorf("without pods/proxy, the check says %v", err)
	}

	host.Stop(notes)
	err = probe.Probe(context.Background(), verify.Target{Host: in.Host, Ports: in.Ports, Route: route})
	want := "the API server could not reach the pod " + in.ID + ": dial tcp " + addr
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("with mcp-notes stopped, the check says %v; want %q, connection refused", err, want)
	}
}
