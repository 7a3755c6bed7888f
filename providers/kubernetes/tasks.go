package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tendhq/tend/providers"
)

// ErrNoPodExec is the answer to an exec in a running replica: this build
// of the provider carries no pod exec (its streaming protocols need
// modules tend does not ship). Tasks without a replica run as Jobs.
var ErrNoPodExec = errors.New("the kubernetes provider cannot exec in a running pod: it runs one-off tasks (hooks, migrations) as Jobs, without a replica; use http, tcp or mcp checks rather than exec checks")

// simulatedNode is the annotation kwok puts on the nodes it simulates:
// they have no kubelet to read a pod's logs from.
const simulatedNode = "kwok.x-k8s.io/node"

// Exec implements providers.Execer. Without an instance it runs the
// command as a Job from the server's image, with its environment, config
// files and volumes (hooks, migrations), waits for it to finish, copies
// its output (stdout and stderr merged, as Kubernetes keeps them) to
// req.Stdout, and deletes it. With an instance it returns ErrNoPodExec.
func (p *Provider) Exec(ctx context.Context, req providers.ExecRequest) providers.ExecResponse {
	if len(req.Command) == 0 {
		return providers.ExecResponse{Err: errors.New("exec: no command")}
	}
	if req.Instance != nil {
		return providers.ExecResponse{ExitCode: -1, Err: ErrNoPodExec}
	}
	if req.Desired == nil || req.Desired.Server == nil {
		return providers.ExecResponse{Err: errors.New("exec: no server and no replica to run the task for")}
	}
	stdout, stderr := req.Stdout, req.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	code, err := p.task(ctx, req.Desired, req.Command, stdout, stderr)
	return providers.ExecResponse{ExitCode: code, Err: err}
}

func (p *Provider) task(ctx context.Context, d *providers.Desired, cmd []string, stdout, stderr io.Writer) (int, error) {
	managedBy := p.managedByOf(d.ManagedBy)
	b, err := newBuild(d, p.set.Namespace, managedBy)
	if err != nil {
		return -1, err
	}
	cs, err := p.Clientset()
	if err != nil {
		return -1, err
	}
	unlock := p.lock(d.Server.Name)
	defer unlock()
	if err := p.ensureNamespace(ctx, cs, managedBy); err != nil {
		return -1, err
	}
	if _, err := p.checkOwnership(ctx, cs, b); err != nil {
		return -1, err
	}
	for _, c := range b.pvcs {
		if _, err := cs.CoreV1().PersistentVolumeClaims(p.set.Namespace).Apply(ctx, c, applyOpts); err != nil {
			return -1, p.apiErr("apply PersistentVolumeClaim "+*c.Name, err)
		}
	}
	if err := p.applyFiles(ctx, cs, b); err != nil {
		return -1, b.red.Error(err)
	}
	job := b.job(ctx, cmd)
	name := *job.Name
	ns := p.set.Namespace
	if _, err := cs.BatchV1().Jobs(ns).Apply(ctx, job, applyOpts); err != nil {
		return -1, b.red.Error(p.apiErr("create Job "+name, err))
	}
	defer func() {
		// A fresh context: the caller's may be what ended.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bg := metav1.DeletePropagationBackground
		_ = cs.BatchV1().Jobs(ns).Delete(dctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	}()

	var done *batchv1.Job
	for done == nil {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, p.apiErr("read Job "+name, err)
		}
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
				done = j
			}
		}
		if done != nil {
			break
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	pod, err := p.taskPod(ctx, cs, name)
	if err != nil {
		return -1, err
	}
	code := -1
	if pod != nil {
		for _, c := range pod.Status.ContainerStatuses {
			if t := c.State.Terminated; t != nil && c.Name == containerName {
				code = int(t.ExitCode)
			}
		}
	}
	if code < 0 {
		for _, c := range done.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return -1, fmt.Errorf("the task's Job %s failed before its command ended (%s: %s)", name, c.Reason, c.Message)
			}
		}
		code = 0 // complete, without a container status to say more
	}
	if pod != nil {
		if err := p.copyLogs(ctx, cs, pod, stdout); err != nil {
			fmt.Fprintf(stderr, "tend: the output of the task's pod %s could not be read: %v\n", pod.Name, err)
		}
	}
	return code, nil
}

// job is a one-off task of the server: its pod, with cmd as the command.
func (b *build) job(ctx context.Context, cmd []string) *batchv1ac.JobApplyConfiguration {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	base := b.name
	if len(base) > 40 {
		base = base[:40]
	}
	name := base + "-task-" + hex.EncodeToString(suffix)
	c := *b.container
	c.Ports = nil
	c.Args = nil
	c.Command = nil
	esc := make([]string, len(cmd))
	for i, a := range cmd {
		esc[i] = escape(a)
	}
	c.WithCommand(esc...)
	podLabels := map[string]string{
		providers.LabelManagedBy: b.labels[providers.LabelManagedBy],
		providers.LabelServer:    b.name,
		LabelRole:                roleTask,
	}
	ps := corev1ac.PodSpec().WithRestartPolicy(corev1.RestartPolicyNever).WithContainers(&c)
	if len(b.volumes) > 0 {
		ps.WithVolumes(b.volumes...)
	}
	spec := batchv1ac.JobSpec().
		WithBackoffLimit(0).
		WithTTLSecondsAfterFinished(600).
		WithTemplate(corev1ac.PodTemplateSpec().
			WithLabels(podLabels).
			WithAnnotations(map[string]string{providers.LabelManagedBy: b.managedBy}).
			WithSpec(ps))
	if dl, ok := ctx.Deadline(); ok {
		spec.WithActiveDeadlineSeconds(int64(max(1, math.Ceil(time.Until(dl).Seconds()))))
	}
	labels, ann := b.meta(nil)
	labels[LabelRole] = roleTask
	labels[LabelTask] = "true"
	return batchv1ac.Job(name, b.ns).WithLabels(labels).WithAnnotations(ann).WithSpec(spec)
}

// taskPod returns the newest pod of a task's Job, or nil.
func (p *Provider) taskPod(ctx context.Context, cs kubernetes.Interface, job string) (*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(p.set.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		return nil, p.apiErr("list the pods of Job "+job, err)
	}
	var out *corev1.Pod
	for i := range pods.Items {
		if out == nil || out.CreationTimestamp.Before(&pods.Items[i].CreationTimestamp) {
			out = &pods.Items[i]
		}
	}
	return out, nil
}

// copyLogs copies a pod's log to w.
func (p *Provider) copyLogs(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, w io.Writer) error {
	if err := p.logsServed(ctx, cs, pod); err != nil {
		return err
	}
	rc, err := cs.CoreV1().Pods(p.set.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: containerName}).Stream(ctx)
	if err != nil {
		return p.apiErr("logs of pod "+pod.Name, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// logsServed says whether the pod's node can serve its logs: a node that
// kwok simulates has no kubelet to ask.
func (p *Provider) logsServed(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod) error {
	if pod.Spec.NodeName == "" {
		return fmt.Errorf("pod %s was never scheduled", pod.Name)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil // may not read nodes: ask for the logs all the same
		}
		return p.apiErr("read node "+pod.Spec.NodeName, err)
	}
	if _, sim := node.Annotations[simulatedNode]; sim {
		return fmt.Errorf("node %s is simulated (kwok) and has no kubelet to serve logs", node.Name)
	}
	return nil
}

// Logs implements providers.Logger: the last lines of the replica's pod.
func (p *Provider) Logs(ctx context.Context, inst providers.Instance, lines int) ([]byte, error) {
	cs, err := p.Clientset()
	if err != nil {
		return nil, err
	}
	pod, err := cs.CoreV1().Pods(p.set.Namespace).Get(ctx, inst.ID, metav1.GetOptions{})
	if err != nil {
		return nil, p.apiErr(fmt.Sprintf("%s replica %d has no pod to read logs from (%s)", inst.Server, inst.Replica, inst.ID), err)
	}
	if err := p.logsServed(ctx, cs, pod); err != nil {
		return nil, err
	}
	opts := &corev1.PodLogOptions{Container: containerName}
	if lines > 0 {
		n := int64(lines)
		opts.TailLines = &n
	}
	rc, err := cs.CoreV1().Pods(p.set.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		return nil, p.apiErr("logs of pod "+pod.Name, err)
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

var _ providers.LogStreamer = (*Provider)(nil)

// StreamLogs implements providers.LogStreamer through the pod's log: the
// last req.Tail lines, since req.Since, and with req.Follow what the pod
// writes next, until ctx ends or the container stops.
func (p *Provider) StreamLogs(ctx context.Context, req providers.LogRequest) error {
	inst := req.Instance
	cs, err := p.Clientset()
	if err != nil {
		return err
	}
	pod, err := cs.CoreV1().Pods(p.set.Namespace).Get(ctx, inst.ID, metav1.GetOptions{})
	if err != nil {
		return p.apiErr(fmt.Sprintf("%s replica %d has no pod to read logs from (%s)", inst.Server, inst.Replica, inst.ID), err)
	}
	if err := p.logsServed(ctx, cs, pod); err != nil {
		return err
	}
	opts := &corev1.PodLogOptions{Container: containerName, Follow: req.Follow}
	if req.Tail > 0 {
		n := int64(req.Tail)
		opts.TailLines = &n
	}
	if !req.Since.IsZero() {
		t := metav1.NewTime(req.Since)
		opts.SinceTime = &t
	}
	rc, err := cs.CoreV1().Pods(p.set.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		return p.apiErr("logs of pod "+pod.Name, err)
	}
	defer rc.Close()
	if _, err := io.Copy(req.Out, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of pod %s: %w", pod.Name, err)
	}
	return nil
}
