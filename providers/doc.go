// Package providers defines the contract between tend's engine and the
// backends that run servers (process, systemd, docker, kubernetes), and the
// registry that builds providers from a configuration's provider blocks.
//
// The engine owns everything that is the same for every backend: ordering,
// rollout strategy, verification, rollback, history, secrets. A provider
// owns only the translation between one server's replicas and its backend's
// native objects: it observes what tend owns (in bulk), reports drift from
// what it would create, starts and stops one replica, and optionally runs
// one-off tasks, reports resource use, copies data and shows logs.
//
// Every object a provider creates carries tend's identity (managed-by,
// server, replica, spec hash, revision, version). A provider finds objects
// by that identity and never touches an object it does not own.
//
// This package must not import reconcile/...: providers know nothing of
// plans, history or rollouts.
package providers
