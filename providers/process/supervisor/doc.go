// Package supervisor is the supervisor of one replica of the process
// provider: it starts the replica's program, restarts it when it exits,
// records how it ended in status.json, and stops it on SIGTERM. The
// provider (package process) writes the instance directory it reads and
// starts it as `PROGRAM __tend-supervise INSTANCE_DIR`, in a session of its
// own so that it outlives tend; package process documents the directory
// and the behaviour.
//
// A supervisor runs for as long as its replica does, one per replica, so
// what it costs is paid as many times as replicas run. PROGRAM is
// tend-supervise (cmd/tend-supervise) when it lies beside tend: a binary
// of this package alone, about 1.4 MiB of private memory (1.36 MiB each,
// measured over 500 of them), where tend itself, whose every package is
// initialised before main runs (client-go, the Docker and S3 clients, and
// the rest), costs about 6.4 MiB. Otherwise it is tend, which calls
// MaybeRun (through process.MaybeSupervise) first thing.
//
// # What it must not do
//
// It imports the standard library and providers/internal/hostfs only:
// every package it links adds to the memory of each supervisor. It never
// writes a secret value (those of the env file, and the argv items that
// spec.json marks sensitive) to its log or to status.json.
package supervisor
