package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/keylock"
	"github.com/tendhq/tend/spec"
)

// Type is the provider type.
const Type = "kubernetes"

// FieldManager is the server-side apply field manager of every object tend
// applies.
const FieldManager = "tend"

// Labels and annotations of tend's own, besides the identity.
const (
	// LabelRole tells a server's pods ("server") from its one-off task
	// pods ("task"); the Deployment, Service and PodDisruptionBudget
	// select role=server only.
	LabelRole = "tend.dev/role"
	// LabelTask marks a task Job.
	LabelTask = "tend.dev/task"
	// AnnotationFields is the digest of the fields tend's last apply owns
	// (its managedFields entry); a field changed by someone else leaves
	// that entry, so the digest no longer matches: drift.
	AnnotationFields = "tend.dev/fields"
	// AnnotationReplicas is the replica count tend set.
	AnnotationReplicas = "tend.dev/replicas"
	// AnnotationPorts records the server's ports (name=number,...).
	AnnotationPorts = "tend.dev/ports"
	// AnnotationPrefix, at the start of a server label's key, makes the
	// rest of the key a pod annotation rather than a pod label:
	// labels = { "annotation:prometheus.io/scrape" = "true" }.
	AnnotationPrefix = "annotation:"
	// deletionCost is the ReplicaSet controller's hint of which pod to
	// remove first when a Deployment scales down.
	deletionCost = "controller.kubernetes.io/pod-deletion-cost"
)

// Role values.
const (
	roleServer = "server"
	roleTask   = "task"
	// roleCanary is the Deployment of a canary rollout's first replicas
	// (its pods are role=server, with LabelTrack=canary).
	roleCanary = "canary"
)

// LabelTrack marks the pods of a canary Deployment (value "canary").
const LabelTrack = "tend.dev/track"

const trackCanary = "canary"

// containerName is the name of the server's container in its pods.
const containerName = "server"

// Register adds the kubernetes provider to a registry.
func Register(r *providers.Registry) {
	r.Register(Type, func(p *spec.Provider, env providers.Env) (providers.Provider, error) {
		return New(p, env)
	})
}

// Provider runs servers as Deployments (and their Service, ConfigMap,
// Secret, HorizontalPodAutoscaler and PodDisruptionBudget) in one
// namespace of one cluster.
type Provider struct {
	key       string // kubernetes.NAME
	set       spec.KubernetesSettings
	managedBy string

	mu  sync.Mutex
	cfg *rest.Config
	cs  kubernetes.Interface
	// proxyRT and proxyBase carry checks through the API server.
	proxyRT   http.RoundTripper
	proxyBase *url.URL
	nsOK      bool
	locks     keylock.Map // by server
}

var _ interface {
	providers.Provider
	providers.Execer
	providers.Logger
} = (*Provider)(nil)

// New builds a provider from its block. It does not contact the cluster,
// nor read the kubeconfig: the first call that needs the cluster does.
func New(p *spec.Provider, env providers.Env) (*Provider, error) {
	set := spec.KubernetesSettings{Namespace: "default"}
	if p.Kubernetes != nil {
		set = *p.Kubernetes
	}
	if set.Namespace == "" {
		set.Namespace = "default"
	}
	if errs := content.IsDNS1123Label(set.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q: %s", set.Namespace, strings.Join(errs, "; "))
	}
	if set.InCluster && (set.Kubeconfig != "" || set.Context != "") {
		return nil, errors.New("in_cluster = true uses the pod's service account: kubeconfig and context must be left out")
	}
	managedBy := env.ManagedBy
	if managedBy == "" {
		managedBy = providers.DefaultManagedBy
	}
	return &Provider{
		key: p.Key(), set: set, managedBy: managedBy,
	}, nil
}

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// ScalesItself implements providers.SelfScaler: a scaling block becomes a
// HorizontalPodAutoscaler, which scales the Deployment.
func (p *Provider) ScalesItself() bool { return true }

// Namespace is the namespace the provider's objects live in.
func (p *Provider) Namespace() string { return p.set.Namespace }

func (p *Provider) managedByOf(m string) string {
	if m == "" {
		return p.managedBy
	}
	return m
}

// RESTConfig returns the client configuration the provider uses: in-cluster,
// or from the kubeconfig (the block's path, else KUBECONFIG, else
// ~/.kube/config) and context.
func (p *Provider) RESTConfig() (*rest.Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg != nil {
		return p.cfg, nil
	}
	cfg, err := p.loadConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "tend"
	// Observe lists several kinds at once, and a rollout polls; the
	// client's default of 5 requests a second would throttle both.
	cfg.QPS, cfg.Burst = 50, 100
	p.cfg = cfg
	return cfg, nil
}

func (p *Provider) loadConfig() (*rest.Config, error) {
	if p.set.InCluster {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in_cluster = true, but tend does not run in a pod with a service account: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	where := "the kubeconfig (KUBECONFIG, or ~/.kube/config)"
	if path := p.set.Kubeconfig; path != "" {
		path, err := expandHome(path)
		if err != nil {
			return nil, err
		}
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		where = "kubeconfig " + path
	}
	over := &clientcmd.ConfigOverrides{}
	if p.set.Context != "" {
		over.CurrentContext = p.set.Context
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, over).ClientConfig()
	if err != nil {
		if p.set.Context != "" {
			return nil, fmt.Errorf("%s, context %q: %w", where, p.set.Context, err)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return cfg, nil
}

func expandHome(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return filepath.Join(home, strings.TrimPrefix(path, "~")), nil
}

// Clientset returns the provider's client, building it on first use.
func (p *Provider) Clientset() (kubernetes.Interface, error) {
	cfg, err := p.RESTConfig()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cs == nil {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
		p.cs = cs
	}
	return p.cs, nil
}

func (p *Provider) lock(server string) func() { return p.locks.Lock(server) }

// apiErr says what failed in words a person can act on.
func (p *Provider) apiErr(what string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", what, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: tend's Kubernetes user may not do this in namespace %s (see the RBAC rules in the kubernetes provider's documentation): %w", what, p.set.Namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the Kubernetes API server refused tend's credentials: %w", what, err)
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: the Kubernetes API server is not reachable: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// labelValue is v when it is a valid label value, else a digest of it
// (the full value is kept in an annotation).
func labelValue(v string) string {
	if len(content.IsLabelValue(v)) == 0 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "h-" + hex.EncodeToString(sum[:])[:20]
}

// selectorLabels select a server's pods.
func selectorLabels(managedBy, server string) map[string]string {
	return map[string]string{
		providers.LabelManagedBy: labelValue(managedBy),
		providers.LabelServer:    server,
		LabelRole:                roleServer,
	}
}

// ownerSelector is the label selector of every object of managedBy (of one
// server when server is set).
func ownerSelector(managedBy, server string) string {
	s := providers.LabelManagedBy + "=" + labelValue(managedBy)
	if server != "" {
		s += "," + providers.LabelServer + "=" + server
	}
	return s
}

// owned reports whether an object's labels and annotations say it is
// managedBy's.
func owned(labels, annotations map[string]string, managedBy string) bool {
	if labels[providers.LabelManagedBy] != labelValue(managedBy) {
		return false
	}
	if m, ok := annotations[providers.LabelManagedBy]; ok && m != managedBy {
		return false
	}
	return true
}

// managedByOfObject reads the managed-by identity of an object.
func managedByOfObject(labels, annotations map[string]string) string {
	if m := annotations[providers.LabelManagedBy]; m != "" {
		return m
	}
	return labels[providers.LabelManagedBy]
}
