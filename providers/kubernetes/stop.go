package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tendhq/tend/providers"
)

// StopReplica implements providers.Provider. Replica 0 stands for the
// server: stopping it removes every object of the server but its volume
// claims (the engine stops replica 0 only when the server goes, is
// recreated, or moves). Stopping replica i > 0 scales the Deployment down
// by one, removing that replica's pod.
func (p *Provider) StopReplica(ctx context.Context, req providers.StopRequest) providers.StopResponse {
	inst := req.Instance
	if inst.Server == "" {
		return providers.StopResponse{Err: fmt.Errorf("stop: the instance names no server")}
	}
	managedBy := p.managedByOf(inst.ManagedBy)
	cs, err := p.Clientset()
	if err != nil {
		return providers.StopResponse{Err: err}
	}
	unlock := p.lock(inst.Server)
	defer unlock()
	if inst.Replica <= 0 {
		err = p.deleteServer(ctx, cs, managedBy, inst.Server)
	} else {
		err = p.scaleDown(ctx, cs, managedBy, inst, req.Grace)
	}
	if err != nil {
		return providers.StopResponse{Err: fmt.Errorf("stop %s replica %d: %w", inst.Server, inst.Replica, err)}
	}
	return providers.StopResponse{}
}

// deleteServer deletes every tend-labelled object of the server, the
// Deployment last (so that a delete cut short leaves it listed, and the
// next prune finishes the job). Persistent volume claims are kept: data
// outlives the server, as docker's volumes do.
func (p *Provider) deleteServer(ctx context.Context, cs kubernetes.Interface, managedBy, server string) error {
	ns := p.set.Namespace
	sel := metav1.ListOptions{LabelSelector: ownerSelector(managedBy, server)}
	bg := metav1.DeletePropagationBackground
	del := func(kind, name string, uid types.UID, f func(string, metav1.DeleteOptions) error) error {
		o := metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}
		if err := f(name, o); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return p.apiErr("delete "+kind+" "+name, err)
		}
		return nil
	}
	hpas, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, sel)
	if err != nil {
		return p.apiErr("list HorizontalPodAutoscalers", err)
	}
	for _, o := range hpas.Items {
		if owned(o.Labels, o.Annotations, managedBy) {
			if err := del("HorizontalPodAutoscaler", o.Name, o.UID, func(n string, opt metav1.DeleteOptions) error {
				return cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Delete(ctx, n, opt)
			}); err != nil {
				return err
			}
		}
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets(ns).List(ctx, sel)
	if err != nil {
		return p.apiErr("list PodDisruptionBudgets", err)
	}
	for _, o := range pdbs.Items {
		if owned(o.Labels, o.Annotations, managedBy) {
			if err := del("PodDisruptionBudget", o.Name, o.UID, func(n string, opt metav1.DeleteOptions) error {
				return cs.PolicyV1().PodDisruptionBudgets(ns).Delete(ctx, n, opt)
			}); err != nil {
				return err
			}
		}
	}
	svcs, err := cs.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return p.apiErr("list Services", err)
	}
	for _, o := range svcs.Items {
		if owned(o.Labels, o.Annotations, managedBy) {
			if err := del("Service", o.Name, o.UID, func(n string, opt metav1.DeleteOptions) error {
				return cs.CoreV1().Services(ns).Delete(ctx, n, opt)
			}); err != nil {
				return err
			}
		}
	}
	jobs, err := cs.BatchV1().Jobs(ns).List(ctx, sel)
	if err != nil {
		return p.apiErr("list Jobs", err)
	}
	for _, o := range jobs.Items {
		if owned(o.Labels, o.Annotations, managedBy) {
			if err := del("Job", o.Name, o.UID, func(n string, opt metav1.DeleteOptions) error {
				return cs.BatchV1().Jobs(ns).Delete(ctx, n, opt)
			}); err != nil {
				return err
			}
		}
	}
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, sel)
	if err != nil {
		return p.apiErr("list Deployments", err)
	}
	for _, o := range deps.Items {
		if owned(o.Labels, o.Annotations, managedBy) {
			if err := del("Deployment", o.Name, o.UID, func(n string, opt metav1.DeleteOptions) error {
				return cs.AppsV1().Deployments(ns).Delete(ctx, n, opt)
			}); err != nil {
				return err
			}
		}
	}
	// The files and secrets last: pods still stopping may read them.
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		return p.apiErr("list ConfigMaps", err)
	}
	for _, o := range cms.Items {
		if owned(o.Labels, o.Annotations, managedBy) {
			if err := del("ConfigMap", o.Name, o.UID, func(n string, opt metav1.DeleteOptions) error {
				return cs.CoreV1().ConfigMaps(ns).Delete(ctx, n, opt)
			}); err != nil {
				return err
			}
		}
	}
	secs, err := cs.CoreV1().Secrets(ns).List(ctx, sel)
	if err != nil {
		return p.apiErr("list Secrets", err)
	}
	for _, o := range secs.Items {
		if owned(o.Labels, o.Annotations, managedBy) {
			if err := del("Secret", o.Name, o.UID, func(n string, opt metav1.DeleteOptions) error {
				return cs.CoreV1().Secrets(ns).Delete(ctx, n, opt)
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// scaleDown removes one replica: the Deployment's count goes down by one,
// and the replica's pod gets the lowest deletion cost so that the
// ReplicaSet removes that pod and no other.
//
// The count is patched with the resourceVersion it was read at, so that a
// change of the count by someone else in between is not overwritten. The
// Deployment's controllers write its status all the while, which changes
// the resourceVersion too; so a conflict is read again and retried a few
// times before it is reported.
func (p *Provider) scaleDown(ctx context.Context, cs kubernetes.Interface, managedBy string, inst providers.Instance, grace time.Duration) error {
	var err error
	for try := 0; try < 5; try++ {
		if err = p.scaleDownOnce(ctx, cs, managedBy, inst, grace); !errors.Is(err, errScaleConflict) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(50*(try+1)) * time.Millisecond):
		}
	}
	return err
}

// errScaleConflict is wrapped by scaleDownOnce's error when the Deployment
// changed between its read and the patch.
var errScaleConflict = errors.New("conflict")

func (p *Provider) scaleDownOnce(ctx context.Context, cs kubernetes.Interface, managedBy string, inst providers.Instance, grace time.Duration) error {
	ns := p.set.Namespace
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, inst.Server, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return p.apiErr("read Deployment "+inst.Server, err)
	}
	if !owned(dep.Labels, dep.Annotations, managedBy) {
		return fmt.Errorf("the Deployment %s is not this tend's", inst.Server)
	}
	cur := 1
	if dep.Spec.Replicas != nil {
		cur = int(*dep.Spec.Replicas)
	}
	if inst.Replica >= cur {
		return nil // already gone
	}
	podName := ""
	if pod, err := cs.CoreV1().Pods(ns).Get(ctx, inst.ID, metav1.GetOptions{}); err == nil &&
		pod.DeletionTimestamp == nil && pod.Labels[LabelRole] == roleServer && owned(pod.Labels, pod.Annotations, managedBy) &&
		pod.Labels[providers.LabelServer] == inst.Server {
		podName = pod.Name
		cost, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			deletionCost: strconv.Itoa(math.MinInt32),
		}}})
		if _, err := cs.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, cost, patchOpts); err != nil && !apierrors.IsNotFound(err) {
			return p.apiErr("mark pod "+pod.Name+" to be removed first", err)
		}
	}
	n := cur - 1
	scale, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"annotations":     map[string]string{AnnotationReplicas: strconv.Itoa(n)},
			"resourceVersion": dep.ResourceVersion,
		},
		"spec": map[string]any{"replicas": n},
	})
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, inst.Server, types.MergePatchType, scale, patchOpts); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("the Deployment %s changed while tend scaled it down; the next apply converges: %w (%w)", inst.Server, err, errScaleConflict)
		}
		return p.apiErr("scale Deployment "+inst.Server+" to "+strconv.Itoa(n), err)
	}
	if podName == "" {
		return nil
	}
	// Wait for the ReplicaSet to stop the pod (it is then terminating,
	// with its own grace period), at most a little longer than grace.
	wait := max(grace, 5*time.Second) + 10*time.Second
	until := time.Now().Add(wait)
	for time.Now().Before(until) {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && pod.DeletionTimestamp != nil) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	return fmt.Errorf("the ReplicaSet did not stop pod %s within %s", podName, wait)
}
