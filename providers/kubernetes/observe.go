package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tendhq/tend/providers"
)

// world is what one bulk observation read: every object of one tend
// identity (of one server, when asked) in the namespace.
type world struct {
	deployments []appsv1.Deployment
	replicaSets []appsv1.ReplicaSet
	pods        []corev1.Pod
	// The rest only for drift, by name.
	services, configMaps, secrets, hpas, pdbs map[string]metav1.ObjectMeta
}

// list reads the world with one list call per kind, concurrently. With
// full false it reads only Deployments, ReplicaSets and pods (a rollout's
// progress).
func (p *Provider) list(ctx context.Context, cs kubernetes.Interface, selector string, full bool) (*world, error) {
	ns := p.set.Namespace
	opts := metav1.ListOptions{LabelSelector: selector}
	w := &world{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	run := func(what string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = p.apiErr("list "+what+" in namespace "+ns, err)
				}
				mu.Unlock()
			}
		})
	}
	metas := func(items int, get func(i int) metav1.ObjectMeta) map[string]metav1.ObjectMeta {
		out := make(map[string]metav1.ObjectMeta, items)
		for i := range items {
			m := get(i)
			out[m.Name] = m
		}
		return out
	}
	run("Deployments", func() error {
		l, err := cs.AppsV1().Deployments(ns).List(ctx, opts)
		if err == nil {
			w.deployments = l.Items
		}
		return err
	})
	run("ReplicaSets", func() error {
		l, err := cs.AppsV1().ReplicaSets(ns).List(ctx, opts)
		if err == nil {
			w.replicaSets = l.Items
		}
		return err
	})
	run("pods", func() error {
		l, err := cs.CoreV1().Pods(ns).List(ctx, opts)
		if err == nil {
			w.pods = l.Items
		}
		return err
	})
	if full {
		run("Services", func() error {
			l, err := cs.CoreV1().Services(ns).List(ctx, opts)
			if err == nil {
				w.services = metas(len(l.Items), func(i int) metav1.ObjectMeta { return l.Items[i].ObjectMeta })
			}
			return err
		})
		run("ConfigMaps", func() error {
			l, err := cs.CoreV1().ConfigMaps(ns).List(ctx, opts)
			if err == nil {
				w.configMaps = metas(len(l.Items), func(i int) metav1.ObjectMeta { return l.Items[i].ObjectMeta })
			}
			return err
		})
		run("Secrets", func() error {
			l, err := cs.CoreV1().Secrets(ns).List(ctx, opts)
			if err == nil {
				w.secrets = metas(len(l.Items), func(i int) metav1.ObjectMeta { return l.Items[i].ObjectMeta })
			}
			return err
		})
		run("HorizontalPodAutoscalers", func() error {
			l, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, opts)
			if err == nil {
				w.hpas = metas(len(l.Items), func(i int) metav1.ObjectMeta { return l.Items[i].ObjectMeta })
			}
			return err
		})
		run("PodDisruptionBudgets", func() error {
			l, err := cs.PolicyV1().PodDisruptionBudgets(ns).List(ctx, opts)
			if err == nil {
				w.pdbs = metas(len(l.Items), func(i int) metav1.ObjectMeta { return l.Items[i].ObjectMeta })
			}
			return err
		})
	}
	wg.Wait()
	return w, firstErr
}

// Observe implements providers.Provider: one list call per kind, in
// parallel, then the replicas of every Deployment as instances.
func (p *Provider) Observe(ctx context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	managedBy := p.managedByOf(req.ManagedBy)
	cs, err := p.Clientset()
	if err != nil {
		return providers.ObserveResponse{Err: err}
	}
	w, err := p.list(ctx, cs, ownerSelector(managedBy, req.Server), true)
	if err != nil {
		return providers.ObserveResponse{Err: err}
	}
	var out []providers.Instance
	for i := range w.deployments {
		dep := &w.deployments[i]
		if dep.DeletionTimestamp != nil || dep.Labels[LabelRole] != roleServer || !owned(dep.Labels, dep.Annotations, managedBy) {
			continue
		}
		insts := p.instances(w, dep, true)
		if c := canaryOf(w, dep, managedBy); c != nil {
			insts = withCanary(p.instances(w, c, false), insts, dep)
		}
		out = append(out, insts...)
	}
	providers.SortInstances(out)
	return providers.ObserveResponse{Instances: out}
}

// rollout is a Deployment's pods, read for its replicas.
type rollout struct {
	current  string       // the pod-template-hash of the current ReplicaSet ("" until the controller saw the spec)
	pods     []corev1.Pod // live pods, current ReplicaSet first, then oldest first
	replicas int          // spec.replicas
	failure  string       // why the rollout cannot go on, if it cannot
}

func readRollout(w *world, dep *appsv1.Deployment) rollout {
	r := rollout{replicas: 1}
	if dep.Spec.Replicas != nil {
		r.replicas = int(*dep.Spec.Replicas)
	}
	observed := dep.Status.ObservedGeneration >= dep.Generation
	owners := map[types.UID]bool{}
	for i := range w.replicaSets {
		rs := &w.replicaSets[i]
		if !ownedBy(rs.OwnerReferences, dep.UID) {
			continue
		}
		owners[rs.UID] = true
		if observed && rs.Annotations[revisionAnnotation] != "" && rs.Annotations[revisionAnnotation] == dep.Annotations[revisionAnnotation] {
			r.current = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	for _, pod := range w.pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, o := range pod.OwnerReferences {
			if o.Controller != nil && *o.Controller && owners[o.UID] {
				r.pods = append(r.pods, pod)
				break
			}
		}
	}
	sort.SliceStable(r.pods, func(i, j int) bool {
		a, b := &r.pods[i], &r.pods[j]
		ac, bc := r.isCurrent(a), r.isCurrent(b)
		if ac != bc {
			return ac
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	if observed {
		for _, c := range dep.Status.Conditions {
			switch {
			case c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded":
				secs := int32(600)
				if dep.Spec.ProgressDeadlineSeconds != nil {
					secs = *dep.Spec.ProgressDeadlineSeconds
				}
				r.failure = fmt.Sprintf("the rollout made no progress within its progress deadline of %ds (ProgressDeadlineExceeded: %s)", secs, c.Message)
			case c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue:
				r.failure = fmt.Sprintf("the Deployment cannot create its pods (%s: %s)", c.Reason, c.Message)
			}
		}
	}
	return r
}

// revisionAnnotation is the Deployment controller's revision of a
// Deployment and of each of its ReplicaSets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

func (r rollout) isCurrent(pod *corev1.Pod) bool {
	return r.current != "" && pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == r.current
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, o := range refs {
		if o.UID == uid && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// instances maps a Deployment to tend's replicas. A Deployment's pods have
// no ordinal, so replica i is the i-th live pod in a stable order (the
// current ReplicaSet's first, then the oldest first), for i below the
// Deployment's replica count; a replica whose pod is not created yet is
// starting. With an autoscaler, the count is at most the replicas tend
// declared: the pods the autoscaler adds are its own, not tend's to stop.
func (p *Provider) instances(w *world, dep *appsv1.Deployment, withDrift bool) []providers.Instance {
	ann := dep.Annotations
	id := providers.Identity{
		ManagedBy: managedByOfObject(dep.Labels, ann),
		Server:    dep.Labels[providers.LabelServer],
		SpecHash:  ann[providers.LabelSpecHash],
		Revision:  ann[providers.LabelRevision],
		Version:   ann[providers.LabelVersion],
	}
	ports := parsePorts(ann[AnnotationPorts])
	r := readRollout(w, dep)
	_, hasHPA := w.hpas[dep.Name]
	declared, _ := strconv.Atoi(ann[AnnotationReplicas])
	n := r.replicas
	if hasHPA && declared > 0 && declared < n {
		n = declared
	}

	var shared []string
	if withDrift {
		shared = p.serverDrift(w, dep, hasHPA, declared)
	}
	if n == 0 {
		inst := providers.Instance{Identity: id, ID: "deployment/" + dep.Name, Provider: p.key, Ports: ports,
			State: providers.StateExited, Message: "the Deployment is scaled to 0 replicas", Drift: shared,
			StartedAt: dep.CreationTimestamp.Time}
		return []providers.Instance{inst}
	}
	out := make([]providers.Instance, 0, n)
	for i := range n {
		inst := providers.Instance{Identity: id, Provider: p.key, Ports: copyPorts(ports)}
		inst.Replica = i
		if i >= len(r.pods) {
			inst.ID = fmt.Sprintf("deployment/%s#%d", dep.Name, i)
			inst.State = providers.StateStarting
			inst.Message = fmt.Sprintf("waiting for the Deployment to create its pod (%d of %d exist)", len(r.pods), r.replicas)
			if r.failure != "" {
				inst.State, inst.Message = providers.StateMissing, r.failure
			}
			inst.Drift = append([]string(nil), shared...)
			out = append(out, inst)
			continue
		}
		pod := &r.pods[i]
		inst.ID = pod.Name
		inst.Host = pod.Status.PodIP
		inst.SpecHash = pod.Labels[providers.LabelSpecHash]
		if v, ok := pod.Annotations[providers.LabelVersion]; ok {
			inst.Version = v
		}
		if inst.SpecHash != id.SpecHash {
			inst.Revision = "" // an older spec's pod: its revision is not recorded
		}
		if pod.Status.StartTime != nil {
			inst.StartedAt = pod.Status.StartTime.Time
		} else {
			inst.StartedAt = pod.CreationTimestamp.Time
		}
		inst.State, inst.Message, inst.Restarts, inst.ExitCode = podState(pod)
		if r.isCurrent(pod) && r.failure != "" && inst.State != providers.StateRunning && !inst.State.Failed() {
			inst.State, inst.Message = providers.StateMissing, r.failure+"; pod "+pod.Name+": "+inst.Message
		}
		inst.Drift = append([]string(nil), shared...)
		if r.isCurrent(pod) {
			inst.Drift = append(inst.Drift, podDrift(pod, dep)...)
		}
		out = append(out, inst)
	}
	return out
}

// withCanary numbers a canary rollout's replicas: the canary's pods first,
// then the server Deployment's, up to the replicas tend declared.
func withCanary(canary, server []providers.Instance, dep *appsv1.Deployment) []providers.Instance {
	declared, _ := strconv.Atoi(dep.Annotations[AnnotationReplicas])
	k := len(canary)
	if k == 1 && strings.HasPrefix(canary[0].ID, "deployment/") && canary[0].State == providers.StateExited {
		k, canary = 0, nil // scaled to 0: no replica
	}
	out := append([]providers.Instance(nil), canary...)
	for _, in := range server {
		if in.State == providers.StateExited && strings.HasPrefix(in.ID, "deployment/") {
			continue // the server's Deployment scaled to 0 by the canary
		}
		in.Replica += k
		out = append(out, in)
	}
	if declared > 0 {
		kept := out[:0]
		for _, in := range out {
			if in.Replica < declared {
				kept = append(kept, in)
			}
		}
		out = kept
	}
	return out
}

// serverDrift is the drift every replica of a server shares: of its
// Deployment and the objects beside it.
func (p *Provider) serverDrift(w *world, dep *appsv1.Deployment, hasHPA bool, declared int) []string {
	var out []string
	out = append(out, objectDrift("Deployment", dep.Name, dep.ObjectMeta)...)
	want := declared
	if c := canaryOf(w, dep, managedByOfObject(dep.Labels, dep.Annotations)); c != nil && c.Spec.Replicas != nil {
		want = max(0, declared-int(*c.Spec.Replicas)) // a canary rollout's share
	}
	if !hasHPA && dep.Spec.Replicas != nil && declared > 0 && int(*dep.Spec.Replicas) != want {
		out = append(out, fmt.Sprintf("Deployment %s: replicas is %d, tend set %d", dep.Name, *dep.Spec.Replicas, want))
	}
	hash := dep.Annotations[providers.LabelSpecHash]
	for _, o := range []struct {
		kind string
		m    map[string]metav1.ObjectMeta
		name string
	}{
		{"Service", w.services, dep.Name},
		{"HorizontalPodAutoscaler", w.hpas, dep.Name},
		{"PodDisruptionBudget", w.pdbs, dep.Name},
		{"ConfigMap", w.configMaps, configMapName(dep.Name, hash)},
		{"Secret", w.secrets, secretName(dep.Name, hash)},
	} {
		if m, ok := o.m[o.name]; ok {
			out = append(out, objectDrift(o.kind, o.name, m)...)
		}
	}
	return out
}

// podDrift compares what a person can change on a live pod with its
// Deployment's template: the images (kubectl set image pod/...) and an
// active deadline.
func podDrift(pod *corev1.Pod, dep *appsv1.Deployment) []string {
	var out []string
	want := map[string]string{}
	for _, c := range dep.Spec.Template.Spec.Containers {
		want[c.Name] = c.Image
	}
	for _, c := range pod.Spec.Containers {
		if img, ok := want[c.Name]; ok && img != c.Image {
			out = append(out, fmt.Sprintf("pod %s: container %s runs image %s, the Deployment's is %s", pod.Name, c.Name, c.Image, img))
		}
	}
	if pod.Spec.ActiveDeadlineSeconds != nil && dep.Spec.Template.Spec.ActiveDeadlineSeconds == nil {
		out = append(out, fmt.Sprintf("pod %s: an active deadline of %ds was set by hand", pod.Name, *pod.Spec.ActiveDeadlineSeconds))
	}
	return out
}

// podState reads a pod's state, message, restarts and last exit code.
func podState(pod *corev1.Pod) (providers.State, string, int, int) {
	restarts, exit := 0, 0
	for _, cs := range pod.Status.ContainerStatuses {
		restarts += int(cs.RestartCount)
		if t := cs.LastTerminationState.Terminated; t != nil {
			exit = int(t.ExitCode)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if wt := cs.State.Waiting; wt != nil {
			switch wt.Reason {
			case "CrashLoopBackOff":
				msg := fmt.Sprintf("container %s is crash-looping (%d restarts, last exit code %d)", cs.Name, cs.RestartCount, exit)
				if t := cs.LastTerminationState.Terminated; t != nil && t.Reason != "" {
					msg += ": " + t.Reason
				}
				return providers.StateCrashing, msg, restarts, exit
			case "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
				return providers.StateMissing, fmt.Sprintf("container %s cannot start (%s: %s)", cs.Name, wt.Reason, wt.Message), restarts, exit
			}
		}
		if t := cs.State.Terminated; t != nil {
			exit = int(t.ExitCode)
			st := providers.StateStarting
			if cs.RestartCount >= 2 {
				st = providers.StateCrashing
			}
			return st, fmt.Sprintf("container %s exited with code %d (%d restarts)", cs.Name, t.ExitCode, cs.RestartCount), restarts, exit
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return providers.StateStarting, fmt.Sprintf("pod %s is not scheduled: %s", pod.Name, c.Message), restarts, exit
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return providers.StateRunning, "", restarts, exit
		}
	}
	return providers.StateStarting, fmt.Sprintf("pod %s is %s, not ready yet", pod.Name, strings.ToLower(string(pod.Status.Phase))), restarts, exit
}

func parsePorts(s string) map[string]int {
	out := map[string]int{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if n, err := strconv.Atoi(v); ok && err == nil {
			out[k] = n
		}
	}
	return out
}

func copyPorts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
