// Package update is tend run's automatic updates: on each update block's
// schedule it resolves the servers that share the block's settings to the
// newest releases their constraints, the pins on them and their policies
// allow (versions.Update), and with commit = true it writes the upgraded
// lock file on top of a branch of the state repository and pushes the
// commit (source.Git.Commit), so the change goes through git like any
// other and reaches the fleet through the normal loop. Without commit it
// only reports.
//
// It returns plain data (Report): the loop logs it, notifies, and shows it
// in the status and the metrics. It must not apply anything to the fleet,
// write a worktree, or show a credential or the signing key: the key is
// read from the desired state's sensitive value and handed to the signer
// alone.
package update
