package kubernetes

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tendhq/tend/providers"
)

var _ providers.CapacityReporter = (*Provider)(nil)

// Capacity implements providers.CapacityReporter: the allocatable CPU and
// memory of every node a pod of tend's can be scheduled on, one host each.
// Nodes that are cordoned (unschedulable), or tainted NoSchedule or
// NoExecute (tend's pods tolerate no taint: control-plane nodes, nodes
// that are not ready), are left out. Listing nodes needs a cluster-wide
// permission beside the namespace's.
func (p *Provider) Capacity(ctx context.Context) (providers.Capacity, error) {
	out := providers.Capacity{Cluster: true}
	cs, err := p.Clientset()
	if err != nil {
		return out, err
	}
	opts := metav1.ListOptions{Limit: 500}
	for {
		nodes, err := cs.CoreV1().Nodes().List(ctx, opts)
		if apierrors.IsForbidden(err) {
			return out, fmt.Errorf("capacity of %s: tend's Kubernetes user may not list the cluster's nodes (grant it get and list on nodes, with a ClusterRole): %w", p.key, err)
		}
		if err != nil {
			return out, p.apiErr("capacity of "+p.key+": listing the cluster's nodes", err)
		}
		for i := range nodes.Items {
			n := &nodes.Items[i]
			if !schedulable(n) {
				continue
			}
			cpu, mem := n.Status.Allocatable[corev1.ResourceCPU], n.Status.Allocatable[corev1.ResourceMemory]
			out.Hosts = append(out.Hosts, providers.HostCapacity{
				Name: n.Name, MilliCPU: max(cpu.MilliValue(), 0), MemoryBytes: max(mem.Value(), 0),
			})
		}
		if nodes.Continue == "" {
			return out, nil
		}
		opts.Continue = nodes.Continue
	}
}

// schedulable reports whether a pod without tolerations may be scheduled
// on n.
func schedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	return true
}
