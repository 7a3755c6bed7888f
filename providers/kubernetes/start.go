package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tendhq/tend/providers"
)

// StartReplica implements providers.Provider. It applies every object of
// the server (the rollout of a new spec starts with the first replica the
// engine starts), then waits until replica req.Replica is a ready pod of
// the Deployment's current ReplicaSet, or until the rollout fails.
func (p *Provider) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	d := req.Desired
	if d == nil || d.Server == nil {
		return providers.StartResponse{Err: errors.New("no server to start")}
	}
	inst, err := p.startReplica(ctx, d, req.Replica)
	if err != nil {
		return providers.StartResponse{Err: fmt.Errorf("start %s replica %d: %w", d.Server.Name, req.Replica, err)}
	}
	return providers.StartResponse{Instance: inst}
}

// ApplySettings implements providers.SettingsApplier: a change of the
// scaling or rollout blocks alone reaches the HorizontalPodAutoscaler, the
// PodDisruptionBudget and the Deployment's strategy. The pod template is
// unchanged, so no pod is replaced.
func (p *Provider) ApplySettings(ctx context.Context, d *providers.Desired) error {
	return p.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: 0}).Err
}

func (p *Provider) startReplica(ctx context.Context, d *providers.Desired, replica int) (providers.Instance, error) {
	managedBy := p.managedByOf(d.ManagedBy)
	if replica < 0 {
		return providers.Instance{}, fmt.Errorf("replica %d: replicas count from 0", replica)
	}
	// Everything that can be refused is refused before the cluster is
	// touched.
	b, err := newBuild(d, p.set.Namespace, managedBy)
	if err != nil {
		return providers.Instance{}, err
	}
	cs, err := p.Clientset()
	if err != nil {
		return providers.Instance{}, err
	}
	unlock := p.lock(d.Server.Name)
	defer unlock()

	if err := p.ensureNamespace(ctx, cs, managedBy); err != nil {
		return providers.Instance{}, err
	}
	live, err := p.checkOwnership(ctx, cs, b)
	if err != nil {
		return providers.Instance{}, err
	}
	canary, foreign, err := p.readCanary(ctx, cs, b)
	if err != nil {
		return providers.Instance{}, err
	}
	if canaryStep(d.Server, live, d.SpecHash, replica) {
		if foreign {
			return providers.Instance{}, fmt.Errorf("the Deployment %s already exists in namespace %s and is not the canary of server %s: a canary rollout needs that name; rename the server or the Deployment",
				canaryName(b.name), p.set.Namespace, b.name)
		}
		return p.startCanary(ctx, cs, b, live, canary, replica)
	}
	dep, err := p.applyAll(ctx, cs, b, live, replica)
	if err != nil {
		return providers.Instance{}, b.red.Error(err)
	}
	if err := p.healPod(ctx, cs, managedBy, dep, replica); err != nil {
		return providers.Instance{}, err
	}
	inst, err := p.waitReplica(ctx, cs, b, b.name, dep.Generation, replica)
	// The server's Deployment runs the spec now (a promotion, a rollback):
	// a canary is done with.
	if derr := p.dropCanary(ctx, cs, canary); derr != nil && err == nil {
		return providers.Instance{}, derr
	}
	if err != nil {
		return providers.Instance{}, err
	}
	if !inst.State.Failed() {
		p.collect(ctx, cs, managedBy, d.Server.Name)
	}
	return inst, nil
}

// ensureNamespace creates the provider's namespace when it is missing,
// labelled with tend's managed-by.
func (p *Provider) ensureNamespace(ctx context.Context, cs kubernetes.Interface, managedBy string) error {
	p.mu.Lock()
	ok := p.nsOK
	p.mu.Unlock()
	if ok {
		return nil
	}
	ns := p.set.Namespace
	_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil, apierrors.IsForbidden(err):
		// A user that may not read namespaces may still work in one.
	case apierrors.IsNotFound(err):
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   ns,
			Labels: map[string]string{providers.LabelManagedBy: labelValue(managedBy)},
		}}, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return p.apiErr("create namespace "+ns, err)
		}
	default:
		return p.apiErr("read namespace "+ns, err)
	}
	p.mu.Lock()
	p.nsOK = true
	p.mu.Unlock()
	return nil
}

// liveObjects is what exists of a server before an apply.
type liveObjects struct {
	deployment        *appsv1.Deployment
	service, hpa, pdb bool
}

// checkOwnership reads the objects tend is about to apply and refuses
// when one of them exists but is not this tend's: server-side apply with
// force would take it over.
func (p *Provider) checkOwnership(ctx context.Context, cs kubernetes.Interface, b *build) (*liveObjects, error) {
	ns, name := p.set.Namespace, b.name
	live := &liveObjects{}
	check := func(kind, name string, obj metav1.Object, err error) (bool, error) {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, p.apiErr("read "+kind+" "+name, err)
		}
		om := &metav1.ObjectMeta{Labels: obj.GetLabels(), Annotations: obj.GetAnnotations()}
		if !owned(om.Labels, om.Annotations, b.managedBy) {
			owner := managedByOfObject(om.Labels, om.Annotations)
			if owner == "" {
				owner = "no tend"
			} else {
				owner = "tend " + owner
			}
			return false, fmt.Errorf("%s %s already exists in namespace %s and is not this tend's (managed by %s): tend does not change it; rename the server or remove the %s", kind, name, ns, owner, kind)
		}
		return true, nil
	}
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if ok, err := check("Deployment", name, dep, err); err != nil {
		return nil, err
	} else if ok {
		live.deployment = dep
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if live.service, err = check("Service", name, svc, err); err != nil {
		return nil, err
	}
	hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
	if live.hpa, err = check("HorizontalPodAutoscaler", name, hpa, err); err != nil {
		return nil, err
	}
	pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
	if live.pdb, err = check("PodDisruptionBudget", name, pdb, err); err != nil {
		return nil, err
	}
	if b.configMap != nil {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, *b.configMap.Name, metav1.GetOptions{})
		if _, err := check("ConfigMap", *b.configMap.Name, cm, err); err != nil {
			return nil, err
		}
	}
	if b.secret != nil {
		sec, err := cs.CoreV1().Secrets(ns).Get(ctx, *b.secret.Name, metav1.GetOptions{})
		if _, err := check("Secret", *b.secret.Name, sec, err); err != nil {
			return nil, err
		}
	}
	for _, c := range b.pvcs {
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, *c.Name, metav1.GetOptions{})
		if _, err := check("PersistentVolumeClaim", *c.Name, pvc, err); err != nil {
			return nil, err
		}
	}
	return live, nil
}

var applyOpts = metav1.ApplyOptions{FieldManager: FieldManager, Force: true}

// applyAll applies the server's objects, the ones its pods read first,
// and removes the Service, autoscaler and disruption budget the spec no
// longer has.
func (p *Provider) applyAll(ctx context.Context, cs kubernetes.Interface, b *build, live *liveObjects, replica int) (*appsv1.Deployment, error) {
	ns := p.set.Namespace
	s := b.d.Server
	for _, c := range b.pvcs {
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Apply(ctx, c, applyOpts); err != nil {
			return nil, p.apiErr("apply PersistentVolumeClaim "+*c.Name, err)
		}
	}
	if err := p.applyFiles(ctx, cs, b); err != nil {
		return nil, err
	}
	if b.service != nil {
		svc, err := cs.CoreV1().Services(ns).Apply(ctx, b.service, applyOpts)
		if err != nil {
			return nil, p.apiErr("apply Service "+b.name, err)
		}
		if err := p.record(ctx, "Service", svc.ObjectMeta, func(data []byte) error {
			_, err := cs.CoreV1().Services(ns).Patch(ctx, b.name, types.MergePatchType, data, patchOpts)
			return err
		}); err != nil {
			return nil, err
		}
	} else if live.service {
		if err := p.deleteOwned(ctx, "Service", b.name, func(o metav1.DeleteOptions) error {
			return cs.CoreV1().Services(ns).Delete(ctx, b.name, o)
		}); err != nil {
			return nil, err
		}
	}

	// The replica count: the spec's (and at least this replica's), but with
	// an autoscaler, the one the autoscaler set, applied only if the
	// Deployment did not change since it was read.
	want := max(s.Replicas, replica+1)
	var dep *appsv1.Deployment
	for attempt := 0; ; attempt++ {
		cfg := b.deployment(int32(want), want)
		if b.hpa != nil && live.deployment != nil {
			cur := 1
			if live.deployment.Spec.Replicas != nil {
				cur = int(*live.deployment.Spec.Replicas)
			}
			cfg = b.deployment(int32(max(cur, replica+1)), s.Replicas)
			cfg.WithResourceVersion(live.deployment.ResourceVersion)
		}
		var err error
		dep, err = cs.AppsV1().Deployments(ns).Apply(ctx, cfg, applyOpts)
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) || attempt >= 5 || live.deployment == nil {
			return nil, p.apiErr("apply Deployment "+b.name, err)
		}
		// The autoscaler scaled it since: read it again.
		if live.deployment, err = cs.AppsV1().Deployments(ns).Get(ctx, b.name, metav1.GetOptions{}); err != nil {
			return nil, p.apiErr("read Deployment "+b.name, err)
		}
	}
	if err := p.record(ctx, "Deployment", dep.ObjectMeta, func(data []byte) error {
		_, err := cs.AppsV1().Deployments(ns).Patch(ctx, b.name, types.MergePatchType, data, patchOpts)
		return err
	}); err != nil {
		return nil, err
	}

	if b.hpa != nil {
		hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Apply(ctx, b.hpa, applyOpts)
		if err != nil {
			return nil, p.apiErr("apply HorizontalPodAutoscaler "+b.name, err)
		}
		if err := p.record(ctx, "HorizontalPodAutoscaler", hpa.ObjectMeta, func(data []byte) error {
			_, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Patch(ctx, b.name, types.MergePatchType, data, patchOpts)
			return err
		}); err != nil {
			return nil, err
		}
	} else if live.hpa {
		if err := p.deleteOwned(ctx, "HorizontalPodAutoscaler", b.name, func(o metav1.DeleteOptions) error {
			return cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Delete(ctx, b.name, o)
		}); err != nil {
			return nil, err
		}
	}
	if b.pdb != nil {
		pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Apply(ctx, b.pdb, applyOpts)
		if err != nil {
			return nil, p.apiErr("apply PodDisruptionBudget "+b.name, err)
		}
		if err := p.record(ctx, "PodDisruptionBudget", pdb.ObjectMeta, func(data []byte) error {
			_, err := cs.PolicyV1().PodDisruptionBudgets(ns).Patch(ctx, b.name, types.MergePatchType, data, patchOpts)
			return err
		}); err != nil {
			return nil, err
		}
	} else if live.pdb {
		if err := p.deleteOwned(ctx, "PodDisruptionBudget", b.name, func(o metav1.DeleteOptions) error {
			return cs.PolicyV1().PodDisruptionBudgets(ns).Delete(ctx, b.name, o)
		}); err != nil {
			return nil, err
		}
	}
	return dep, nil
}

// applyFiles applies the server's Secret and ConfigMap.
func (p *Provider) applyFiles(ctx context.Context, cs kubernetes.Interface, b *build) error {
	ns := p.set.Namespace
	if b.secret != nil {
		name := *b.secret.Name
		sec, err := cs.CoreV1().Secrets(ns).Apply(ctx, b.secret, applyOpts)
		if err != nil {
			return p.apiErr("apply Secret "+name, err)
		}
		if err := p.record(ctx, "Secret", sec.ObjectMeta, func(data []byte) error {
			_, err := cs.CoreV1().Secrets(ns).Patch(ctx, name, types.MergePatchType, data, patchOpts)
			return err
		}); err != nil {
			return err
		}
	}
	if b.configMap != nil {
		name := *b.configMap.Name
		cm, err := cs.CoreV1().ConfigMaps(ns).Apply(ctx, b.configMap, applyOpts)
		if err != nil {
			return p.apiErr("apply ConfigMap "+name, err)
		}
		if err := p.record(ctx, "ConfigMap", cm.ObjectMeta, func(data []byte) error {
			_, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.MergePatchType, data, patchOpts)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

var patchOpts = metav1.PatchOptions{FieldManager: FieldManager}

// record stores the digest of the fields tend's apply owns in the
// object's tend.dev/fields annotation, when it changed.
func (p *Provider) record(ctx context.Context, kind string, om metav1.ObjectMeta, patch func([]byte) error) error {
	dg := fieldsDigest(kind, om.ManagedFields)
	if dg == "" || om.Annotations[AnnotationFields] == dg {
		return nil
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationFields: dg}}})
	if err != nil {
		return err
	}
	if err := patch(data); err != nil {
		return p.apiErr("record the fields tend owns in "+kind+" "+om.Name, err)
	}
	return nil
}

// deleteOwned deletes an object checked to be tend's.
func (p *Provider) deleteOwned(ctx context.Context, kind, name string, del func(metav1.DeleteOptions) error) error {
	bg := metav1.DeletePropagationBackground
	if err := del(metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return p.apiErr("delete "+kind+" "+name, err)
	}
	return nil
}

// healPod deletes the pod of the replica when it was changed by hand (its
// ReplicaSet makes a new one from the template).
func (p *Provider) healPod(ctx context.Context, cs kubernetes.Interface, managedBy string, dep *appsv1.Deployment, replica int) error {
	w, err := p.list(ctx, cs, ownerSelector(managedBy, dep.Name), false)
	if err != nil {
		return err
	}
	for i := range w.deployments {
		live := &w.deployments[i]
		if live.UID != dep.UID || live.Status.ObservedGeneration < dep.Generation {
			continue
		}
		r := readRollout(w, live)
		if replica >= len(r.pods) || !r.isCurrent(&r.pods[replica]) {
			return nil
		}
		pod := &r.pods[replica]
		if len(podDrift(pod, live)) == 0 {
			return nil
		}
		uid := pod.UID
		err := cs.CoreV1().Pods(p.set.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return p.apiErr("delete pod "+pod.Name+", which was changed by hand", err)
		}
	}
	return nil
}

// pollEvery is how often a rollout is read while tend waits for it.
const pollEvery = 250 * time.Millisecond

// waitReplica waits until replica i is a ready pod of the current
// ReplicaSet, or the rollout failed (then the instance says why, in a
// failed state), or the context ends.
func (p *Provider) waitReplica(ctx context.Context, cs kubernetes.Interface, b *build, name string, generation int64, replica int) (providers.Instance, error) {
	deadline := b.d.Server.Rollout.ProgressDeadline
	if deadline <= 0 {
		deadline = 10 * time.Minute
	}
	// The Deployment controller reports a rollout without progress after
	// the deadline; this bound is for a cluster whose controller is away.
	giveUp := time.Now().Add(2*deadline + 30*time.Second)
	var last providers.Instance
	for {
		w, err := p.list(ctx, cs, ownerSelector(b.managedBy, b.name), false)
		if err != nil {
			return providers.Instance{}, err
		}
		var dep *appsv1.Deployment
		for i := range w.deployments {
			if w.deployments[i].Name == name {
				dep = &w.deployments[i]
			}
		}
		if dep == nil {
			return providers.Instance{}, fmt.Errorf("the Deployment %s was deleted while it rolled out", name)
		}
		if dep.Status.ObservedGeneration >= generation {
			insts := p.instances(w, dep, false)
			r := readRollout(w, dep)
			if replica < len(insts) {
				inst := insts[replica]
				last = inst
				current := replica < len(r.pods) && r.isCurrent(&r.pods[replica])
				switch {
				case current && inst.State == providers.StateRunning && len(inst.Drift) == 0:
					return inst, nil
				case inst.State.Failed() && (current || replica >= len(r.pods)):
					return inst, nil
				case r.failure != "":
					inst.State, inst.Message = providers.StateMissing, r.failure
					return inst, nil
				}
			}
		}
		if time.Now().After(giveUp) {
			last.State = providers.StateMissing
			last.Message = fmt.Sprintf("replica %d is not a ready pod of the new spec %s after the progress deadline: %s", replica, deadline, last.Message)
			return last, nil
		}
		select {
		case <-ctx.Done():
			if last.ID == "" {
				return providers.Instance{}, ctx.Err()
			}
			return providers.Instance{}, fmt.Errorf("while replica %d was %s (%s): %w", replica, last.State, orNone(last.Message, last.Drift), ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

func orNone(msg string, drift []string) string {
	if len(drift) > 0 {
		msg = strings.TrimPrefix(msg+"; drift: "+strings.Join(drift, "; "), "; ")
	}
	if msg == "" {
		return "no message"
	}
	return msg
}

// collect deletes the server's ConfigMaps and Secrets that no live
// ReplicaSet and not the Deployment reads any more (each spec has its own,
// so that a rollout's old pods keep theirs). A failure is left for the
// next start to collect.
func (p *Provider) collect(ctx context.Context, cs kubernetes.Interface, managedBy, server string) {
	ns := p.set.Namespace
	sel := metav1.ListOptions{LabelSelector: ownerSelector(managedBy, server)}
	used := map[string]bool{}
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, server, metav1.GetOptions{})
	if err != nil {
		return
	}
	refs(&dep.Spec.Template.Spec, used)
	rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, sel)
	if err != nil {
		return
	}
	for i := range rss.Items {
		rs := &rss.Items[i]
		if (rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0) || rs.Status.Replicas > 0 {
			refs(&rs.Spec.Template.Spec, used)
		}
	}
	bg := metav1.DeletePropagationBackground
	if cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel); err == nil {
		for _, cm := range cms.Items {
			if !used["cm/"+cm.Name] && owned(cm.Labels, cm.Annotations, managedBy) {
				_ = cs.CoreV1().ConfigMaps(ns).Delete(ctx, cm.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			}
		}
	}
	if secs, err := cs.CoreV1().Secrets(ns).List(ctx, sel); err == nil {
		for _, s := range secs.Items {
			if !used["secret/"+s.Name] && owned(s.Labels, s.Annotations, managedBy) {
				_ = cs.CoreV1().Secrets(ns).Delete(ctx, s.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			}
		}
	}
}

// refs adds the ConfigMaps and Secrets a pod spec reads to used.
func refs(ps *corev1.PodSpec, used map[string]bool) {
	for _, v := range ps.Volumes {
		if v.ConfigMap != nil {
			used["cm/"+v.ConfigMap.Name] = true
		}
		if v.Secret != nil {
			used["secret/"+v.Secret.SecretName] = true
		}
	}
	for _, c := range ps.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				used["secret/"+e.ValueFrom.SecretKeyRef.Name] = true
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				used["cm/"+e.ValueFrom.ConfigMapKeyRef.Name] = true
			}
		}
	}
}
