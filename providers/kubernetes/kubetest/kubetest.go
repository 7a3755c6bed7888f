// Package kubetest runs a real Kubernetes control plane for the tests of the
// kubernetes provider: etcd v3.7.3, kube-apiserver, kube-controller-manager
// and kube-scheduler v1.37.2, with kwok v0.8.0 standing in for the kubelets
// of fake nodes, so that Deployments, Jobs and the like make progress without
// any container runtime.
//
// The binaries come from hack/k8s-cluster.sh, which builds them once into a
// cache (${TEND_CACHE_DIR:-$HOME/.cache/tend}/k8s-v1.37.2-etcd-v3.7.3-kwok-v0.8.0/bin);
// TEND_K8S_BIN_DIR names another directory holding them. When they cannot be
// had, Start skips the test, or fails it when TEND_REQUIRE_KUBERNETES=1.
//
// Everything listens on 127.0.0.1 only, on ports chosen free, with its data
// and logs under the test's t.TempDir(). Pods are never run: kwok marks them
// Running and Ready right away (Completed, for pods of Jobs), except pods
// annotated NeverReadyAnnotation: "true", which stay Pending, so that a
// Deployment of them never becomes Available. A pod annotated
// PodIPAnnotation gets that IP, where a test can run a real server in a
// PodHost (a network namespace) for the API server to proxy to.
package kubetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// ContextName is the name of the kubeconfig context (and of its cluster).
	ContextName = "tend-test"
	// NeverReadyAnnotation on a pod (value "true") keeps kwok from making the
	// pod Ready, so that its Deployment's rollout never completes.
	NeverReadyAnnotation = "tend.dev/test-never-ready"
	// NodeAnnotation marks the nodes kwok manages (value "fake").
	NodeAnnotation = "kwok.x-k8s.io/node"
	// NodeLabel marks the fake nodes (type=kwok).
	NodeLabel = "type"

	// RequireEnv set to 1 turns a missing control plane from a skip into a
	// failure.
	RequireEnv = "TEND_REQUIRE_KUBERNETES"
	// BinDirEnv names a directory holding the binaries, which are then used
	// as they are; its sibling stages/ holds kwok's stage configs.
	BinDirEnv = "TEND_K8S_BIN_DIR"

	kubernetesServiceIP = "10.96.0.1"
	serviceCIDR         = "10.96.0.0/16"
	podCIDR             = "10.244.0.0/16"

	// coldBuild is about what hack/k8s-cluster.sh build takes on 2 cores
	// when Go's build cache is cold.
	coldBuild = 20 * time.Minute
)

// controllers are the controllers kube-controller-manager runs: enough for
// Deployments, Jobs, CronJobs, StatefulSets, DaemonSets, HPAs and PDBs to
// make progress, for namespaces to be deleted and for the nodes' not-ready
// taint to be lifted.
var controllers = []string{
	"clusterrole-aggregation-controller",
	"cronjob-controller",
	"daemonset-controller",
	"deployment-controller",
	"disruption-controller",
	"endpointslice-controller",
	"garbage-collector-controller",
	"horizontal-pod-autoscaler-controller",
	"job-controller",
	"namespace-controller",
	"node-lifecycle-controller",
	"pod-garbage-collector-controller",
	"replicaset-controller",
	"root-ca-certificate-publisher-controller",
	"serviceaccount-controller",
	"statefulset-controller",
	"ttl-after-finished-controller",
}

// stages are kwok's stage configs, in the stages directory beside the
// binaries.
var stages = []string{"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete"}

var binaryNames = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// Options change what Start makes.
type Options struct {
	// Nodes is the number of fake nodes (kwok-0, kwok-1, ...); 0 means 1.
	Nodes int
	// CPU and Memory are each node's capacity; empty means "32" and
	// "256Gi".
	CPU, Memory string
}

// Cluster is a running control plane.
type Cluster struct {
	// Kubeconfig is the path of a kubeconfig file for an administrator
	// (group system:masters), with one context, ContextName, the current.
	Kubeconfig string
	// Context is ContextName.
	Context string
	// Config and Clientset are for the same administrator.
	Config    *rest.Config
	Clientset *kubernetes.Clientset
	// Nodes are the names of the fake nodes.
	Nodes []string
	// Host is the API server's URL (https://127.0.0.1:PORT).
	Host string
	// Dir holds the cluster's certificates, configs and etcd data; LogDir
	// the log of each component (etcd.log, kube-apiserver.log, ...).
	Dir, LogDir string
	// BinDir holds the binaries that were run.
	BinDir string
	// StartupTime is how long Start took, not counting finding the binaries.
	StartupTime time.Duration

	t          testing.TB
	opts       Options
	stagesDir  string
	components []*component
	stopOnce   sync.Once
}

// Required reports whether TEND_REQUIRE_KUBERNETES=1: then a control plane
// that cannot be had fails the test instead of skipping it.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Start runs a control plane with one fake node for the test, and stops it
// when the test ends. It skips the test when the binaries cannot be had
// (unless Required), and fails it when the control plane does not start.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartWithOptions(t, Options{})
}

// StartWithOptions is Start with Options.
func StartWithOptions(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin, stagesDir, err := Binaries(t)
	if err != nil {
		if Required() {
			t.Fatalf("kubetest: %v (%s=1)", err, RequireEnv)
		}
		t.Skipf("kubetest: %v (set %s=1 to make this a failure)", err, RequireEnv)
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.CPU == "" {
		opts.CPU = "32"
	}
	if opts.Memory == "" {
		opts.Memory = "256Gi"
	}
	begin := time.Now()
	var c *Cluster
	for attempt := 1; ; attempt++ {
		c = &Cluster{
			Context:   ContextName,
			BinDir:    bin,
			Dir:       t.TempDir(),
			t:         t,
			opts:      opts,
			stagesDir: stagesDir,
		}
		c.LogDir = filepath.Join(c.Dir, "logs")
		t.Cleanup(c.Stop)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		err = c.start(ctx)
		cancel()
		// Ports are chosen free, then used: another process may take one
		// in between. Try once more then.
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		t.Logf("kubetest: a port was taken, trying again: %v", err)
		c.Stop()
	}
	if err != nil {
		t.Fatalf("kubetest: starting the control plane: %v", err)
	}
	c.StartupTime = time.Since(begin)
	t.Logf("kubetest: control plane up at %s in %s (kubeconfig %s)", c.Host, c.StartupTime.Round(time.Millisecond), c.Kubeconfig)
	return c
}

var (
	binMu                sync.Mutex
	binDir, binStagesDir string
)

// Binaries finds the directory of the binaries and that of kwok's stage
// configs, building them with hack/k8s-cluster.sh build when they are not
// cached yet (which, when Go's build cache is cold, takes about 17 minutes:
// it is refused when t's deadline is nearer than that).
func Binaries(t testing.TB) (bin, stagesDir string, err error) {
	binMu.Lock()
	defer binMu.Unlock()
	if binDir != "" {
		return binDir, binStagesDir, nil
	}
	if d := os.Getenv(BinDirEnv); d != "" {
		bin = d
	} else {
		bin, err = buildBinaries(t)
		if err != nil {
			return "", "", err
		}
	}
	stagesDir = filepath.Join(filepath.Dir(bin), "stages")
	for _, name := range binaryNames {
		if _, err := exec.LookPath(filepath.Join(bin, name)); err != nil {
			return "", "", fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, name := range stages {
		if _, err := os.Stat(filepath.Join(stagesDir, name+".yaml")); err != nil {
			return "", "", fmt.Errorf("kwok's stage %s: %w", name, err)
		}
	}
	binDir, binStagesDir = bin, stagesDir
	return bin, stagesDir, nil
}

func buildBinaries(t testing.TB) (string, error) {
	script, err := findScript()
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return "", err
	}
	if out, err := exec.Command("bash", script, "bindir").Output(); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok && time.Until(deadline) < coldBuild {
			return "", fmt.Errorf("the control plane is not built yet, and building it may take about %s, "+
				"more than is left before this test's deadline: run %s build first, or go test with a longer -timeout",
				coldBuild, script)
		}
	}
	t.Logf("kubetest: building the control plane with %s build (up to about %s when Go's build cache is cold)", script, coldBuild)
	start := time.Now()
	cmd := exec.Command("bash", script, "build")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s build: %v\n%s", script, err, tail(stderr.Bytes(), 30))
	}
	t.Logf("kubetest: built in %s", time.Since(start).Round(time.Second))
	return strings.TrimSpace(stdout.String()), nil
}

// findScript finds hack/k8s-cluster.sh in the module that holds the current
// directory (a test runs in its package's directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "k8s-cluster.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/k8s-cluster.sh not found above the current directory; set " + BinDirEnv)
		}
		dir = parent
	}
}

func (c *Cluster) start(ctx context.Context) error {
	pki := filepath.Join(c.Dir, "pki")
	for _, d := range []string{pki, c.LogDir, filepath.Join(c.Dir, "etcd"), filepath.Join(c.Dir, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.Host = "https://127.0.0.1:" + strconv.Itoa(ports[2])

	// Certificates, keys and kubeconfigs.
	ca, err := newCA("tend-test-ca")
	if err != nil {
		return err
	}
	serving, err := newServingCert(ca)
	if err != nil {
		return err
	}
	saKey, saPub, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt": ca.cert, "apiserver.crt": serving.cert, "apiserver.key": serving.key,
		"sa.key": saKey, "sa.pub": saPub,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(pki, name), data, 0o600); err != nil {
			return err
		}
	}
	kubeconfigs := map[string]string{}
	for _, user := range []string{"admin", "kube-controller-manager", "kube-scheduler", "kwok"} {
		// Every component is an administrator: the controller manager then
		// needs no per-controller service accounts, and kwok may write the
		// status of nodes and pods.
		cn := "system:" + user
		if user == "admin" {
			cn = "tend-test-admin"
		}
		kp, err := newClientCert(ca, cn, "system:masters")
		if err != nil {
			return err
		}
		path := filepath.Join(c.Dir, user+".kubeconfig")
		if user == "admin" {
			path = filepath.Join(c.Dir, "kubeconfig")
			c.Kubeconfig = path
			c.Config = &rest.Config{
				Host:            c.Host,
				TLSClientConfig: rest.TLSClientConfig{CAData: ca.cert, CertData: kp.cert, KeyData: kp.key},
				QPS:             100,
				Burst:           200,
			}
		}
		if err := os.WriteFile(path, kubeconfig(c.Host, ca.cert, kp, cn), 0o600); err != nil {
			return err
		}
		kubeconfigs[user] = path
	}
	if c.Clientset, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}

	// etcd.
	etcdArgs := []string{
		"--name=default",
		"--data-dir=" + filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-level=warn",
	}
	if c.etcdHasFlag("--unsafe-no-fsync") {
		etcdArgs = append(etcdArgs, "--unsafe-no-fsync")
	}
	etcd, err := c.run("etcd", etcdArgs, nil)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, 30*time.Second, "etcd to answer", []*component{etcd}, func(ctx context.Context) (bool, error) {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health"), nil
	}); err != nil {
		return err
	}

	// kube-apiserver.
	apiserver, err := c.run("kube-apiserver", []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--cert-dir=" + pki,
	}, nil)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, 90*time.Second, "kube-apiserver to be ready", []*component{apiserver, etcd}, func(ctx context.Context) (bool, error) {
		body, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	}); err != nil {
		return err
	}

	// The controller manager, the scheduler and kwok.
	kcm, err := c.run("kube-controller-manager", []string{
		"--kubeconfig=" + kubeconfigs["kube-controller-manager"],
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--root-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--kube-api-qps=100",
		"--kube-api-burst=200",
		"--profiling=false",
	}, nil)
	if err != nil {
		return err
	}
	scheduler, err := c.run("kube-scheduler", []string{
		"--kubeconfig=" + kubeconfigs["kube-scheduler"],
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--profiling=false",
	}, nil)
	if err != nil {
		return err
	}
	kwokArgs := []string{
		"--kubeconfig=" + kubeconfigs["kwok"],
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + NodeAnnotation + "=fake",
		"--node-lease-duration-seconds=40",
		"--node-ip=127.0.0.1",
		"--cidr=" + podCIDR,
	}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "--config="+filepath.Join(c.stagesDir, s+".yaml"))
	}
	// HOME: kwok would also read ~/.kwok/kwok.yaml.
	kwok, err := c.run("kwok", kwokArgs, []string{"HOME=" + filepath.Join(c.Dir, "home")})
	if err != nil {
		return err
	}
	all := []*component{etcd, apiserver, kcm, scheduler, kwok}

	// The fake nodes.
	for i := 0; i < c.opts.Nodes; i++ {
		node, err := c.newNode("kwok-" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		if _, err := c.Clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", node.Name, err)
		}
		c.Nodes = append(c.Nodes, node.Name)
	}

	// Ready: the nodes take pods, and namespace default has its service
	// account (without which no pod can be created there).
	if err := c.waitFor(ctx, 60*time.Second, "the nodes to be Ready and untainted", []*component{kwok, kcm}, func(ctx context.Context) (bool, error) {
		for _, name := range c.Nodes {
			n, err := c.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			if !nodeReady(n) {
				return false, nil
			}
		}
		return true, nil
	}, all...); err != nil {
		return err
	}
	return c.waitFor(ctx, 60*time.Second, "service account default/default", []*component{kcm}, func(ctx context.Context) (bool, error) {
		_, err := c.Clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	}, all...)
}

func (c *Cluster) newNode(name string) (*corev1.Node, error) {
	cpu, err := resource.ParseQuantity(c.opts.CPU)
	if err != nil {
		return nil, fmt.Errorf("node cpu: %w", err)
	}
	mem, err := resource.ParseQuantity(c.opts.Memory)
	if err != nil {
		return nil, fmt.Errorf("node memory: %w", err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    cpu,
		corev1.ResourceMemory: mem,
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				NodeAnnotation:                 "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				NodeLabel:                       "kwok",
				"kubernetes.io/arch":            "amd64",
				"kubernetes.io/hostname":        name,
				"kubernetes.io/os":              "linux",
				"kubernetes.io/role":            "agent",
				"node-role.kubernetes.io/agent": "",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:    "amd64",
				OperatingSystem: "linux",
				KubeletVersion:  "fake",
			},
		},
	}, nil
}

// nodeReady: the node is Ready and no longer carries the taints that keep
// pods off a node that is not.
func nodeReady(n *corev1.Node) bool {
	ready := false
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	for _, taint := range n.Spec.Taints {
		if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	return ready
}

// NodeReady reports whether node name is Ready and untainted.
func (c *Cluster) NodeReady(ctx context.Context, name string) (bool, error) {
	n, err := c.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	return nodeReady(n), nil
}

// Stop stops the control plane; Start has it run when the test ends. It
// may be called more than once.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		if c.t.Failed() {
			for _, comp := range c.components {
				c.t.Logf("kubetest: last lines of %s's log:\n%s", comp.name, comp.tail(15))
			}
		}
		// In the reverse order of starting, and each gracefully first.
		for i := len(c.components) - 1; i >= 0; i-- {
			c.components[i].stop(5 * time.Second)
		}
	})
}

// component is one running process of the control plane.
type component struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (c *Cluster) run(name string, args, env []string) (*component, error) {
	logPath := filepath.Join(c.LogDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(c.BinDir, name), args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	comp := &component{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		comp.err = cmd.Wait()
		close(comp.done)
	}()
	c.components = append(c.components, comp)
	return comp, nil
}

func (comp *component) exited() bool {
	select {
	case <-comp.done:
		return true
	default:
		return false
	}
}

func (comp *component) stop(grace time.Duration) {
	if comp.exited() {
		return
	}
	_ = comp.cmd.Process.Signal(os.Interrupt)
	select {
	case <-comp.done:
	case <-time.After(grace):
		_ = comp.cmd.Process.Kill()
		<-comp.done
	}
}

// tail is the last n lines of the component's log.
func (comp *component) tail(n int) string {
	data, err := os.ReadFile(comp.log)
	if err != nil {
		return err.Error()
	}
	return tail(data, n)
}

func tail(data []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds, for at most timeout. It gives up at
// once when one of watch (default: blame) exits, and its error then holds
// the tail of that component's log; on a timeout, of blame's.
func (c *Cluster) waitFor(ctx context.Context, timeout time.Duration, what string, blame []*component,
	cond func(context.Context) (bool, error), watch ...*component,
) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if len(watch) == 0 {
		watch = blame
	}
	for {
		for _, comp := range watch {
			if comp.exited() {
				return fmt.Errorf("%s exited (%v) while waiting for %s; last lines of %s:\n%s",
					comp.name, comp.err, what, comp.log, comp.tail(30))
			}
		}
		callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := cond(callCtx)
		callCancel()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			fmt.Fprintf(&b, "timed out waiting for %s", what)
			for _, comp := range blame {
				fmt.Fprintf(&b, "; last lines of %s:\n%s", comp.log, comp.tail(30))
			}
			return errors.New(b.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) etcdHasFlag(flag string) bool {
	out, _ := exec.Command(filepath.Join(c.BinDir, "etcd"), "--help").CombinedOutput()
	return bytes.Contains(out, []byte(flag+" "))
}

func httpOK(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freePorts finds n free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// kubeconfig is a kubeconfig file for user, authenticated by kp.
func kubeconfig(host string, caCert []byte, kp *keyPair, user string) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[4]s
  user:
    client-certificate-data: %[5]s
    client-key-data: %[6]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[4]s
    namespace: default
current-context: %[1]s
`, ContextName, host, b64(caCert), user, b64(kp.cert), b64(kp.key))
}
