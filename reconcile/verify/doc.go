// Package verify decides whether a change to a server worked.
//
// After the engine has changed a server, it hands Verify the server's checks
// (http, tcp, exec, mcp), the replicas to run them against and the rollout's
// verify_for and progress_deadline. Verify probes every check on every
// replica at the check's interval, each probe bounded by the check's
// timeout, and applies the success and failure thresholds. The change is
// verified once every (check, replica) has been passing, without a break,
// for verify_for. It is not verified when the deadline passes first (the
// reason names what each failing check saw), when a check that is failing
// has given the same definite answer (Definite: the replica answered, and
// waiting will not change what it said) Options.FailAfter times in a row,
// when the provider reports that a replica exited or crash-loops (through
// Options.Alive, asked on every tick, so that a dead replica fails
// verification at once rather than at the deadline), or when the context
// ends.
//
// NewProber builds the prober of one check on its own, for callers that
// probe outside a verification (a drift check, a status command).
//
// What verify must not do:
//
//   - call a provider of its own: it reaches replicas only at the addresses
//     the caller gives, runs exec checks only through the caller's ExecFunc,
//     and learns about dead replicas only through the caller's Alive;
//   - keep state: nothing survives a call of Verify, nothing is written to
//     disk, every probe opens its own connections;
//   - show a secret: header values, sensitive command arguments and
//     sensitive smoke-call arguments are revealed only to send them, and
//     never appear in a result message or a reason;
//   - import another package of tend than spec.
package verify
