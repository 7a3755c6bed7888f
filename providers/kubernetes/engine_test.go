package kubernetes_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/kubernetes/kubetest"
	"github.com/tendhq/tend/reconcile"
)

// notesRepo runs mcp-notes on Kubernetes with an autoscaler. A release
// whose pods never become ready is made with the pod annotation
// tend.dev/test-never-ready (a server label "annotation:KEY" is a pod
// annotation), which kwok honours by never making such pods Ready.
const notesRepo = `
variable "kubeconfig" {
  type = string
}

variable "notes_version" {
  default = "1.0.0"
}

variable "never_ready" {
  default = "false"
}

variable "scaling_max" {
  default = 4
}

provider "kubernetes" "test" {
  kubeconfig = var.kubeconfig
  context    = "tend-test"
  namespace  = "tend-engine"
}

server "notes" {
  provider = provider.kubernetes.test
  version  = var.notes_version
  image    = "registry.example.com/mcp/notes:${version}"
  replicas = 2
  port     = 8080
  env = {
    API_TOKEN = secret("api_token")
    MODE      = "engine"
  }
  labels = {
    "annotation:tend.dev/test-never-ready" = var.never_ready
  }
  config_file "/etc/notes/config.yaml" {
    content = "max_notes: 100\n"
  }
  scaling {
    min         = 2
    max         = var.scaling_max
    cpu_percent = 80
  }
  rollout {
    max_unavailable   = 1
    verify_for        = "1s"
    progress_deadline = "8s"
  }
}
`

// TestEngine runs tend's engine with the kubernetes provider: mcp-notes
// 1.0.0 on two replicas with an autoscaler, an upgrade to 1.1.0, then
// 1.2.0 whose pods never become ready: its rollout exceeds its progress
// deadline, and the engine rolls it back to 1.1.0 by itself and holds it.
func TestEngine(t *testing.T) {
	c := kubetest.Start(t)
	cs := c.Clientset
	h := newEngineHarness(t, "engine", notesRepo, map[string]string{"kubeconfig": c.Kubeconfig})
	h.Environ["TEND_SECRET_API_TOKEN"] = "tok-engine-secret"
	vars, eng, source := h.Vars, h.Eng, h.Source
	apply := func() string { t.Helper(); return h.Apply("notes") }
	observe := func() []providers.Instance { t.Helper(); return h.Observe("") }
	running := func(version string) {
		t.Helper()
		insts := observe()
		if len(insts) != 2 {
			t.Errorf("Observe lists %d instances, want 2", len(insts))
		}
		for _, in := range insts {
			if in.Version != version || in.State != providers.StateRunning || len(in.Drift) != 0 {
				t.Errorf("replica %d: version %s, %s (%s), drift %q; want %s running", in.Replica, in.Version, in.State, in.Message, in.Drift, version)
			}
		}
	}
	noChanges := func(when string) {
		t.Helper()
		p, err := eng.Plan(context.Background(), source())
		if err != nil {
			t.Fatal(err)
		}
		if p.HasChanges() {
			t.Errorf("the plan %s has changes: %+v", when, p.Change("notes"))
		}
	}

	// Create, with its autoscaler.
	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) {
		t.Fatalf("create: %s\n%s", out, h.Progress())
	}
	running("1.0.0")
	noChanges("after the create")
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers("tend-engine").Get(context.Background(), "notes", metav1.GetOptions{}); err != nil {
		t.Errorf("the HorizontalPodAutoscaler: %v", err)
	}

	// A change of the scaling block alone reaches the autoscaler and
	// replaces no pod.
	podNames := func() string {
		pods, err := cs.CoreV1().Pods("tend-engine").List(context.Background(), metav1.ListOptions{LabelSelector: "tend.dev/role=server"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range pods.Items {
			names = append(names, p.Name)
		}
		sort.Strings(names)
		return strings.Join(names, ",")
	}
	before := podNames()
	vars["scaling_max"] = "6"
	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) {
		t.Fatalf("scaling max 4 → 6: %s\n%s", out, h.Progress())
	}
	hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers("tend-engine").Get(context.Background(), "notes", metav1.GetOptions{})
	if err != nil || hpa.Spec.MaxReplicas != 6 {
		t.Fatalf("after scaling max = 6, the autoscaler: %+v %v", hpa.Spec, err)
	}
	if after := podNames(); after != before {
		t.Errorf("a change of the scaling block replaced pods: %s → %s", before, after)
	}
	noChanges("after the scaling change")

	// Upgrade: the Deployment's rolling update, verified.
	vars["notes_version"] = "1.1.0"
	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) {
		t.Fatalf("upgrade to 1.1.0: %s\n%s", out, h.Progress())
	}
	running("1.1.0")
	noChanges("after the upgrade")

	// 1.2.0 never becomes ready: rolled back to 1.1.0, and held.
	vars["notes_version"] = "1.2.0"
	vars["never_ready"] = "true"
	began := time.Now()
	out := apply()
	if !strings.HasPrefix(out, reconcile.ResultRolledBack) {
		t.Fatalf("the never-ready 1.2.0: %s, want rolled back\n%s", out, h.Progress())
	}
	if !strings.Contains(out, "ProgressDeadlineExceeded") {
		t.Errorf("the failure does not name the exceeded progress deadline: %s", out)
	}
	t.Logf("1.2.0 rolled back in %s: %s", time.Since(began).Round(100*time.Millisecond), out)
	running("1.1.0")
	p, err := eng.Plan(context.Background(), source())
	if err != nil {
		t.Fatal(err)
	}
	if ch := p.Change("notes"); ch == nil || ch.Action != reconcile.ActionHeld {
		t.Fatalf("the plan after the rollback: %+v, want notes held", ch)
	}
	if p.HasChanges() {
		t.Error("a held revision still plans changes")
	}
	if strings.Contains(h.Progress(), "tok-engine-secret") || strings.Contains(out, "tok-engine-secret") {
		t.Error("the progress output shows the secret")
	}
}
