// Package source is tend's git source: it fetches the desired state (a
// directory of HCL files) of one ref of one git repository and hands it back
// as plain data, a Snapshot of file contents keyed by slash-separated path.
//
// A Git keeps a bare clone of the remote in its CacheDir and brings it up to
// date incrementally. Each Fetch first asks the remote for its refs (one
// ls-remote round trip); when the ref still points where it pointed at the
// last snapshot, nothing is fetched and the last snapshot is returned with
// changed=false. Otherwise only the one ref is fetched, forced, so a branch
// whose history was rewritten by a force-push is followed too.
//
// Refs are a branch ("main", "branch:main"), a tag ("tag:v1.2.0"), the newest
// tag in a semver range ("semver:>=1.2.0 <2.0.0") or a pinned commit
// ("commit:<40 hex>"). With a Keyring, the commit (branch and commit refs) or
// the annotated tag (tag and semver refs; a lightweight tag falls back to its
// commit) must carry a valid OpenPGP signature by one of the keyring's keys.
//
// Commit writes files on top of a branch and pushes the commit (tend
// run's automatic updates of the lock file): it builds the blobs, trees and
// commit in the bare cache, signs the commit when given a key, and pushes
// over the same transport and credentials, refusing to overwrite a branch
// that moved since its fetch; a rejected push is tried once more after a
// fresh fetch (*PushRejectedError when that fails too). A local remote is
// pushed to in-process, object by object, with a compare-and-set of the
// ref.
//
// Errors are typed so that the caller can keep serving the last good
// revision: *UnreachableError (network, authentication, timeout),
// *RefError (the ref does not exist), *SignatureError, *PathError and
// *SizeError. After a restart with the remote down, Cached returns the last
// snapshot this cache served, without touching the network.
//
// What this package must not do:
//
//   - log or return credentials: it logs nothing, Remote strips userinfo from
//     the URL, and every error text is scrubbed of the password, token and
//     key passphrase;
//   - write a worktree: files are read straight from git objects in the bare
//     cache, never checked out to disk;
//   - run the git CLI: everything goes through go-git, including local
//     (file://) remotes, which are copied object by object in-process
//     instead of through go-git's file transport, which would exec
//     git-upload-pack;
//   - skip host key checking: ssh remotes need a known_hosts file;
//   - import other packages of this module: it returns plain data.
package source
