// Package process is tend's process provider: it runs each replica of a
// server as a local process, watched by a supervisor process of its own
// that outlives the short-lived `tend apply` which started it.
//
// # Directory layout
//
// The provider keeps everything under its root: the provider block's
// work_dir, or else STATE_DIR/providers/process.NAME. Each replica has an
// instance directory, ROOT/MANAGEDBY/SERVER/REPLICA/ (mode 0700):
//
//	spec.json        what the supervisor runs: identity, argv, env file name,
//	                 work dir, stop timeout. No secret values: an argv item
//	                 that is (or expands a) sensitive value is "(sensitive)"
//	                 here, and the real argv is in argv (0600).
//	env              the replica's environment, a JSON object (mode 0600)
//	argv             the real argv, only when it holds secrets (mode 0600)
//	identity.json    the identity, ports, volumes, resources, and the sha256
//	                 digests of each config file and of env (for drift)
//	status.json      written by the supervisor (temp file + rename) on every
//	                 change: pids, child start time, state, restarts, last
//	                 exit code and time, a message
//	supervisor.pid   written once the supervisor is started
//	supervisor.log   the supervisor's own output (never secret values)
//	halted           written by Halt, removed by Resume
//	stdout.log       the child's output, appended, rotated to .1 past 10 MiB
//	stderr.log
//	work/            the child's working directory; config files are
//	                 written here (relative paths only), a sensitive one
//	                 with mode 0600
//
// Provider-managed volumes live in ROOT/MANAGEDBY/SERVER/volumes/NAME-REPLICA
// (or at the volume's source), outlive the instance directory, and reach the
// replica as TEND_VOLUME_<NAME>. Exec without an instance works in a
// temporary directory under ROOT/.tasks, removed afterwards.
//
// # The supervisor
//
// StartReplica runs `PROGRAM __tend-supervise INSTANCE_DIR`, in a session
// of its own (so that it survives tend), with stdin /dev/null, its output
// to supervisor.log and a minimal environment (tend's own environment may
// hold TEND_SECRET_*). PROGRAM is tend-supervise when it lies beside
// tend's executable (symbolic links resolved; make build and go install
// github.com/tendhq/tend/cmd/... put it there): a binary of package
// supervisor alone, which costs each replica about 1.4 MiB of private
// memory. Otherwise PROGRAM is this same executable, and MaybeSupervise,
// called first thing by tend's main and by test binaries' TestMain, turns
// the process into the supervisor; it runs the same code, but every
// package tend links is initialised in it, about 6.4 MiB of private memory
// a replica. spec.json records PROGRAM, and the protocol of spec.json
// (supervisor.Protocol): a tend-supervise older than the tend that
// started it refuses a newer spec, and the start fails saying so. (Run as
// a systemd service, tend needs KillMode=process, or stopping tend stops
// its replicas too.)
//
// The supervisor starts the child in its own process group, with exactly
// the environment of the env file, in work/ (or the server's relative
// work_dir inside it). When the child exits, for any reason, the rest of its
// process group is killed and it is restarted after a backoff of 0.5 s,
// 1 s, 2 s … up to 30 s, back to 0.5 s once a run lasted 60 s. States:
// "starting" until the child has been up 1 s, then "running"; "exited"
// between a death and the restart; "crashing" while 3 or more exits fall
// within the last 60 s. On SIGTERM (or SIGINT) it sends SIGTERM to the
// child's group, SIGKILL after the stop timeout (or the grace StopReplica
// wrote to stop.json), writes a final status and exits 0. Should its
// instance directory disappear (tend's state directory deleted, say), the
// replica outlives tend's bookkeeping: the supervisor keeps the child
// running (it still stops it on SIGTERM), and exits only once the child
// has exited, since it could not start it again without its files.
//
// # Observing and stopping
//
// An instance's ID is its supervisor's pid, which stays the same across
// restarts of the child.
//
// Observe reads identity.json and status.json of every instance and checks
// /proc: a supervisor counts as alive only if its pid runs with exactly the
// command line PROGRAM __tend-supervise INSTANCE_DIR (PROGRAM being the
// one recorded in spec.json, the one this tend would run, or this
// executable), which guards against pid reuse. A dead supervisor makes the
// instance "missing". Drift is reported when a config file or the env file
// no longer matches its digest, or the child's /proc/PID/cmdline differs
// from the recorded argv (a program that rewrites its own process title
// shows as drift).
//
// A supervisor of this user whose command line names an instance directory
// under the root that has no spec.json any more runs a replica tend lost
// track of. Observe then fails with ErrLost, naming the removed directory,
// each such replica with its pids, and the way out (put the directory back
// from a backup, or kill the supervisors and apply again), beside the
// instances it found; StartReplica refuses to start a replica beside one,
// and refuses to go on once the state directory or the root it first saw
// was removed; StopReplica does not report one stopped. Observe and
// StartReplica read every process's command line for this only when the
// provider has not looked yet, the managed-by directory is gone or
// another since it last looked, or it found lost replicas then: a fleet's
// starts and checks do not each read all of /proc.
//
// StopReplica sends SIGTERM to the supervisor, waits the grace plus 3 s,
// then SIGKILLs the supervisor and the child's process group, and removes
// the instance directory. The child counts as the instance's only if it
// leads its process group and its parent is the supervisor, or (once
// orphaned) its working directory is inside the instance directory or its
// command line is the recorded one.
//
// Halt (providers.Halter, for restores) stops the supervisor and the child
// exactly as StopReplica does but keeps the instance directory, and writes
// halted there: Observe then reports the instance as exited ("halted by
// tend"), and CopyIn and CopyOut, which find the volumes through
// identity.json, work on it. Resume removes the last status.json and
// spawns a supervisor for the same directory, as StartReplica does, so the
// replica keeps its identity, files and volumes (its ID, the supervisor's
// pid, changes); an instance whose supervisor runs is left alone.
//
// RemoveVolumes (providers.VolumeRemover, for the throw-away replicas of
// restore drills) deletes ROOT/MANAGEDBY/SERVER/volumes/NAME-REPLICA of
// each volume without a source, and the server's directory once empty; it
// refuses while the replica's instance directory exists.
//
// # Commands
//
// argv is command and args with $(NAME) expanded from the replica's
// environment. A program path containing "/" that is relative is resolved
// against tend's current directory when StartReplica runs (run tend from
// the state repository for "./bin/server" to mean the repository's), and
// the absolute path is stored; a bare name is looked up in the replica's
// PATH.
//
// The replica's environment is providers.ReplicaEnv, TEND_VOLUME_<NAME>
// for each volume, and, unless env sets them, PATH, HOME, USER, LOGNAME,
// SHELL, LANG, LC_ALL, TZ and TMPDIR from tend's environment. Nothing else
// of tend's environment is passed on.
//
// # What it must not do
//
// It never signals a process whose /proc entry does not prove it is one of
// this instance's (a process not started by tend is never touched), never
// writes outside its root and the volumes' directories, and never shows a
// sensitive value: not in spec.json, identity.json, status.json, logs of its
// own, drift messages or errors (errors are redacted against the replica's
// secrets). It does not switch users (user must be tend's own), download
// artifacts, accept an absolute work_dir or config file path, or enforce
// resources; resources only scale the percentages Stats reports.
package process
