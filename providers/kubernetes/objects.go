package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// build is one server as tend would apply it: every object, from one
// Desired. Building touches nothing; everything a spec can be refused for
// is refused here.
type build struct {
	d         *providers.Desired
	ns        string
	managedBy string
	name      string // the server's name: the Deployment, Service, HPA and PDB

	labels      map[string]string // tend's identity, on every object
	annotations map[string]string // the identity values labels cannot hold
	selector    map[string]string

	podLabels      map[string]string
	podAnnotations map[string]string
	container      *corev1ac.ContainerApplyConfiguration
	volumes        []*corev1ac.VolumeApplyConfiguration

	configMap *corev1ac.ConfigMapApplyConfiguration // nil: no plain config file
	secret    *corev1ac.SecretApplyConfiguration    // nil: nothing sensitive
	pvcs      []*corev1ac.PersistentVolumeClaimApplyConfiguration
	service   *corev1ac.ServiceApplyConfiguration // nil: no port
	hpa       *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration
	pdb       *policyv1ac.PodDisruptionBudgetApplyConfiguration

	ports map[string]int
	red   providers.Redactor
}

// configMapName and secretName carry the spec hash, so that the pods of a
// rollout's old ReplicaSet keep reading the files and secrets they started
// with.
func configMapName(server, specHash string) string { return server + "-files-" + short(specHash) }
func secretName(server, specHash string) string    { return server + "-secret-" + short(specHash) }
func pvcName(server, volume string) string         { return server + "-" + volume }

func short(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}

func keyOf(prefix, s string) string {
	sum := sha256.Sum256([]byte(s))
	return prefix + hex.EncodeToString(sum[:])[:12]
}

// escape doubles every '$', so that Kubernetes' own $(VAR) expansion of
// command, args and env values leaves tend's (already expanded) values as
// they are.
func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// newBuild builds every object of d for the namespace ns.
func newBuild(d *providers.Desired, ns, managedBy string) (*build, error) {
	s := d.Server
	if s == nil {
		return nil, errors.New("no server")
	}
	if s.Image == "" {
		return nil, errors.New("the server names no image")
	}
	if errs := content.IsDNS1123Label(s.Name); len(errs) > 0 {
		return nil, fmt.Errorf("the server name %q is not a Kubernetes object name: %s", s.Name, strings.Join(errs, "; "))
	}
	b := &build{
		d: d, ns: ns, managedBy: managedBy, name: s.Name,
		selector: selectorLabels(managedBy, s.Name),
		ports:    map[string]int{},
	}
	b.labels = map[string]string{
		providers.LabelManagedBy: labelValue(managedBy),
		providers.LabelServer:    s.Name,
		providers.LabelSpecHash:  d.SpecHash,
	}
	if len(content.IsLabelValue(s.Version)) == 0 {
		b.labels[providers.LabelVersion] = s.Version
	}
	b.annotations = map[string]string{
		providers.LabelManagedBy: managedBy,
		providers.LabelSpecHash:  d.SpecHash,
		providers.LabelRevision:  d.Revision,
		providers.LabelVersion:   s.Version,
	}

	// Pod labels: the selector, the spec hash and version, and the
	// server's labels; "annotation:" labels become pod annotations.
	b.podLabels = map[string]string{}
	b.podAnnotations = map[string]string{
		providers.LabelManagedBy: managedBy,
		providers.LabelVersion:   s.Version,
	}
	for _, k := range sortedKeys(s.Labels) {
		v := s.Labels[k]
		if ak, ok := strings.CutPrefix(k, AnnotationPrefix); ok {
			if errs := content.IsLabelKey(ak); len(errs) > 0 {
				return nil, fmt.Errorf("label %q: %q is not an annotation key: %s", k, ak, strings.Join(errs, "; "))
			}
			b.podAnnotations[ak] = v
			continue
		}
		if strings.HasPrefix(k, "tend.dev/") {
			return nil, fmt.Errorf("label %q: the tend.dev/ prefix is tend's own", k)
		}
		if errs := content.IsLabelKey(k); len(errs) > 0 {
			return nil, fmt.Errorf("label %q is not a Kubernetes label key: %s", k, strings.Join(errs, "; "))
		}
		if errs := content.IsLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("label %q: %q is not a Kubernetes label value: %s", k, v, strings.Join(errs, "; "))
		}
		b.podLabels[k] = v
	}
	for k, v := range b.selector {
		b.podLabels[k] = v
	}
	b.podLabels[providers.LabelSpecHash] = d.SpecHash
	if v, ok := b.labels[providers.LabelVersion]; ok {
		b.podLabels[providers.LabelVersion] = v
	}

	if err := b.buildContainer(); err != nil {
		return nil, err
	}
	b.buildService()
	b.buildAutoscaling()
	return b, nil
}

// meta returns the identity labels and annotations plus extra annotations.
func (b *build) meta(extra map[string]string) (map[string]string, map[string]string) {
	labels := map[string]string{}
	for k, v := range b.labels {
		labels[k] = v
	}
	ann := map[string]string{}
	for k, v := range b.annotations {
		ann[k] = v
	}
	for k, v := range extra {
		ann[k] = v
	}
	return labels, ann
}

func (b *build) buildContainer() error {
	s := b.d.Server
	env := providers.ReplicaEnv(b.d, 0, nil)
	// A Deployment's pods are alike: they have no replica number.
	delete(env, "TEND_REPLICA")

	secretData := map[string][]byte{}
	secName := secretName(s.Name, b.d.SpecHash)
	var envs []*corev1ac.EnvVarApplyConfiguration
	for _, k := range sortedKeys(env) {
		v := env[k]
		if errs := validation.IsEnvVarName(k); len(errs) > 0 {
			return fmt.Errorf("env %q is not an environment variable name Kubernetes accepts: %s", k, strings.Join(errs, "; "))
		}
		if !v.IsSensitive() {
			envs = append(envs, corev1ac.EnvVar().WithName(k).WithValue(escape(v.Reveal())))
			continue
		}
		b.red.Add(v.Reveal())
		key := "env." + k
		if len(validation.IsConfigMapKey(key)) > 0 {
			key = keyOf("env-", k)
		}
		secretData[key] = []byte(v.Reveal())
		envs = append(envs, corev1ac.EnvVar().WithName(k).WithValueFrom(corev1ac.EnvVarSource().
			WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(secName).WithKey(key))))
	}

	// Command and args: a secret item is passed as $(TEND_ARG_<i>), which
	// Kubernetes expands from an env var that reads the Secret.
	vars := make(map[string]string, len(env))
	for k, v := range env {
		vars[k] = v.Reveal()
	}
	var argv []string
	items := append(append([]spec.Value(nil), s.Command...), s.Args...)
	for i, it := range items {
		val := providers.Expand(it.Reveal(), vars)
		if !it.IsSensitive() {
			argv = append(argv, escape(val))
			continue
		}
		if i == 0 && len(s.Command) > 0 {
			return errors.New("the program to run (the command's first item) must not be a secret")
		}
		b.red.Add(val)
		name := "TEND_ARG_" + strconv.Itoa(i)
		key := "arg." + strconv.Itoa(i)
		secretData[key] = []byte(val)
		envs = append(envs, corev1ac.EnvVar().WithName(name).WithValueFrom(corev1ac.EnvVarSource().
			WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(secName).WithKey(key))))
		argv = append(argv, "$("+name+")")
	}

	c := corev1ac.Container().WithName(containerName).WithImage(s.Image).WithEnv(envs...)
	if len(s.Command) > 0 {
		c.WithCommand(argv[:len(s.Command)]...)
		if len(argv) > len(s.Command) {
			c.WithArgs(argv[len(s.Command):]...)
		}
	} else if len(argv) > 0 {
		c.WithArgs(argv...)
	}
	if s.WorkDir != "" {
		if !path.IsAbs(s.WorkDir) {
			return fmt.Errorf("work_dir %q: a container's working directory must be absolute", s.WorkDir)
		}
		c.WithWorkingDir(s.WorkDir)
	}
	if s.User != "" {
		uid, gid, err := numericUser(s.User)
		if err != nil {
			return err
		}
		sc := corev1ac.SecurityContext().WithRunAsUser(uid)
		if gid >= 0 {
			sc.WithRunAsGroup(gid)
		}
		c.WithSecurityContext(sc)
	}

	var portAnn []string
	for _, p := range s.Ports {
		if p.Number < 1 || p.Number > 65535 {
			return fmt.Errorf("port %s: %d is not a port number", p.Name, p.Number)
		}
		cp := corev1ac.ContainerPort().WithContainerPort(int32(p.Number)).WithProtocol(corev1.ProtocolTCP)
		if len(validation.IsValidPortName(p.Name)) == 0 {
			cp.WithName(p.Name)
		}
		c.WithPorts(cp)
		b.ports[p.Name] = p.Number
		portAnn = append(portAnn, p.Name+"="+strconv.Itoa(p.Number))
	}
	b.annotations[AnnotationPorts] = strings.Join(portAnn, ",")

	if r := s.Resources; r != nil && (r.MilliCPU > 0 || r.MemoryBytes > 0) {
		// Requests equal limits: the pods are Guaranteed, and an HPA's
		// cpu_percent is a share of what was asked for.
		rl := corev1.ResourceList{}
		if r.MilliCPU > 0 {
			rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(r.MilliCPU, resource.DecimalSI)
		}
		if r.MemoryBytes > 0 {
			rl[corev1.ResourceMemory] = *resource.NewQuantity(r.MemoryBytes, resource.BinarySI)
		}
		c.WithResources(corev1ac.ResourceRequirements().WithLimits(rl).WithRequests(rl))
	}

	// Config files: the plain ones from a ConfigMap, the sensitive ones
	// from the Secret, each mounted at its path.
	cmData, cmBinary := map[string]string{}, map[string][]byte{}
	var cmItems, secItems []*corev1ac.KeyToPathApplyConfiguration
	seen := map[string]bool{}
	for _, f := range s.ConfigFiles {
		p := f.Path
		if !path.IsAbs(p) {
			if s.WorkDir == "" {
				return fmt.Errorf("config file %q: a relative path needs the server's work_dir on Kubernetes (the image's own working directory is not known before the pod starts)", f.Path)
			}
			p = path.Join(s.WorkDir, p)
		}
		p = path.Clean(p)
		if seen[p] {
			return fmt.Errorf("config file %s is declared twice", p)
		}
		seen[p] = true
		mode := int32(f.Mode)
		if mode == 0 {
			mode = 0o644
			if f.Content.IsSensitive() {
				mode = 0o600
			}
		}
		key := keyOf("f-", p)
		item := corev1ac.KeyToPath().WithKey(key).WithPath(key).WithMode(mode)
		volume := "tend-files"
		if f.Content.IsSensitive() {
			b.red.Add(f.Content.Reveal())
			secretData[key] = []byte(f.Content.Reveal())
			secItems = append(secItems, item)
			volume = "tend-secret-files"
		} else {
			if utf8.ValidString(f.Content.Reveal()) {
				cmData[key] = f.Content.Reveal()
			} else {
				cmBinary[key] = []byte(f.Content.Reveal())
			}
			cmItems = append(cmItems, item)
		}
		c.WithVolumeMounts(corev1ac.VolumeMount().WithName(volume).WithMountPath(p).WithSubPath(key).WithReadOnly(true))
	}
	if len(cmItems) > 0 {
		name := configMapName(s.Name, b.d.SpecHash)
		labels, ann := b.meta(nil)
		b.configMap = corev1ac.ConfigMap(name, b.ns).WithLabels(labels).WithAnnotations(ann)
		if len(cmData) > 0 {
			b.configMap.WithData(cmData)
		}
		if len(cmBinary) > 0 {
			b.configMap.WithBinaryData(cmBinary)
		}
		b.volumes = append(b.volumes, corev1ac.Volume().WithName("tend-files").
			WithConfigMap(corev1ac.ConfigMapVolumeSource().WithName(name).WithItems(cmItems...)))
	}
	if len(secItems) > 0 {
		b.volumes = append(b.volumes, corev1ac.Volume().WithName("tend-secret-files").
			WithSecret(corev1ac.SecretVolumeSource().WithSecretName(secName).WithItems(secItems...)))
	}
	if len(secretData) > 0 {
		labels, ann := b.meta(nil)
		b.secret = corev1ac.Secret(secName, b.ns).WithLabels(labels).WithAnnotations(ann).
			WithType(corev1.SecretTypeOpaque).WithData(secretData)
	}

	// Volumes: a PersistentVolumeClaim per server volume (shared by the
	// server's pods), or a host path.
	for _, v := range s.Volumes {
		vname := "vol-" + v.Name
		if len(validation.IsDNS1123Label(vname)) > 0 {
			vname = keyOf("vol-", v.Name)
		}
		if !path.IsAbs(v.Path) {
			return fmt.Errorf("volume %s: path %q must be absolute", v.Name, v.Path)
		}
		vol := corev1ac.Volume().WithName(vname)
		if v.Source != "" {
			vol.WithHostPath(corev1ac.HostPathVolumeSource().WithPath(v.Source))
		} else {
			claim := pvcName(s.Name, v.Name)
			if errs := content.IsDNS1123Subdomain(claim); len(errs) > 0 {
				return fmt.Errorf("volume %s: %q is not a claim name: %s", v.Name, claim, strings.Join(errs, "; "))
			}
			size := v.SizeBytes
			if size <= 0 {
				size = 1 << 30
			}
			labels, ann := b.meta(nil)
			delete(labels, providers.LabelSpecHash)
			delete(ann, providers.LabelSpecHash)
			delete(ann, providers.LabelRevision)
			delete(labels, providers.LabelVersion)
			delete(ann, providers.LabelVersion)
			b.pvcs = append(b.pvcs, corev1ac.PersistentVolumeClaim(claim, b.ns).WithLabels(labels).WithAnnotations(ann).
				WithSpec(corev1ac.PersistentVolumeClaimSpec().
					WithAccessModes(corev1.ReadWriteOnce).
					WithResources(corev1ac.VolumeResourceRequirements().WithRequests(corev1.ResourceList{
						corev1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI),
					}))))
			vol.WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(claim))
		}
		b.volumes = append(b.volumes, vol)
		c.WithVolumeMounts(corev1ac.VolumeMount().WithName(vname).WithMountPath(v.Path))
	}
	b.container = c
	return nil
}

// numericUser reads "UID" or "UID:GID"; gid is -1 when not given.
func numericUser(u string) (int64, int64, error) {
	name, group, hasGroup := strings.Cut(u, ":")
	uid, err := strconv.ParseInt(name, 10, 64)
	if err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("user %q: Kubernetes runs a container as a numeric user (\"1000\" or \"1000:1000\"), not a name", u)
	}
	gid := int64(-1)
	if hasGroup {
		if gid, err = strconv.ParseInt(group, 10, 64); err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("user %q: the group must be numeric", u)
		}
	}
	return uid, gid, nil
}

// podTemplate is the pod of the server's Deployment.
func (b *build) podTemplate() *corev1ac.PodTemplateSpecApplyConfiguration {
	ps := corev1ac.PodSpec().WithContainers(b.container)
	if len(b.volumes) > 0 {
		ps.WithVolumes(b.volumes...)
	}
	return corev1ac.PodTemplateSpec().
		WithLabels(b.podLabels).
		WithAnnotations(b.podAnnotations).
		WithSpec(ps)
}

// deployment is the server's Deployment with the given replica count;
// declared is the count tend records as its own.
func (b *build) deployment(replicas int32, declared int) *appsv1ac.DeploymentApplyConfiguration {
	s := b.d.Server
	labels, ann := b.meta(map[string]string{AnnotationReplicas: strconv.Itoa(declared)})
	labels[LabelRole] = roleServer
	ro := s.Rollout
	strategy := appsv1ac.DeploymentStrategy()
	if ro.Strategy == spec.StrategyRecreate {
		strategy.WithType(appsv1.RecreateDeploymentStrategyType)
	} else {
		mu, ms := ro.MaxUnavailable, ro.MaxSurge
		if mu.Value == 0 && ms.Value == 0 {
			mu = spec.IntOrPercent{Value: 1}
		}
		strategy.WithType(appsv1.RollingUpdateDeploymentStrategyType).
			WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
				WithMaxUnavailable(intOrPercent(mu)).
				WithMaxSurge(intOrPercent(ms)))
	}
	deadline := int32(600)
	if ro.ProgressDeadline > 0 {
		deadline = int32(max(1, math.Ceil(ro.ProgressDeadline.Seconds())))
	}
	return appsv1ac.Deployment(b.name, b.ns).
		WithLabels(labels).
		WithAnnotations(ann).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(b.selector)).
			WithStrategy(strategy).
			WithProgressDeadlineSeconds(deadline).
			WithTemplate(b.podTemplate()))
}

// canaryName is the Deployment that runs a server's canary replicas.
func canaryName(server string) string { return server + "-canary" }

// canaryDeployment is the Deployment of the first replicas of a canary
// rollout: the new spec's pod template, with the track label, so that its
// pods are the server's (the Service sends them their share) but no
// ReplicaSet of the server's own Deployment claims them.
func (b *build) canaryDeployment(replicas int32) *appsv1ac.DeploymentApplyConfiguration {
	labels, ann := b.meta(nil)
	labels[LabelRole] = roleCanary
	sel := map[string]string{LabelTrack: trackCanary}
	for k, v := range b.selector {
		sel[k] = v
	}
	tmpl := b.podTemplate()
	podLabels := map[string]string{LabelTrack: trackCanary}
	for k, v := range b.podLabels {
		podLabels[k] = v
	}
	tmpl.Labels = nil
	tmpl.WithLabels(podLabels)
	deadline := int32(600)
	if ro := b.d.Server.Rollout; ro.ProgressDeadline > 0 {
		deadline = int32(max(1, math.Ceil(ro.ProgressDeadline.Seconds())))
	}
	return appsv1ac.Deployment(canaryName(b.name), b.ns).
		WithLabels(labels).
		WithAnnotations(ann).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(sel)).
			WithStrategy(appsv1ac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)).
			WithProgressDeadlineSeconds(deadline).
			WithTemplate(tmpl))
}

func intOrPercent(v spec.IntOrPercent) intstr.IntOrString {
	if v.Percent {
		return intstr.FromString(strconv.Itoa(v.Value) + "%")
	}
	return intstr.FromInt32(int32(v.Value))
}

func (b *build) buildService() {
	s := b.d.Server
	if len(s.Ports) == 0 {
		return
	}
	labels, ann := b.meta(nil)
	labels[LabelRole] = roleServer
	sp := corev1ac.ServiceSpec().WithType(corev1.ServiceTypeClusterIP).WithSelector(b.selector)
	for i, p := range s.Ports {
		name := p.Name
		if len(validation.IsDNS1123Label(name)) > 0 {
			name = "port-" + strconv.Itoa(i)
		}
		sp.WithPorts(corev1ac.ServicePort().WithName(name).WithProtocol(corev1.ProtocolTCP).
			WithPort(int32(p.Number)).WithTargetPort(intstr.FromInt32(int32(p.Number))))
	}
	b.service = corev1ac.Service(b.name, b.ns).WithLabels(labels).WithAnnotations(ann).WithSpec(sp)
}

// buildAutoscaling builds the HorizontalPodAutoscaler from the scaling
// block, and the PodDisruptionBudget from max_unavailable when the server
// can have more than one replica.
func (b *build) buildAutoscaling() {
	s := b.d.Server
	labels, ann := b.meta(nil)
	if sc := s.Scaling; sc != nil {
		hs := autoscalingv2ac.HorizontalPodAutoscalerSpec().
			WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
				WithAPIVersion("apps/v1").WithKind("Deployment").WithName(b.name)).
			WithMinReplicas(int32(max(1, sc.Min))).
			WithMaxReplicas(int32(max(1, sc.Max)))
		if sc.CPUPercent > 0 {
			hs.WithMetrics(resourceMetric(corev1.ResourceCPU, sc.CPUPercent))
		}
		if sc.MemoryPercent > 0 {
			hs.WithMetrics(resourceMetric(corev1.ResourceMemory, sc.MemoryPercent))
		}
		for _, m := range sc.Metrics {
			// Served by a custom metrics adapter, such as the Prometheus
			// adapter, under the metric's name.
			hs.WithMetrics(autoscalingv2ac.MetricSpec().WithType(autoscalingv2.PodsMetricSourceType).
				WithPods(autoscalingv2ac.PodsMetricSource().
					WithMetric(autoscalingv2ac.MetricIdentifier().WithName(m.Name)).
					WithTarget(autoscalingv2ac.MetricTarget().WithType(autoscalingv2.AverageValueMetricType).
						WithAverageValue(*resource.NewMilliQuantity(int64(math.Round(m.Target*1000)), resource.DecimalSI)))))
		}
		beh := autoscalingv2ac.HorizontalPodAutoscalerBehavior()
		if sc.ScaleUpWindow > 0 {
			beh.WithScaleUp(autoscalingv2ac.HPAScalingRules().WithStabilizationWindowSeconds(int32(sc.ScaleUpWindow.Seconds())))
		}
		if sc.ScaleDownWindow > 0 {
			beh.WithScaleDown(autoscalingv2ac.HPAScalingRules().WithStabilizationWindowSeconds(int32(sc.ScaleDownWindow.Seconds())))
		}
		if beh.ScaleUp != nil || beh.ScaleDown != nil {
			hs.WithBehavior(beh)
		}
		b.hpa = autoscalingv2ac.HorizontalPodAutoscaler(b.name, b.ns).WithLabels(labels).WithAnnotations(ann).WithSpec(hs)
	}
	mu := s.Rollout.MaxUnavailable
	if mu.Value == 0 && s.Rollout.MaxSurge.Value == 0 {
		mu = spec.IntOrPercent{Value: 1}
	}
	if (s.Replicas > 1 || s.Scaling != nil) && mu.Value > 0 {
		pl, pa := b.meta(nil)
		b.pdb = policyv1ac.PodDisruptionBudget(b.name, b.ns).WithLabels(pl).WithAnnotations(pa).
			WithSpec(policyv1ac.PodDisruptionBudgetSpec().
				WithSelector(metav1ac.LabelSelector().WithMatchLabels(b.selector)).
				WithMaxUnavailable(intOrPercent(mu)))
	}
}

func resourceMetric(name corev1.ResourceName, percent int) *autoscalingv2ac.MetricSpecApplyConfiguration {
	return autoscalingv2ac.MetricSpec().WithType(autoscalingv2.ResourceMetricSourceType).
		WithResource(autoscalingv2ac.ResourceMetricSource().WithName(name).
			WithTarget(autoscalingv2ac.MetricTarget().WithType(autoscalingv2.UtilizationMetricType).
				WithAverageUtilization(int32(percent))))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
