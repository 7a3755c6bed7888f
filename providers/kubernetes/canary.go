package kubernetes

import (
	"context"
	"encoding/json"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// A canary rollout (strategy = "canary") cannot be held inside one
// Deployment: a changed pod template rolls every pod. So the first replicas
// of a new spec run in a Deployment of their own, S-canary, while S keeps
// the old template with that many replicas fewer; the Service selects both,
// so the canary takes its share of the traffic. The engine starts replicas
// in its canary steps: starting replica i of a server whose Deployment runs
// another spec, while i is not its last replica, makes S-canary i+1 pods of
// the new spec and S (replicas - (i+1)) pods of the old. Starting the last
// replica promotes: S gets the new template and all its replicas (its own
// rolling update), and S-canary is deleted. Any start of S's own spec (the
// promotion, a rollback, a heal) deletes a canary Deployment left behind.
//
// Observe numbers the canary's pods first (replicas 0..k-1), then S's.

// canaryStep reports whether starting replica i is a canary step.
func canaryStep(s *spec.Server, live *liveObjects, specHash string, replica int) bool {
	return s.Rollout.Strategy == spec.StrategyCanary && s.Scaling == nil &&
		live.deployment != nil && live.deployment.Annotations[providers.LabelSpecHash] != specHash &&
		replica+1 < s.Replicas
}

// readCanary returns the server's canary Deployment, nil when there is
// none; foreign is a Deployment of that name that is not this server's
// canary (another server's, or no tend's).
func (p *Provider) readCanary(ctx context.Context, cs kubernetes.Interface, b *build) (dep *appsv1.Deployment, foreign bool, err error) {
	name := canaryName(b.name)
	dep, err = cs.AppsV1().Deployments(p.set.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, p.apiErr("read Deployment "+name, err)
	}
	if !isCanaryOf(dep, b.name, b.managedBy) {
		return nil, true, nil
	}
	return dep, false, nil
}

// isCanaryOf reports whether dep is the canary Deployment of server, of
// managedBy.
func isCanaryOf(dep *appsv1.Deployment, server, managedBy string) bool {
	return owned(dep.Labels, dep.Annotations, managedBy) && dep.Labels[LabelRole] == roleCanary && dep.Labels[providers.LabelServer] == server
}

// startCanary runs replica i of the new spec in the canary Deployment, with
// the server's Deployment scaled down to make room, and waits for it.
func (p *Provider) startCanary(ctx context.Context, cs kubernetes.Interface, b *build, live *liveObjects, canary *appsv1.Deployment, replica int) (providers.Instance, error) {
	ns := p.set.Namespace
	s := b.d.Server
	for _, c := range b.pvcs {
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Apply(ctx, c, applyOpts); err != nil {
			return providers.Instance{}, p.apiErr("apply PersistentVolumeClaim "+*c.Name, err)
		}
	}
	if err := p.applyFiles(ctx, cs, b); err != nil {
		return providers.Instance{}, err
	}
	k := replica + 1
	if canary != nil && canary.Annotations[providers.LabelSpecHash] == b.d.SpecHash && canary.Spec.Replicas != nil {
		k = max(k, int(*canary.Spec.Replicas))
	}
	k = min(k, s.Replicas)
	name := canaryName(b.name)
	dep, err := cs.AppsV1().Deployments(ns).Apply(ctx, b.canaryDeployment(int32(k)), applyOpts)
	if err != nil {
		return providers.Instance{}, b.red.Error(p.apiErr("apply Deployment "+name, err))
	}
	// The server's own Deployment keeps its template, with k replicas
	// fewer. Its replica count is compared by value, not by ownership.
	rest := max(0, s.Replicas-k)
	if cur := live.deployment.Spec.Replicas; cur == nil || int(*cur) != rest {
		scale, _ := json.Marshal(map[string]any{"spec": map[string]any{"replicas": rest}})
		if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, b.name, types.MergePatchType, scale, patchOpts); err != nil {
			return providers.Instance{}, p.apiErr("scale Deployment "+b.name+" to "+strconv.Itoa(rest)+" for the canary", err)
		}
	}
	return p.waitReplica(ctx, cs, b, name, dep.Generation, replica)
}

// dropCanary deletes a canary Deployment (its ReplicaSet and pods go with
// it).
func (p *Provider) dropCanary(ctx context.Context, cs kubernetes.Interface, canary *appsv1.Deployment) error {
	if canary == nil {
		return nil
	}
	return p.deleteOwned(ctx, "Deployment", canary.Name, func(o metav1.DeleteOptions) error {
		uid := canary.UID
		o.Preconditions = &metav1.Preconditions{UID: &uid}
		return cs.AppsV1().Deployments(p.set.Namespace).Delete(ctx, canary.Name, o)
	})
}

// canaryOf returns the live canary Deployment of the server Deployment dep
// in w, or nil.
func canaryOf(w *world, dep *appsv1.Deployment, managedBy string) *appsv1.Deployment {
	name := canaryName(dep.Name)
	for i := range w.deployments {
		c := &w.deployments[i]
		if c.Name == name && c.DeletionTimestamp == nil && isCanaryOf(c, dep.Labels[providers.LabelServer], managedBy) {
			return c
		}
	}
	return nil
}
