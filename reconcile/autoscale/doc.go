// Package autoscale decides how many replicas a server with a scaling block
// should run, the way the Kubernetes Horizontal Pod Autoscaler decides it,
// for the providers that have no autoscaler of their own (process, systemd,
// docker).
//
// It has two halves that meet in plain data:
//
//	Sampler.Sample (I/O: provider stats, Prometheus text over HTTP) → []Sample
//	Recommender.Decide (no I/O: arithmetic and a little memory)     → Decision
//
// Decide is the HPA's arithmetic (k8s.io/kubernetes
// pkg/controller/podautoscaler: replica_calculator.go and horizontal.go):
//
//   - Per metric, the ratio of the ready replicas' average to the target;
//     within the tolerance (|ratio−1| ≤ 0.1) the metric asks for no change.
//   - A ready replica whose value is missing counts, when the others ask to
//     scale down, as using the target (a custom metric) or 100% of its limit
//     (cpu and memory, as the HPA counts 100% of the request); when they ask
//     to scale up, as using nothing. A replica that is not ready counts as
//     using nothing on a scale-up and not at all on a scale-down. When these
//     fillings turn the direction around or bring the ratio within the
//     tolerance, the metric asks for no change.
//   - The metric asks for ceil(ratio × counted replicas); the largest ask of
//     all metrics wins. A metric without samples asks for nothing, and while
//     any metric lacks samples the server is not scaled down.
//   - The stabilization windows: a scale-up takes the smallest ask of the
//     last scale_up_window, a scale-down the largest ask of the last
//     scale_down_window (stabilizeRecommendationWithBehaviors).
//   - The bounds min and max, then a rate limit per decision: at most double
//     up, at most halve down. A count outside the bounds moves into them at
//     once.
//
// Every Decision says in words why it is what it is (Reason) and which limit
// held it back (Limits), for `tend status` and the logs.
//
// This package must not change replica counts: the caller applies a
// Decision through the engine, which owns rollouts and history. It keeps
// the asks of the windows in memory only: a new Recommender (tend
// restarted) has no history, and its first decision for a server is not
// held by a window. It must never log: it returns data.
package autoscale
