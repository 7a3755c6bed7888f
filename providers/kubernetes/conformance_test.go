package kubernetes_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/kubernetes"
	"github.com/tendhq/tend/providers/kubernetes/kubetest"
	"github.com/tendhq/tend/providers/providertest"
	"github.com/tendhq/tend/spec"
)

// newTestProvider returns a provider on the test cluster, in a namespace of
// its own, owned by a managed-by unique to the test.
func newTestProvider(t *testing.T, c *kubetest.Cluster, ns string) (*kubernetes.Provider, string) {
	t.Helper()
	managedBy := "test-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + strconv.Itoa(os.Getpid())
	if len(managedBy) > 63 {
		managedBy = managedBy[:63]
	}
	p, err := kubernetes.New(&spec.Provider{Type: kubernetes.Type, Name: "test", Kubernetes: &spec.KubernetesSettings{
		Kubeconfig: c.Kubeconfig, Context: c.Context, Namespace: ns,
	}}, providers.Env{ManagedBy: managedBy})
	if err != nil {
		t.Fatal(err)
	}
	return p, managedBy
}

// TestConformance runs the provider conformance suite against a real
// control plane whose nodes kwok simulates.
//
// kwok runs no container, so nothing in a pod answers GET /health, and a
// pod's IP (10.244.x.y) leads nowhere. The harness therefore wraps the
// provider in a stand-in for the workload (fakeWorkload): every pod that
// exists gets a listener on 127.0.0.1 answering /health with the version
// its pod carries, for as long as the pod exists, and the instances the
// suite sees point there. Everything else the suite checks (identity,
// states, replica numbers, drift, kill, scale, delete, orphans, a foreign
// Deployment) is the provider's own answer from the cluster.
//
// The wrapper offers the core Provider only: Exec in a pod is not
// available (ErrNoPodExec; Jobs are tested in TestCluster/HookJob), and
// there is no Statser or DataCopier.
//
// A Deployment rolls every pod once its template changes, so the harness
// says WholeSet: after StartReplica of replica i of a new spec, the replicas
// after it are not expected to keep the old version (every replica must
// still end at the new one).
func TestConformance(t *testing.T) {
	c := kubetest.Start(t)
	ns := "tend-conformance"
	p, managedBy := newTestProvider(t, c, ns)
	cs := c.Clientset
	fw := newFakeWorkload(t, p, cs, ns)
	ports := map[string]int{}
	server := func(name, version string, replicas int) *spec.Server {
		if _, ok := ports[name]; !ok {
			ports[name] = freePort(t)
		}
		return &spec.Server{
			Name:     name,
			Provider: "kubernetes.test",
			Version:  version,
			Image:    "registry.example.com/tend/conformance:" + version,
			Replicas: replicas,
			Ports:    []spec.Port{{Name: "http", Number: ports[name], Protocol: "tcp"}},
			Env:      map[string]spec.Value{"MODE": spec.Plain("conformance")},
			ConfigFiles: []*spec.ConfigFile{
				{Path: "/etc/notes/config.yaml", Content: spec.Plain("max_notes: 100\n"), Mode: 0o644},
			},
			Rollout: spec.Rollout{Strategy: spec.StrategyRolling, MaxUnavailable: spec.IntOrPercent{Value: 1},
				ProgressDeadline: time.Minute},
		}
	}
	providertest.Run(t, providertest.Harness{
		Provider:  fw,
		ManagedBy: managedBy,
		Server:    server,
		// Tamper changes one replica's pod by hand, as kubectl set image
		// pod/NAME does: that replica drifts from its Deployment.
		Tamper: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			patch := []byte(`{"spec":{"containers":[{"name":"server","image":"registry.example.com/tampered:1"}]}}`)
			if _, err := cs.CoreV1().Pods(ns).Patch(context.Background(), inst.ID, types.StrategicMergePatchType, patch,
				metav1.PatchOptions{FieldManager: "kubectl-set"}); err != nil {
				t.Fatal(err)
			}
		},
		// Kill reports the replica's container killed and restarted, as
		// the kubelet does after a SIGKILL (kwok has no container to kill).
		Kill: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			killContainer(t, cs, ns, inst.ID)
		},
		// Foreign is a Deployment without tend's labels.
		Foreign: func(t *testing.T) (func() bool, func()) {
			t.Helper()
			ctx := context.Background()
			ensureNamespace(t, cs, ns)
			d := foreignDeployment("foreign-web")
			if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			alive := func() bool {
				got, err := cs.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
				return err == nil && got.DeletionTimestamp == nil
			}
			cleanup := func() { cs.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{}) }
			return alive, cleanup
		},
		Timeout:  30 * time.Second,
		WholeSet: true,
	})
}

func foreignDeployment(name string) *appsv1.Deployment {
	one := int32(1)
	labels := map[string]string{"app": name, "owner": "someone-else"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web:1"}}},
			},
		},
	}
}

func ensureNamespace(t *testing.T, cs k8s.Interface, ns string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// killContainer records a container restart in a pod's status, with the
// exit code of a SIGKILL, as the kubelet would.
func killContainer(t *testing.T, cs k8s.Interface, ns, pod string) {
	t.Helper()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Status.ContainerStatuses) == 0 {
			t.Fatalf("pod %s has no container status to kill", pod)
		}
		now := metav1.Now()
		st := &p.Status.ContainerStatuses[0]
		st.RestartCount++
		st.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "Error", StartedAt: now, FinishedAt: now,
		}}
		st.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || attempt > 5 {
			t.Fatal(err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// fakeWorkload stands in for the processes kwok does not run: every pod
// of the namespace that the provider reports gets a listener on 127.0.0.1
// that answers GET /health with the pod's version while the pod exists,
// and is closed once the pod is gone.
type fakeWorkload struct {
	p  *kubernetes.Provider
	cs k8s.Interface
	ns string

	mu        sync.Mutex
	listeners map[string]net.Listener // by pod name
}

func newFakeWorkload(t *testing.T, p *kubernetes.Provider, cs k8s.Interface, ns string) *fakeWorkload {
	fw := &fakeWorkload{p: p, cs: cs, ns: ns, listeners: map[string]net.Listener{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			fw.reap(ctx)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		fw.mu.Lock()
		defer fw.mu.Unlock()
		for _, l := range fw.listeners {
			l.Close()
		}
	})
	return fw
}

func (fw *fakeWorkload) Type() string { return fw.p.Type() }

func (fw *fakeWorkload) Observe(ctx context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	res := fw.p.Observe(ctx, req)
	for i := range res.Instances {
		fw.point(&res.Instances[i])
	}
	return res
}

func (fw *fakeWorkload) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	res := fw.p.StartReplica(ctx, req)
	fw.point(&res.Instance)
	return res
}

func (fw *fakeWorkload) StopReplica(ctx context.Context, req providers.StopRequest) providers.StopResponse {
	return fw.p.StopReplica(ctx, req)
}

// point makes an instance's ports lead to its pod's stand-in.
func (fw *fakeWorkload) point(inst *providers.Instance) {
	if inst.ID == "" || strings.HasPrefix(inst.ID, "deployment/") {
		inst.Host = "127.0.0.1" // a replica without a pod: its port answers nothing
		return
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	l, ok := fw.listeners[inst.ID]
	if !ok {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return
		}
		fw.listeners[inst.ID] = l
		go http.Serve(l, fw.handler(inst.ID))
	}
	inst.Host = "127.0.0.1"
	for name := range inst.Ports {
		inst.Ports[name] = l.Addr().(*net.TCPAddr).Port
	}
}

func (fw *fakeWorkload) handler(pod string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := fw.cs.CoreV1().Pods(fw.ns).Get(r.Context(), pod, metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp != nil {
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": p.Annotations[providers.LabelVersion]})
	})
}

// reap closes the listeners of pods that are gone or stopping.
func (fw *fakeWorkload) reap(ctx context.Context) {
	pods, err := fw.cs.CoreV1().Pods(fw.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	live := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live[p.Name] = true
		}
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for name, l := range fw.listeners {
		if !live[name] {
			l.Close()
			delete(fw.listeners, name)
		}
	}
}
