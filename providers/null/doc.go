// Package null is a provider that runs nothing: starting a replica records
// it, stopping one removes its record, and observing lists the records,
// every one running. It is for what needs the whole engine but no backend:
// `tend plan` and `tend apply` of a repository in CI, and measuring tend
// from the command line on a fleet of thousands of servers.
//
// The records are files under the provider's directory in tend's state
// directory (providers/null.NAME): a snapshot and an append log, read once
// and kept in memory, read again only when another process changed them,
// so that a second tend process sees what the first applied. A change
// appends one line; the snapshot is rewritten only when the log has grown
// as long as it (see store).
//
// A null replica has no process, no address and no data: nothing answers a
// check, runs a hook or a backup command, or reports the resource use an
// autoscaler needs. The language refuses those blocks on servers of a null
// provider (spec), so nothing tend accepts goes without its effect. What
// the records hold (the identity, spec hash, version and ports) is what a
// plan compares, so a change of anything that would change a replica
// elsewhere (image, command, env, config files) is planned and applied as
// an update of the records. Nothing outside tend can change a record's
// replica, so Observe never reports drift or a crash.
//
// This package must not start processes or open network connections.
package null
