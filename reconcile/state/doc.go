// Package state is tend's durable record of what it did to each server.
//
// A Store is one SQLite file (modernc.org/sqlite, no cgo) per tend
// installation, or a PostgreSQL database (OpenPostgres, through pgx) that
// several tends on several hosts share: the same tables, from the same
// numbered migrations in PostgreSQL's types, behind the same methods. It
// keeps:
//
//   - revisions: every revision tend applied to a server, with its source
//     revision, spec hash, version, redacted spec, trigger and outcome, for
//     history, audit and rollback (BeginRevision, FinishRevision, History,
//     LatestAll, LastVerifiedAll, MarkInterrupted);
//   - holds: revisions that failed verification, so that the engine does not
//     re-apply a bad revision in a loop (PutHold, Holds, ClearHolds);
//   - sources: gzip-compressed snapshots of the desired-state source files,
//     keyed by the caller's revision string, so that a rollback can re-load
//     an old revision (PutSource, GetSource);
//   - the apply lock, so that two applies never interleave, with takeover of
//     expired locks and of locks whose holder process is gone (Lock, Lease,
//     LockHolder, ForceUnlock). On PostgreSQL it is a session-scoped
//     advisory lock held by the lease's own connection, so a tend that dies
//     (kill -9, its host lost) frees it when its connection ends, on any
//     host; the lock row beside it says who holds it.
//
// A store knows who it is: Open gives a new store a random identity, kept
// in the database and in a marker file beside it (state.db, state.id), and
// refuses a database that is missing, empty or another store's while the
// marker names one, instead of starting a new, empty store without a word.
// A file SQLite finds malformed is refused with ErrDamaged and the way out,
// on open, in any read or write, and by QuickCheck (every page; the CLI runs
// it for the commands that write); Inspect is the full check of tend store
// check and changes nothing. A write to a store whose file was removed or
// replaced since Open (the state directory deleted under a running tend)
// is refused with ErrStoreRemoved: SQLite would write on into the deleted
// file, and everything recorded from then on would be lost.
//
// Every write is one short transaction (BEGIN IMMEDIATE); nothing ever
// rewrites the whole store. The schema is versioned in schema_migrations and
// migrated forward by Open; a store written by a newer tend is refused rather
// than guessed at. Times are stored in UTC, as fixed-width RFC 3339 text with
// nanoseconds, and come back in UTC.
//
// What state must not do:
//
//   - decide anything: it does not know what a good revision is, when to roll
//     back, when a hold should be lifted or whether a spec changed; it stores
//     what the engine tells it and answers queries, nothing more;
//   - hold a secret: specs arrive already redacted by the caller, and source
//     snapshots hold HCL text, never resolved secret values; the file is
//     created 0600 in a 0700 directory all the same;
//   - import another package of tend: it is plain storage, usable from the
//     engine, the CLI and tests alike.
package state
