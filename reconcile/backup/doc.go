// Package backup keeps the data of tend's servers safe: it writes a
// server's backup as one archive (the data paths its provider copies out,
// and the output of its dump command) with a manifest, to a destination (a
// directory or an S3-compatible object store), reads it back for a restore,
// and decides which backups retention removes.
//
// An archive is a gzip-compressed tar stream, encrypted with age when the
// backup block gives an encryption_key. Its first entry, tend-backup.json,
// is the manifest; data path P is under data/P/; the dump is command.out.
// Next to the archive SERVER/ID.tar.gz (".age" appended when encrypted) the
// destination holds SERVER/ID.json, the manifest with the archive's size
// and sha256: written last, it says the archive is whole, and it is all a
// fresh tend needs to find the backup again (Sync).
//
// This package decides and moves bytes; it does not stop replicas, run
// checks or record anything: the engine (reconcile) does that through its
// one path for changes, and the catalog lives in reconcile/state. It never
// writes a credential or an encryption key anywhere.
package backup
