package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/kubernetes"
	"github.com/tendhq/tend/providers/kubernetes/kubetest"
	"github.com/tendhq/tend/spec"
)

func desiredOf(s *spec.Server, managedBy string) *providers.Desired {
	return &providers.Desired{Server: s, SpecHash: spec.RuntimeHash(s.Fields()), Revision: "rev-1", ManagedBy: managedBy}
}

func webServer(name string, replicas int) *spec.Server {
	return &spec.Server{
		Name: name, Provider: "kubernetes.test", Version: "1.0.0",
		Image:    "registry.example.com/tend/web:1.0.0",
		Replicas: replicas,
		Ports:    []spec.Port{{Name: "http", Number: 8080, Protocol: "tcp"}},
		Env:      map[string]spec.Value{"MODE": spec.Plain("test"), "URL": spec.Plain("http://$(TEND_SERVER):$(PORT)/x")},
		ConfigFiles: []*spec.ConfigFile{
			{Path: "/etc/web/config.yaml", Content: spec.Plain("limit: 10\n"), Mode: 0o644},
		},
		Resources: &spec.Resources{MilliCPU: 250, MemoryBytes: 64 << 20},
		Rollout: spec.Rollout{Strategy: spec.StrategyRolling, MaxUnavailable: spec.IntOrPercent{Value: 1},
			ProgressDeadline: time.Minute},
	}
}

func start(t *testing.T, p providers.Provider, d *providers.Desired, replicas ...int) {
	t.Helper()
	for _, i := range replicas {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r := p.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: i})
		cancel()
		if r.Err != nil {
			t.Fatalf("StartReplica %s replica %d: %v", d.Server.Name, i, r.Err)
		}
		if r.Instance.State != providers.StateRunning {
			t.Fatalf("StartReplica %s replica %d: %s (%s)", d.Server.Name, i, r.Instance.State, r.Instance.Message)
		}
	}
}

func observe(t *testing.T, p providers.Provider, managedBy, server string) []providers.Instance {
	t.Helper()
	res := p.Observe(context.Background(), providers.ObserveRequest{ManagedBy: managedBy, Server: server})
	if res.Err != nil {
		t.Fatalf("Observe: %v", res.Err)
	}
	return res.Instances
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCluster runs the provider's own cases on one control plane, each in
// a namespace of its own.
func TestCluster(t *testing.T) {
	c := kubetest.Start(t)
	t.Run("DriftIgnoresServerDefaults", func(t *testing.T) { testDrift(t, c) })
	t.Run("SecretsStayInTheSecret", func(t *testing.T) { testSecrets(t, c) })
	t.Run("AutoscalerAndDisruptionBudget", func(t *testing.T) { testAutoscaling(t, c) })
	t.Run("HookJob", func(t *testing.T) { testHookJob(t, c) })
	t.Run("RefusesForeignObjects", func(t *testing.T) { testForeign(t, c) })
}

func testForeign(t *testing.T, c *kubetest.Cluster) {
	ns := "tend-foreign"
	p, mb := newTestProvider(t, c, ns)
	cs := c.Clientset
	ctx := context.Background()
	ensureNamespace(t, cs, ns)
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, foreignDeployment("taken"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := p.StartReplica(ctx, providers.StartRequest{Desired: desiredOf(webServer("taken", 1), mb), Replica: 0})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "is not this tend's") {
		t.Fatalf("StartReplica over a Deployment tend does not own: %v, want a refusal", r.Err)
	}
	got, err := cs.AppsV1().Deployments(ns).Get(ctx, "taken", metav1.GetOptions{})
	if err != nil || got.Labels[providers.LabelManagedBy] != "" || got.Spec.Template.Spec.Containers[0].Image != "registry.example.com/web:1" {
		t.Errorf("the foreign Deployment was changed: %v %+v", err, got)
	}
	// Nor does a prune of a server of that name touch it.
	if r := p.StopReplica(ctx, providers.StopRequest{Instance: providers.Instance{Identity: providers.Identity{ManagedBy: mb, Server: "taken"}}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "taken", metav1.GetOptions{}); err != nil {
		t.Errorf("the foreign Deployment is gone after a stop: %v", err)
	}
}

func testDrift(t *testing.T, c *kubetest.Cluster) {
	ns := "tend-drift"
	p, mb := newTestProvider(t, c, ns)
	cs := c.Clientset
	ctx := context.Background()
	d := desiredOf(webServer("web", 2), mb)
	start(t, p, d, 0, 1)

	noDrift := func(when string) {
		t.Helper()
		insts := observe(t, p, mb, "web")
		if len(insts) != 2 {
			t.Fatalf("%s: Observe lists %d instances, want 2", when, len(insts))
		}
		for _, in := range insts {
			if len(in.Drift) != 0 {
				t.Errorf("%s: replica %d reports drift %q", when, in.Replica, in.Drift)
			}
			if in.SpecHash != d.SpecHash || in.Revision != "rev-1" || in.State != providers.StateRunning {
				t.Errorf("%s: replica %d: %+v", when, in.Replica, in)
			}
		}
	}
	// The API server defaults dozens of fields (strategy details, probes'
	// periods, termination grace, DNS policy, the Service's cluster IP...)
	// and normalizes quantities: none of it is drift.
	noDrift("after the create")
	noDrift("observed again")

	// A field tend does not own, added by hand, is no drift either.
	ann := []byte(`{"metadata":{"annotations":{"team":"search"}}}`)
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, ann, metav1.PatchOptions{FieldManager: "kubectl-annotate"}); err != nil {
		t.Fatal(err)
	}
	noDrift("after kubectl annotate")

	// kubectl set env of a variable tend set: drift on every replica.
	env := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"server","env":[{"name":"MODE","value":"tampered"}]}]}}}}`)
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType, env, metav1.PatchOptions{FieldManager: "kubectl-set"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range observe(t, p, mb, "web") {
		if !strings.Contains(strings.Join(in.Drift, "\n"), "kubectl-set") || !strings.Contains(strings.Join(in.Drift, "\n"), "env[name=MODE].value") {
			t.Errorf("after kubectl set env, replica %d reports drift %q, want the env var changed by kubectl-set", in.Replica, in.Drift)
		}
	}
	// Starting a replica applies the server again: the drift is gone.
	start(t, p, d, 0, 1)
	eventually(t, "the drift to be healed", func() error {
		for _, in := range observe(t, p, mb, "web") {
			if len(in.Drift) != 0 || in.State != providers.StateRunning {
				return errors.New(in.ID + " " + string(in.State) + " " + strings.Join(in.Drift, "; "))
			}
		}
		return nil
	})

	// kubectl scale: a third replica, which tend did not ask for.
	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(ctx, "web", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 3},
	}, metav1.UpdateOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	var insts []providers.Instance
	eventually(t, "three replicas", func() error {
		insts = observe(t, p, mb, "web")
		if len(insts) != 3 {
			return errors.New("not three")
		}
		return nil
	})
	if !strings.Contains(strings.Join(insts[0].Drift, "\n"), "replicas is 3, tend set 2") {
		t.Errorf("after kubectl scale, drift %q, want the replica count", insts[0].Drift)
	}
	// The engine stops the extra replica.
	if r := p.StopReplica(ctx, providers.StopRequest{Instance: insts[2], Grace: time.Second}); r.Err != nil {
		t.Fatal(r.Err)
	}
	eventually(t, "two replicas without drift", func() error {
		insts := observe(t, p, mb, "web")
		if len(insts) != 2 {
			return errors.New("not two")
		}
		for _, in := range insts {
			if len(in.Drift) != 0 {
				return errors.New(strings.Join(in.Drift, "; "))
			}
		}
		return nil
	})

	// A hand edit of the config file's ConfigMap.
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: providers.LabelServer + "=web"})
	if err != nil || len(cms.Items) != 1 {
		t.Fatalf("ConfigMaps: %v %v", err, cms)
	}
	cm := cms.Items[0]
	for k := range cm.Data {
		cm.Data[k] = "limit: 1000\n"
	}
	cm.ManagedFields = nil
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, &cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range observe(t, p, mb, "web") {
		if !strings.Contains(strings.Join(in.Drift, "\n"), "ConfigMap "+cm.Name) {
			t.Errorf("after kubectl edit of the ConfigMap, replica %d reports drift %q", in.Replica, in.Drift)
		}
	}
}

func testSecrets(t *testing.T, c *kubetest.Cluster) {
	ns := "tend-secrets"
	p, mb := newTestProvider(t, c, ns)
	cs := c.Clientset
	ctx := context.Background()
	secrets := []string{"s3cr3t-env-value", "s3cr3t-file-content", "s3cr3t-arg-value"}
	s := webServer("vault", 1)
	s.Env["TOKEN"] = spec.Sensitive(secrets[0])
	s.ConfigFiles = append(s.ConfigFiles, &spec.ConfigFile{Path: "/etc/web/creds", Content: spec.Sensitive(secrets[1])})
	s.Command = []spec.Value{spec.Plain("/bin/web")}
	s.Args = []spec.Value{spec.Plain("--token"), spec.Sensitive(secrets[2])}
	d := desiredOf(s, mb)
	start(t, p, d, 0)

	// The Secret holds every secret value.
	secs, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: providers.LabelServer + "=vault"})
	if err != nil || len(secs.Items) != 1 {
		t.Fatalf("Secrets of vault: %v %+v", err, secs)
	}
	var all []string
	for _, v := range secs.Items[0].Data {
		all = append(all, string(v))
	}
	for _, sec := range secrets {
		if !strings.Contains(strings.Join(all, "\n"), sec) {
			t.Errorf("the Secret does not hold %q", sec)
		}
	}
	// Nothing else does: no object's JSON (labels, annotations, the pod
	// template, the ConfigMap), no pod, no instance.
	var dump bytes.Buffer
	add := func(what string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		json.NewEncoder(&dump).Encode(v)
	}
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	add("Deployments", deps, err)
	rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	add("ReplicaSets", rss, err)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	add("pods", pods, err)
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	add("ConfigMaps", cms, err)
	svcs, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	add("Services", svcs, err)
	for i := range secs.Items {
		add("Secret metadata", secs.Items[i].ObjectMeta, nil)
	}
	add("instances", observe(t, p, mb, ""), nil)
	for _, sec := range secrets {
		if strings.Contains(dump.String(), sec) {
			t.Errorf("%q appears outside the Secret", sec)
		}
	}
	if !strings.Contains(dump.String(), "$(TEND_ARG_2)") {
		t.Error("the secret argument (item 2 of command and args) is not passed as $(TEND_ARG_2)")
	}
	// An error about the server does not show them either.
	bad := *s
	bad.Labels = map[string]string{"bad label!": secrets[0]}
	r := p.StartReplica(ctx, providers.StartRequest{Desired: desiredOf(&bad, mb), Replica: 0})
	if r.Err == nil {
		t.Fatal("a label Kubernetes refuses was accepted")
	}
	for _, sec := range secrets {
		if strings.Contains(r.Err.Error(), sec) {
			t.Errorf("the error shows a secret: %v", r.Err)
		}
	}
}

func testAutoscaling(t *testing.T, c *kubetest.Cluster) {
	ns := "tend-scaling"
	p, mb := newTestProvider(t, c, ns)
	cs := c.Clientset
	ctx := context.Background()
	s := webServer("api", 2)
	s.Scaling = &spec.Scaling{Min: 2, Max: 5, CPUPercent: 70, MemoryPercent: 80, ScaleDownWindow: 5 * time.Minute}
	start(t, p, desiredOf(s, mb), 0, 1)

	hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the HorizontalPodAutoscaler: %v", err)
	}
	if *hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 5 || len(hpa.Spec.Metrics) != 2 || hpa.Spec.ScaleTargetRef.Name != "api" {
		t.Errorf("HPA spec %+v", hpa.Spec)
	}
	pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the PodDisruptionBudget: %v", err)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB max unavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
	for _, in := range observe(t, p, mb, "api") {
		if len(in.Drift) != 0 {
			t.Errorf("replica %d reports drift %q (the HPA's defaulted behavior is not tend's)", in.Replica, in.Drift)
		}
	}

	// The autoscaler's own scaling is not drift, and tend does not undo it.
	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(ctx, "api", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 4},
	}, metav1.UpdateOptions{FieldManager: "kube-controller-manager"}); err != nil {
		t.Fatal(err)
	}
	insts := observe(t, p, mb, "api")
	if len(insts) != 2 {
		t.Errorf("with the autoscaler at 4, Observe lists %d instances, want the 2 tend declared", len(insts))
	}
	for _, in := range insts {
		if len(in.Drift) != 0 {
			t.Errorf("the autoscaler's scale shows as drift: %q", in.Drift)
		}
	}
	start(t, p, desiredOf(s, mb), 0)
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 4 {
		t.Errorf("after a start, the Deployment has %d replicas, want the autoscaler's 4 (%v)", *dep.Spec.Replicas, err)
	}

	// The blocks go: so do the HPA and the PDB.
	s2 := webServer("api", 1)
	start(t, p, desiredOf(s2, mb), 0)
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the HPA is still there without a scaling block: %v", err)
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the PDB is still there with one replica: %v", err)
	}
	eventually(t, "one replica", func() error {
		if n := len(observe(t, p, mb, "api")); n != 1 {
			return errors.New("not one")
		}
		return nil
	})
}

func testHookJob(t *testing.T, c *kubetest.Cluster) {
	ns := "tend-hooks"
	p, mb := newTestProvider(t, c, ns)
	cs := c.Clientset
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := webServer("migrator", 1)
	s.Env["DB_PASSWORD"] = spec.Sensitive("hunter2-hook")
	d := desiredOf(s, mb)

	// Before the server exists (a pre_deploy hook on create).
	var stdout, stderr bytes.Buffer
	res := p.Exec(ctx, providers.ExecRequest{Desired: d, Command: []string{"sh", "-c", "echo migrated"}, Stdout: &stdout, Stderr: &stderr})
	if res.Err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec: exit %d, %v (stderr %q)", res.ExitCode, res.Err, stderr.String())
	}
	// kwok's nodes run nothing and serve no logs: the output cannot be
	// read, which is said on stderr rather than failing the task.
	if !strings.Contains(stderr.String(), "simulated") {
		t.Errorf("stderr %q, want a word about the simulated node's missing logs", stderr.String())
	}
	eventually(t, "the task's Job to be deleted", func() error {
		jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelTask + "=true"})
		if err != nil {
			return err
		}
		if len(jobs.Items) != 0 {
			return errors.New(jobs.Items[0].Name + " is still there")
		}
		return nil
	})
	// A task's pods are not the server's: Observe lists none.
	if insts := observe(t, p, mb, ""); len(insts) != 0 {
		t.Errorf("Observe lists %d instances after a task, want none", len(insts))
	}

	// In a replica: no pod exec.
	start(t, p, d, 0)
	inst := observe(t, p, mb, "migrator")[0]
	res = p.Exec(ctx, providers.ExecRequest{Desired: d, Instance: &inst, Command: []string{"true"}})
	if !errors.Is(res.Err, kubernetes.ErrNoPodExec) {
		t.Errorf("Exec in a replica: %v, want ErrNoPodExec", res.Err)
	}
}
