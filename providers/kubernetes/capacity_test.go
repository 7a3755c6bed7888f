package kubernetes_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/kubernetes"
	"github.com/tendhq/tend/providers/kubernetes/kubetest"
	"github.com/tendhq/tend/spec"
)

// capacityNode is a node kwok keeps ready, with its own allocatable.
func capacityNode(name, cpu, mem string) *corev1.Node {
	alloc := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{kubetest.NodeAnnotation: "fake"},
			Labels: map[string]string{kubetest.NodeLabel: "kwok", "kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: alloc},
	}
}

// TestCapacity lists the nodes of a real API server: the fake nodes
// kubetest starts, a node whose allocatable is less than its capacity,
// and a cordoned and a tainted node, which take no pod of tend's.
func TestCapacity(t *testing.T) {
	c := kubetest.StartWithOptions(t, kubetest.Options{Nodes: 2, CPU: "4", Memory: "16Gi"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	small := capacityNode("tend-cap-small", "7500m", "30Gi")
	cordoned := capacityNode("tend-cap-cordoned", "64", "1Ti")
	cordoned.Spec.Unschedulable = true
	tainted := capacityNode("tend-cap-tainted", "64", "1Ti")
	tainted.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	for _, n := range []*corev1.Node{small, cordoned, tainted} {
		if _, err := c.Clientset.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating node %s: %v", n.Name, err)
		}
	}
	p, _ := newTestProvider(t, c, "tend-capacity")
	want := []providers.HostCapacity{
		{Name: c.Nodes[0], MilliCPU: 4000, MemoryBytes: 16 << 30},
		{Name: c.Nodes[1], MilliCPU: 4000, MemoryBytes: 16 << 30},
		{Name: "tend-cap-small", MilliCPU: 7500, MemoryBytes: 30 << 30},
	}
	// A new node is tainted not-ready until kwok reports it ready.
	eventually(t, "the capacity of two fake nodes and tend-cap-small", func() error {
		got, err := p.Capacity(ctx)
		if err != nil {
			return err
		}
		slices.SortFunc(got.Hosts, func(a, b providers.HostCapacity) int { return strings.Compare(a.Name, b.Name) })
		if !got.Cluster || !slices.Equal(got.Hosts, want) {
			return fmt.Errorf("Capacity = %+v, want a cluster of %+v", got, want)
		}
		return nil
	})

	// A user who may not list nodes is told what to grant.
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		u.Impersonate = "tend-capacity-nobody"
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	nobody, err := kubernetes.New(&spec.Provider{Type: kubernetes.Type, Name: "nobody", Kubernetes: &spec.KubernetesSettings{
		Kubeconfig: path, Context: c.Context, Namespace: "default",
	}}, providers.Env{ManagedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nobody.Capacity(ctx); err == nil || !strings.Contains(err.Error(), "capacity of kubernetes.nobody: tend's Kubernetes user may not list the cluster's nodes (grant it get and list on nodes") {
		t.Errorf("Capacity without the right to list nodes: %v", err)
	}
}
