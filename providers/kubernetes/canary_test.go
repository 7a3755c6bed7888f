package kubernetes_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/kubernetes/kubetest"
	"github.com/tendhq/tend/reconcile"
)

// canaryRepo runs mcp-notes on four replicas with canary steps of one
// replica, then half of them.
const canaryRepo = `
variable "kubeconfig" {
  type = string
}

variable "notes_version" {
  default = "1.0.0"
}

variable "never_ready" {
  default = "false"
}

provider "kubernetes" "test" {
  kubeconfig = var.kubeconfig
  context    = "tend-test"
  namespace  = "tend-canary"
}

server "notes" {
  provider = provider.kubernetes.test
  version  = var.notes_version
  image    = "registry.example.com/mcp/notes:${version}"
  replicas = 4
  port     = 8080
  labels = {
    "annotation:tend.dev/test-never-ready" = var.never_ready
  }
  rollout {
    strategy          = "canary"
    canary_steps      = [1, "50%"]
    verify_for        = "1s"
    progress_deadline = "6s"
  }
}
`

// deploymentLog records, from a watch, every state of the Deployments in a
// namespace: name, replicas and image.
type deploymentLog struct {
	mu     sync.Mutex
	states []string
}

func (l *deploymentLog) watch(t *testing.T, ctx context.Context, c *kubetest.Cluster, ns string) {
	t.Helper()
	w, err := c.Clientset.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			n := int32(-1)
			if d.Spec.Replicas != nil {
				n = *d.Spec.Replicas
			}
			image := ""
			if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
				image = cs[0].Image[strings.LastIndex(cs[0].Image, ":")+1:]
			}
			l.mu.Lock()
			l.states = append(l.states, d.Name+" "+strconv.Itoa(int(n))+" "+image)
			l.mu.Unlock()
		}
	}()
}

func (l *deploymentLog) seen(state string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.states {
		if s == state {
			return true
		}
	}
	return false
}

func (l *deploymentLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.states, "\n")
}

// TestCanary runs a canary rollout on Kubernetes: the first replica of
// 1.1.0 runs in the Deployment notes-canary while notes keeps 1.0.0 on
// three, then two; the last step promotes notes to 1.1.0 and removes the
// canary. 1.2.0, whose pods never become ready, fails in its canary step
// and is rolled back: the server's own Deployment never runs 1.2.0.
func TestCanary(t *testing.T) {
	c := kubetest.Start(t)
	cs := c.Clientset
	const ns = "tend-canary"
	h := newEngineHarness(t, "canary", canaryRepo, map[string]string{"kubeconfig": c.Kubeconfig})
	vars, eng := h.Vars, h.Eng
	apply := func() string { t.Helper(); return h.Apply("notes") }
	var deps deploymentLog
	h.OnFailure = func() string { return "Deployments seen:\n" + deps.String() }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	running := func(version string) {
		t.Helper()
		insts := h.Observe("")
		if len(insts) != 4 {
			t.Errorf("Observe lists %d instances, want 4", len(insts))
		}
		for _, in := range insts {
			if in.Version != version || in.State != providers.StateRunning || len(in.Drift) != 0 {
				t.Errorf("replica %d (%s): version %s, %s (%s), drift %q; want %s running", in.Replica, in.ID, in.Version, in.State, in.Message, in.Drift, version)
			}
		}
		if _, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "notes-canary", metav1.GetOptions{}); err == nil {
			t.Error("the canary Deployment is still there")
		}
		p, err := eng.Plan(context.Background(), h.Source())
		if err != nil {
			t.Fatal(err)
		}
		if ch := p.Change("notes"); ch != nil && ch.Action.Changes() {
			t.Errorf("the plan after the rollout: %s %q", ch.Action, ch.Reasons)
		}
	}

	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) {
		t.Fatalf("create: %s", out)
	}
	running("1.0.0")
	deps.watch(t, ctx, c, ns)

	// 1.1.0 in canary steps: one replica, then two, then all.
	vars["notes_version"] = "1.1.0"
	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) {
		t.Fatalf("1.1.0: %s", out)
	}
	for _, want := range []string{
		"notes-canary 1 1.1.0", "notes 3 1.0.0", // the first step
		"notes-canary 2 1.1.0", "notes 2 1.0.0", // half
		"notes 4 1.1.0", // promoted
	} {
		if !deps.seen(want) {
			t.Errorf("no Deployment state %q was seen", want)
		}
	}
	if !strings.Contains(h.Progress(), "canary: 1 of 4 replicas on 1.1.0") {
		t.Errorf("the progress does not show the canary step")
	}
	running("1.1.0")

	// 1.2.0 never becomes ready: its canary step fails, it is rolled back,
	// and the server's Deployment never had its template.
	vars["notes_version"] = "1.2.0"
	vars["never_ready"] = "true"
	out := apply()
	if !strings.HasPrefix(out, reconcile.ResultRolledBack) || !strings.Contains(out, "canary step of 1 replicas failed") && !strings.Contains(out, "ProgressDeadlineExceeded") {
		t.Fatalf("1.2.0: %s, want rolled back in its canary step", out)
	}
	if !deps.seen("notes-canary 1 1.2.0") || !deps.seen("notes 3 1.1.0") {
		t.Error("1.2.0 did not run as a canary of one replica beside three of 1.1.0")
	}
	if strings.Contains(deps.String(), "notes 4 1.2.0") || strings.Contains(deps.String(), "notes 3 1.2.0") {
		t.Error("the server's own Deployment got the 1.2.0 template")
	}
	running("1.1.0")
}
