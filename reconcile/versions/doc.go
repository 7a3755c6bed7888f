// Package versions resolves version constraints to releases: it lists the
// releases of a server's release source (the tags of an OCI image
// repository, the tags of a git repository, a directory of builds, an HTTP
// JSON index), picks the newest that the server's constraint and every
// requires pin of the other servers allow (Resolve, pure arithmetic), and
// builds the lock file (spec.Lock) that loads read the versions from. It
// also compares what runs, what is locked and what is released (Outdated).
//
// It must not be needed at plan or apply time: spec resolves a constraint
// from the lock file alone, with no network. Only tend lock (and
// tend lock -check, tend outdated) reach the sources. It never prints a
// credential: registry credentials come from the Docker CLI's config
// (authn.DefaultKeychain), and URLs lose their user information in errors.
package versions
