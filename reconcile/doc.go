// Package reconcile is tend's engine: it observes the fleet, plans the
// difference to the desired state, and applies the plan wave by wave through
// the providers, verifying every change and rolling back by itself when
// verification fails.
//
// The flow is plain function calls on plain data:
//
//	LoadSource → Engine.Observe → BuildPlan → Engine.Apply → verify → record
//
// BuildPlan is pure: it reads no files and calls no provider, so a plan can
// be golden-tested, saved as JSON, and compared with a fresh one before it
// is applied (CheckSaved). Apply records each server's outcome in the state
// store as soon as the server is done, so an apply that dies half way leaves
// a record that the next apply converges from.
//
// A revision that fails verification is held (keyed by the server's desired
// state): later plans do not apply it again until the desired state changes
// or a person runs `tend retry`. A manual rollback holds the state it rolled
// back from, for the same reason: the sync must not undo it.
//
// This package owns ordering, rollout strategies, verification, rollback and
// history. It must not talk to a backend except through providers, and it
// must never print or log a secret value: plans carry fields, whose
// sensitive values are "(sensitive)".
package reconcile
