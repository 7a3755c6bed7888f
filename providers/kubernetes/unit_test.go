package kubernetes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

func testServer() *spec.Server {
	return &spec.Server{
		Name: "web", Version: "1.0.0", Image: "registry.example.com/web:1.0.0", Replicas: 2,
		Ports: []spec.Port{{Name: "http", Number: 8080}},
		Env: map[string]spec.Value{
			"MODE":  spec.Plain("cost $5 at $(TEND_SERVER)"),
			"TOKEN": spec.Sensitive("tok-secret"),
		},
		ConfigFiles: []*spec.ConfigFile{
			{Path: "/etc/web/a.yaml", Content: spec.Plain("a: 1\n")},
			{Path: "/etc/web/key", Content: spec.Sensitive("key-secret")},
		},
		Labels:  map[string]string{"team": "search", "annotation:prometheus.io/scrape": "true"},
		Rollout: spec.Rollout{Strategy: spec.StrategyRolling, MaxUnavailable: spec.IntOrPercent{Value: 25, Percent: true}, ProgressDeadline: 90 * time.Second},
	}
}

func TestNewProviderContactsNothing(t *testing.T) {
	p, err := New(&spec.Provider{Type: Type, Name: "x", Kubernetes: &spec.KubernetesSettings{
		Kubeconfig: "/nonexistent/kubeconfig", Namespace: "apps",
	}}, providers.Env{ManagedBy: "m"})
	if err != nil {
		t.Fatalf("New read or contacted something: %v", err)
	}
	if _, err := p.Clientset(); err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("the first use of a missing kubeconfig: %v, want an error naming it", err)
	}
	if _, err := New(&spec.Provider{Type: Type, Name: "x", Kubernetes: &spec.KubernetesSettings{Namespace: "Bad_NS"}}, providers.Env{}); err == nil {
		t.Error("an invalid namespace was accepted")
	}
}

func TestBuild(t *testing.T) {
	d := &providers.Desired{Server: testServer(), SpecHash: "0123456789abcdef", Revision: "dir-abc+12ff34", ManagedBy: "tend prod"}
	b, err := newBuild(d, "apps", d.ManagedBy)
	if err != nil {
		t.Fatal(err)
	}
	dep := b.deployment(2, 2)
	raw, _ := json.Marshal(dep)
	cm, _ := json.Marshal(b.configMap)
	svc, _ := json.Marshal(b.service)
	pdb, _ := json.Marshal(b.pdb)
	for _, sec := range []string{"tok-secret", "key-secret"} {
		for what, j := range map[string][]byte{"Deployment": raw, "ConfigMap": cm, "Service": svc, "PDB": pdb} {
			if strings.Contains(string(j), sec) {
				t.Errorf("the %s holds the secret %q", what, sec)
			}
		}
	}
	sec, _ := json.Marshal(b.secret.Data)
	if !strings.Contains(string(sec), "dG9rLXNlY3JldA") { // base64 of tok-secret
		t.Errorf("the Secret does not hold the env secret: %s", sec)
	}
	if strings.Contains(string(cm), "key-secret") || !strings.Contains(string(cm), "a: 1") {
		t.Errorf("ConfigMap %s", cm)
	}
	// The revision cannot be a label value: an annotation only; the
	// managed-by is a digest in labels.
	if v := dep.Labels[providers.LabelManagedBy]; v == "tend prod" || !strings.HasPrefix(v, "h-") {
		t.Errorf("managed-by label %q", v)
	}
	if dep.Annotations[providers.LabelRevision] != "dir-abc+12ff34" || dep.Annotations[providers.LabelManagedBy] != "tend prod" {
		t.Errorf("annotations %v", dep.Annotations)
	}
	tmpl := dep.Spec.Template
	if tmpl.Labels["team"] != "search" || tmpl.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("pod labels %v annotations %v", tmpl.Labels, tmpl.Annotations)
	}
	if _, ok := tmpl.Annotations[providers.LabelRevision]; ok {
		t.Error("the revision is in the pod template: every commit would roll the pods")
	}
	var mode string
	for _, e := range tmpl.Spec.Containers[0].Env {
		if *e.Name == "MODE" {
			mode = *e.Value
		}
		if *e.Name == "TEND_REPLICA" {
			t.Error("TEND_REPLICA is set on a Deployment's pods")
		}
	}
	if mode != "cost $$5 at web" {
		t.Errorf("MODE is %q, want tend's expansion with '$' escaped for Kubernetes", mode)
	}
	if s := dep.Spec.Strategy.RollingUpdate.MaxUnavailable.String(); s != "25%" || *dep.Spec.ProgressDeadlineSeconds != 90 {
		t.Errorf("strategy %s, deadline %d", s, *dep.Spec.ProgressDeadlineSeconds)
	}
	if b.hpa != nil || b.pdb == nil {
		t.Errorf("hpa %v pdb %v: want no HPA without scaling, a PDB with two replicas", b.hpa, b.pdb)
	}
}

func TestBuildRefuses(t *testing.T) {
	for name, edit := range map[string]func(s *spec.Server){
		"no image":        func(s *spec.Server) { s.Image = "" },
		"bad label key":   func(s *spec.Server) { s.Labels = map[string]string{"a b": "x"} },
		"bad label value": func(s *spec.Server) { s.Labels = map[string]string{"a": "tok-secret!"} },
		"tend's label":    func(s *spec.Server) { s.Labels = map[string]string{"tend.dev/server": "x"} },
		"relative file":   func(s *spec.Server) { s.ConfigFiles = []*spec.ConfigFile{{Path: "a.yaml", Content: spec.Plain("")}} },
		"named user":      func(s *spec.Server) { s.User = "www-data" },
		"secret program":  func(s *spec.Server) { s.Command = []spec.Value{spec.Sensitive("tok-secret")} },
	} {
		t.Run(name, func(t *testing.T) {
			s := testServer()
			edit(s)
			_, err := newBuild(&providers.Desired{Server: s, SpecHash: "h", ManagedBy: "m"}, "apps", "m")
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "tok-secret!") && name != "bad label value" {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestFieldsDigest(t *testing.T) {
	entry := func(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields)}
	}
	full := `{"f:metadata":{"f:annotations":{"f:tend.dev/replicas":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"server\"}":{".":{},"f:image":{},"f:env":{"k:{\"name\":\"MODE\"}":{".":{},"f:name":{},"f:value":{}}}}}}}}}`
	scaled := `{"f:metadata":{"f:annotations":{}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"server\"}":{".":{},"f:image":{},"f:env":{"k:{\"name\":\"MODE\"}":{".":{},"f:name":{},"f:value":{}}}}}}}}}`
	edited := `{"f:metadata":{"f:annotations":{"f:tend.dev/replicas":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"server\"}":{".":{},"f:image":{},"f:env":{"k:{\"name\":\"MODE\"}":{".":{},"f:name":{}}}}}}}}}`
	a := fieldsDigest("Deployment", []metav1.ManagedFieldsEntry{entry("tend", metav1.ManagedFieldsOperationApply, full)})
	b := fieldsDigest("Deployment", []metav1.ManagedFieldsEntry{entry("tend", metav1.ManagedFieldsOperationApply, scaled)})
	c := fieldsDigest("Deployment", []metav1.ManagedFieldsEntry{entry("tend", metav1.ManagedFieldsOperationApply, edited)})
	if a == "" || a != b {
		t.Errorf("a scale changed the digest: %q %q", a, b)
	}
	if a == c {
		t.Error("an env value taken by someone else did not change the digest")
	}
	om := metav1.ObjectMeta{
		Annotations: map[string]string{AnnotationFields: a},
		ManagedFields: []metav1.ManagedFieldsEntry{
			entry("tend", metav1.ManagedFieldsOperationApply, edited),
			entry("kubectl-set", metav1.ManagedFieldsOperationUpdate, `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"server\"}":{"f:env":{"k:{\"name\":\"MODE\"}":{"f:value":{}}}}}}}}}`),
		},
	}
	got := strings.Join(objectDrift("Deployment", "web", om), "\n")
	if !strings.Contains(got, "kubectl-set") || !strings.Contains(got, "spec.template.spec.containers[name=server].env[name=MODE].value") {
		t.Errorf("drift %q", got)
	}
}

func TestPodState(t *testing.T) {
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	for name, tc := range map[string]struct {
		st   corev1.PodStatus
		want providers.State
	}{
		"ready":   {corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{ready}}, providers.StateRunning},
		"pending": {corev1.PodStatus{Phase: corev1.PodPending}, providers.StateStarting},
		"crash loop": {corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "server", RestartCount: 4,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}, providers.StateCrashing},
		"bad image": {corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "server",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}}}}, providers.StateMissing},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: tc.st}
		if got, msg, _, _ := podState(pod); got != tc.want {
			t.Errorf("%s: %s (%s), want %s", name, got, msg, tc.want)
		}
	}
}

func TestCheckRoute(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://k8s.example.com:6443/clusters/prod
contexts:
- name: prod
  context: {cluster: c, user: u}
current-context: prod
users:
- name: u
  user: {token: tok-route-secret}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	provider := func(s spec.KubernetesSettings) *Provider {
		t.Helper()
		if s.Namespace == "" {
			s.Namespace = "mcp"
		}
		p, err := New(&spec.Provider{Type: Type, Name: "x", Kubernetes: &s}, providers.Env{ManagedBy: "m"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pod := providers.Instance{ID: "web-5d9c7-abcde", Host: "10.1.2.3", Ports: map[string]int{"http": 8080}}

	p := provider(spec.KubernetesSettings{Kubeconfig: kubeconfig})
	if !p.ChecksViaProxy() {
		t.Error("outside a cluster, checks do not go through the API server by default")
	}
	for scheme, want := range map[string]string{
		"http":  "https://k8s.example.com:6443/clusters/prod/api/v1/namespaces/mcp/pods/web-5d9c7-abcde:8080/proxy",
		"https": "https://k8s.example.com:6443/clusters/prod/api/v1/namespaces/mcp/pods/https:web-5d9c7-abcde:8443/proxy",
	} {
		port := 8080
		if scheme == "https" {
			port = 8443
		}
		u, rt, ok, err := p.CheckRoute(pod, scheme, port)
		if err != nil || !ok || rt == nil || u != want {
			t.Errorf("CheckRoute(%s): %q, %v, %v, %v; want %q through a round tripper", scheme, u, rt != nil, ok, err, want)
		}
	}
	nopod := providers.Instance{ID: "deployment/web#1"}
	nopod.Replica = 1
	if _, _, _, err := p.CheckRoute(nopod, "http", 8080); err == nil ||
		!strings.Contains(err.Error(), "replica 1 has no pod") {
		t.Errorf("a replica without a pod: %v", err)
	}
	if _, _, _, err := p.CheckRoute(pod, "ftp", 21); err == nil {
		t.Error("a scheme the proxy does not speak was accepted")
	}

	// In the cluster, or told so, checks go to the pod's IP.
	for _, s := range []spec.KubernetesSettings{
		{InCluster: true},
		{Kubeconfig: kubeconfig, ChecksVia: spec.ChecksViaPodIP},
	} {
		if u, _, ok, err := provider(s).CheckRoute(pod, "http", 8080); ok || err != nil || u != "" {
			t.Errorf("%+v: CheckRoute = %q, %v, %v; want the pod's IP (not ok)", s, u, ok, err)
		}
	}
	if !provider(spec.KubernetesSettings{InCluster: true, ChecksVia: spec.ChecksViaAPIProxy}).ChecksViaProxy() {
		t.Error(`checks_via = "api-proxy" in a cluster does not go through the API server`)
	}
}

func TestProxyRefusal(t *testing.T) {
	tr := &proxyTransport{namespace: "mcp", pod: "web-1"}
	for _, c := range []struct {
		code int
		body string
		want string
	}{
		{503, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"error trying to reach service: dial tcp 10.1.2.3:8080: connect: connection refused","reason":"ServiceUnavailable","code":503}`,
			"the API server could not reach the pod web-1: dial tcp 10.1.2.3:8080: connect: connection refused"},
		{403, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"web-1:8080\" is forbidden","reason":"Forbidden","details":{"name":"web-1:8080","kind":"pods"},"code":403}`,
			"may not reach pods through the API server's proxy"},
		{404, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"web-1\" not found","reason":"NotFound","details":{"name":"web-1","kind":"pods"},"code":404}`,
			"the pod web-1 is gone"},
		{400, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"address not allowed","reason":"BadRequest","code":400}`,
			"the API server will not proxy to the pod web-1: address not allowed"},
		// The pod's own answers pass.
		{404, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"notes not found","details":{"name":"other","kind":"pods"}}`, ""},
		{503, `{"status":"starting"}`, ""},
		{403, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no","reason":"Forbidden"}`, ""},
	} {
		if got := tr.refusal(c.code, []byte(c.body)); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%d %s: %q, want %q", c.code, c.body, got, c.want)
		}
	}
}

func TestWithCanary(t *testing.T) {
	inst := func(id string, replica int, hash string) providers.Instance {
		in := providers.Instance{ID: id, State: providers.StateRunning}
		in.Replica, in.SpecHash = replica, hash
		return in
	}
	dep := func(declared string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationReplicas: declared}}}
	}
	canary := []providers.Instance{inst("web-canary-a", 0, "new")}
	server := []providers.Instance{inst("web-x", 0, "old"), inst("web-y", 1, "old"), inst("web-z", 2, "old")}
	got := withCanary(canary, server, dep("4"))
	want := []string{"web-canary-a 0 new", "web-x 1 old", "web-y 2 old", "web-z 3 old"}
	if len(got) != len(want) {
		t.Fatalf("%d instances, want %d: %+v", len(got), len(want), got)
	}
	for i, in := range got {
		if s := in.ID + " " + strconv.Itoa(in.Replica) + " " + in.SpecHash; s != want[i] {
			t.Errorf("instance %d: %s, want %s", i, s, want[i])
		}
	}
	// While the server's Deployment is promoted it has all its replicas
	// again: only the declared count is listed.
	server = append(server, inst("web-w", 3, "old"))
	if got := withCanary(canary, server, dep("4")); len(got) != 4 || got[3].ID != "web-z" {
		t.Errorf("beyond the declared replicas: %+v", got)
	}
}
