// Package approval decides whether a planned change may go: approval gates
// (which changes wait for a person's `tend approve`, and the hash that binds
// an approval to one change) and promotion rules (a version goes to this
// environment only after it was verified in another one, long enough ago).
//
// It reads the other environment's history (from that tend's HTTP API or
// its state store, read-only) and returns plain decisions with their
// reasons in words; the engine turns them into plan actions. It never
// changes the fleet and never writes to a store.
package approval
