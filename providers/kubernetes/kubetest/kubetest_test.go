package kubetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tendhq/tend/providers/kubernetes/kubetest"
)

func TestCluster(t *testing.T) {
	c := kubetest.Start(t)
	cs := c.Clientset
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The kubeconfig file works on its own, with context tend-test.
	kc, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	if kc.CurrentContext != kubetest.ContextName {
		t.Fatalf("kubeconfig: current context %q", kc.CurrentContext)
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	fromFile, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := fromFile.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
	if err != nil || len(nodes.Items) != len(c.Nodes) {
		t.Fatalf("nodes through the kubeconfig: %v, %v", nodes, err)
	}
	if len(c.Nodes) == 0 {
		t.Fatal("no nodes")
	}

	t.Run("DeploymentAvailable", func(t *testing.T) {
		start := time.Now()
		if _, err := cs.AppsV1().Deployments("default").Create(ctx, deployment("web", 2, nil, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitDeployment(ctx, t, cs, "web", 10*time.Second, func(d *appsv1.Deployment) bool {
			return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == 2 &&
				d.Status.AvailableReplicas == 2 &&
				hasCondition(d, appsv1.DeploymentAvailable, corev1.ConditionTrue, "")
		})
		t.Logf("Available %s after create", time.Since(start).Round(time.Millisecond))
	})

	t.Run("ProgressDeadlineExceeded", func(t *testing.T) {
		start := time.Now()
		d := deployment("stuck", 1, map[string]string{kubetest.NeverReadyAnnotation: "true"}, ptr[int32](5))
		if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitDeployment(ctx, t, cs, "stuck", 30*time.Second, func(d *appsv1.Deployment) bool {
			return hasCondition(d, appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded")
		})
		t.Logf("ProgressDeadlineExceeded %s after create", time.Since(start).Round(time.Millisecond))
	})

	t.Run("HPAAndPDB", func(t *testing.T) {
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MinReplicas:    ptr[int32](2),
				MaxReplicas:    4,
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr[int32](80)},
					},
				}},
			},
		}
		if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}

		minAvailable := intstr.FromInt32(1)
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MinAvailable: &minAvailable,
				Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			},
		}
		if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The disruption controller counts the Deployment's healthy pods.
		poll(ctx, t, 10*time.Second, "the PDB's status", func() (bool, string) {
			p, err := cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 2 && p.Status.DisruptionsAllowed == 1,
				fmt.Sprintf("%+v", p.Status)
		})
	})

	t.Run("JobComplete", func(t *testing.T) {
		start := time.Now()
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "once"},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr[int32](0),
				Template: corev1.PodTemplateSpec{
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "main", Image: "registry.invalid/x:1"}},
					},
				},
			},
		}
		if _, err := cs.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(ctx, t, 20*time.Second, "the Job to complete", func() (bool, string) {
			j, err := cs.BatchV1().Jobs("default").Get(ctx, "once", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, cond := range j.Status.Conditions {
				if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", j.Status)
		})
		t.Logf("Complete %s after create", time.Since(start).Round(time.Millisecond))
	})
}

func deployment(name string, replicas int32, podAnnotations map[string]string, deadline *int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			ProgressDeadlineSeconds: deadline,
			Selector:                &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/x:1"}},
				},
			},
		},
	}
}

func waitDeployment(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, timeout time.Duration, ok func(*appsv1.Deployment) bool) {
	t.Helper()
	poll(ctx, t, timeout, "deployment "+name, func() (bool, string) {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return ok(d), fmt.Sprintf("%+v", d.Status)
	})
}

func hasCondition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason string) bool {
	for _, cond := range d.Status.Conditions {
		if cond.Type == typ && cond.Status == status && (reason == "" || cond.Reason == reason) {
			return true
		}
	}
	return false
}

// poll calls cond until it holds; on a timeout, the test fails with the last
// state cond described.
func poll(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
