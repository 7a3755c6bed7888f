// Package kubernetes runs servers on a Kubernetes cluster through client-go,
// with server-side apply under the field manager "tend".
//
// # Objects
//
// Server S of the tend instance M, in the provider's namespace (created,
// labelled with M, when missing), is:
//
//   - the Deployment S: one container "server" with the image, command and
//     args, env, ports, resources (as limits and requests) and volume mounts
//     of the spec; replicas; strategy Recreate for strategy "recreate", else
//     RollingUpdate with max_unavailable and max_surge; progressDeadlineSeconds
//     from progress_deadline;
//   - the Service S (ClusterIP) for its ports, so that other servers reach it
//     at S:PORT; none without ports;
//   - the ConfigMap S-files-HASH with the plain config files, and the Secret
//     S-secret-HASH with the sensitive env values, the sensitive config files
//     and the sensitive command or args items, mounted at their paths (subPath
//     mounts) or read through secretKeyRef. HASH is the spec hash: each spec
//     has its own, so that the pods of a rollout's old ReplicaSet keep reading
//     theirs. Those no live ReplicaSet reads any more are deleted after a
//     start;
//   - the HorizontalPodAutoscaler S (autoscaling/v2) from the scaling block:
//     min (at least 1), max, cpu_percent and memory_percent as utilization of
//     the requests, custom metrics as Pods metrics of their name (served by a
//     custom metrics adapter), the scale windows as stabilization windows;
//   - the PodDisruptionBudget S, maxUnavailable = max_unavailable, when the
//     server may have more than one replica;
//   - a PersistentVolumeClaim S-VOLUME per volume (ReadWriteOnce, its size or
//     1Gi), shared by the server's pods, or a hostPath for a volume with a
//     source; claims are never deleted by tend;
//   - a Job S-task-XXXX per one-off task (hooks, migrations), deleted when it
//     ends.
//
// Every object carries tend's identity as labels (tend.dev/managed-by,
// server, spec-hash, version when it is a valid label value) and annotations
// (the same, and the revision, which label values cannot hold); a managed-by
// that is not a valid label value is a digest in the label and whole in the
// annotation. The Deployment, Service and PodDisruptionBudget select the pods
// labelled managed-by, server and tend.dev/role=server (a task's pods are
// role=task). The pod template carries the spec hash and the version, and
// the server's labels; a label whose key starts with "annotation:" is a pod
// annotation instead (labels = { "annotation:prometheus.io/scrape" =
// "true" }). The revision is not in the template: a revision that changes
// nothing else rolls no pod.
//
// Environment: the server's env, PORT, TEND_PORT_<NAME>, TEND_SERVER and
// TEND_VERSION; not TEND_REPLICA (a Deployment's pods have no number). tend
// expands $(NAME) itself and doubles every other '$', so Kubernetes' own
// expansion leaves values as tend made them. A relative config file path
// needs work_dir; user must be numeric ("1000" or "1000:1000").
//
// Before anything is applied, the spec is checked (labels, env names, paths,
// user) and every object about to be applied is read: one of the same name
// that is not this tend's is refused, never taken over.
//
// # Replicas
//
// Kubernetes runs a Deployment, not one object per replica. Replica i of S is
// the i-th live pod of the Deployment (pods not terminating, not finished),
// in a stable order: the current ReplicaSet's pods first, then the oldest
// first; replicas are numbered below the Deployment's replica count, and a
// replica whose pod does not exist yet is starting. Its ID is the pod's name
// (deployment/S#i without a pod), its Host the pod's IP, its Ports the
// declared container ports, its spec hash and version those of its pod.
//
// StartReplica(i) applies every object of the server with spec.replicas =
// max(replicas, i+1) (so the first replica the engine starts begins the
// Deployment's own rolling update of all of them), then waits until replica i
// is a ready pod of the current ReplicaSet, and returns it. It returns the
// replica in a failed state (missing, with the reason) when the Deployment
// reports ProgressDeadlineExceeded or ReplicaFailure, or the pod crash-loops
// or cannot start (image pull back-off, bad config); so verification rests on
// the rollout's progress even for a server without checks.
//
// StopReplica(i > 0) lowers the Deployment's replica count by one and gives
// that replica's pod the lowest pod-deletion-cost, so that the ReplicaSet
// removes it and no other. StopReplica(0) stands for the server: it deletes
// every tend-labelled object of S but its claims (the engine stops replica 0
// only when the server is pruned, recreated or moved).
//
// With a scaling block, the autoscaler owns the replica count: tend applies
// the live count (conditioned on the Deployment's resourceVersion, so that
// an autoscaler's change in between is not undone), and Observe lists at most
// the replicas the spec declares, so the engine never stops the pods the
// autoscaler added. Declare replicas = min (the default with a scaling block):
// a spec that declares more than the autoscaler keeps has replicas the
// engine sees missing and starts again.
//
// A canary rollout (strategy = "canary") cannot be held inside one
// Deployment, whose changed template rolls every pod. Its first replicas
// run in the Deployment S-canary (the new template, pods labelled
// tend.dev/track=canary, so that no ReplicaSet of S claims them; the
// Service selects them too, so they take their share of the traffic),
// while S keeps the old template with that many replicas fewer: starting
// replica i of a new spec, i not the last, makes S-canary i+1 pods and S
// replicas-(i+1). Starting the last replica promotes: S gets the new
// template and all its replicas, and S-canary is deleted. Any start of the
// spec S runs (a rollback, a heal) deletes a canary left behind. Observe
// numbers the canary's pods first. With a scaling block the autoscaler owns
// S's replica count, so a canary is refused when the spec is loaded.
//
// A rollback is the engine re-applying the last verified revision: the
// Deployment's template returns to what it was, and its controller scales the
// old ReplicaSet back up.
//
// # States
//
// A Ready pod is running (Restarts counts its containers' restarts);
// CrashLoopBackOff, or a container that exited at least twice, is crashing;
// ImagePullBackOff, InvalidImageName, CreateContainerConfigError and the like
// are missing with the reason; other pods are starting. A pod of the current
// ReplicaSet that is not ready when the rollout failed is missing, with the
// Deployment's condition as the message, so that verification fails at once.
// A Deployment scaled to 0 is one replica, exited.
//
// # Drift
//
// Only fields tend owns count. After every apply, tend records in the
// object's tend.dev/fields annotation a digest of its managedFields entry
// (manager tend, operation Apply). A person who changes a field tend set
// (kubectl edit, set env, set image, patch, or another applier forcing it)
// takes that field out of tend's entry: the digest differs, and every
// replica reports drift naming the manager and fields that changed. Fields
// the API server defaults, or that someone adds, are never in tend's entry,
// so they never show as drift. The Deployment, Service, ConfigMap, Secret,
// HorizontalPodAutoscaler and PodDisruptionBudget are compared. The replica
// count is compared by value (replicas is N, tend set M), except under an
// autoscaler. A pod changed by hand (kubectl set image pod/...) drifts alone;
// starting that replica again deletes the pod, and its ReplicaSet makes a new
// one from the template. Starting any replica re-applies the server, with
// force, which heals the rest.
//
// # Checks
//
// Host is the pod's IP. Outside a cluster that IP is rarely routable from
// tend, so by default (checks_via = "api-proxy", unless in_cluster = true)
// tend's http and mcp checks, and its contract reads, go through the API
// server's pod proxy (CheckRoute): a request for /path on port P of replica
// i goes to /api/v1/namespaces/NS/pods/POD:P/proxy/path (https:POD:P for an
// https check) on the API server, with the client's credentials. The API
// server's own refusals become errors that say so: it could not reach the
// pod (with its dial error), tend may not use pods/proxy, the pod is gone,
// the pod's address is not one it proxies to. What the pod answers passes
// through as it is, but for the Host header, which the proxy sets. With
// checks_via = "pod-ip", or in the cluster, checks go to the pod's IP, as
// tcp checks always do (the proxy carries HTTP only). Exec checks are
// refused (see Exec).
//
// # Capabilities
//
// Exec without a replica runs the command as a Job from the server's image
// with its env, files and volumes, waits for it to complete or fail, reads
// its exit code from the pod's status and its output from the pod's log
// (stdout and stderr together), and deletes it. With a replica it returns
// ErrNoPodExec: pod exec needs streaming protocols whose modules tend does not
// carry. Logs reads a replica's pod log. There is no Statser (the metrics API
// is the autoscaler's business) and no DataCopier.
//
// Nodes simulated by kwok (annotated kwok.x-k8s.io/node) serve no logs; Exec
// and Logs say so rather than asking the API server to reach them.
//
// # Access
//
// New reads nothing and contacts nothing: the first call builds the client,
// in-cluster (in_cluster = true: the pod's service account) or from the
// kubeconfig (kubeconfig, with ~ expanded, else KUBECONFIG, else
// ~/.kube/config) and context. tend needs, in its namespace: get, list,
// create, patch, delete of deployments, services, configmaps, secrets,
// persistentvolumeclaims, horizontalpodautoscalers, poddisruptionbudgets and
// jobs; get, list, patch and delete of pods, list of replicasets, get of
// pods/log; get, create and delete of pods/proxy (checks through the API
// server: GET, POST and DELETE requests); get and create of namespaces
// (optional) and get of nodes (optional).
//
// # What it must not do
//
// It never changes or deletes an object that does not carry its own
// managed-by, never puts a secret value anywhere but the Secret (not in a
// label, an annotation, the pod template, a ConfigMap or an error: errors are
// redacted against the server's secrets), and never deletes a claim.
package kubernetes
