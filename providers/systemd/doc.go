// Package systemd runs servers as systemd service units, one unit per
// replica, through systemd's D-Bus API (github.com/coreos/go-systemd/v22/dbus).
//
// # Units
//
// Replica i of server S, owned by the tend instance M, is the unit
//
//	tend.M.S.i.service
//
// in the provider's unit_dir (default /etc/systemd/system, or
// ~/.config/systemd/user with user_mode). M and S are encoded: letters,
// digits and '-' stay, every other byte becomes _XX (hex). Encoded names
// hold no '.', so the parts cannot run into each other: two tends never
// share a unit name, and the pattern tend.M.*.service matches the units of
// M only (not those of M-2). Tasks are transient units named
// tend-task.M.S.ID.service, which that pattern does not match.
//
// The unit file carries tend's identity in an [X-Tend] section (systemd
// ignores sections whose name starts with X-): ManagedBy, Server,
// Replica, SpecHash, Revision, Version, Provider, Ports (name=port,...) and
// Artifact (the version directory it runs from). A unit file without that
// section, or whose ManagedBy is another's, is not tend's: Observe does not
// list it, StartReplica refuses to overwrite it, StopReplica leaves it.
//
// From the server spec:
//
//   - ExecStart: command and args with $(NAME) expanded, every item quoted
//     (no $VAR expansion or specifiers by systemd). The program is made
//     absolute: a relative path resolves against the artifact's version
//     directory when the server has an artifact, else against tend's
//     working directory (with a slash) or PATH (a bare name). An item that
//     is or uses a secret is written as ${TEND_ARG_<i>}, whose value is in
//     the environment file; a secret program is refused;
//   - Environment=: the replica's environment (providers.ReplicaEnv, plus
//     TEND_VOLUME_<NAME>) without its secrets; EnvironmentFile=: the
//     secrets, in STATE/.../env, mode 0600. Nothing else of tend's
//     environment is passed on;
//   - WorkingDirectory: an absolute work_dir as it is; a relative one inside
//     the replica's own directory, STATE/.../work (the default). Config
//     files with a relative path are written there, absolute ones where
//     they say (and are left when the replica stops); a secret one with
//     mode 0600;
//   - User: the server's user, or the provider's; the working directory,
//     config files and volumes are given to that user. tend's state
//     directory must then be traversable by it (o+x). In user_mode no user
//     other than tend's own is accepted;
//   - resources: cpu → CPUQuota (1000 milli-CPU = 100%), memory →
//     MemoryMax; CPUAccounting and MemoryAccounting are on;
//   - Type=exec, Restart=always, RestartSec=1, StartLimitIntervalSec=30,
//     StartLimitBurst=5, TimeoutStopSec=10s; [Install] WantedBy=
//     multi-user.target (default.target in user_mode), linked in like
//     systemctl enable, so that replicas come back after a reboot;
//   - ports: host networking; replica i listens on port+i, and checks reach
//     it at 127.0.0.1.
//
// # Files
//
// The provider keeps its own files under STATE_DIR/providers/systemd.NAME,
// in M/S/i/ per replica (names encoded): record.json (the identity, unit
// and file paths, ports, volumes, resources, the environment without its
// secrets, and the sha256 of the unit file, the environment file and each
// config file as written), env (the EnvironmentFile, 0600) and work/.
// Provider-managed volumes are M/S/volumes/NAME-i (or the volume's source)
// and outlive the replica.
//
// # Starting and stopping
//
// StartReplica refuses what it can before it touches the running replica:
// the spec (paths, user, variable names), the artifact (downloaded and
// checked), the program (it must exist) and the unit file (rendered). A
// unit already as tend would write it, running and without drift, is left
// alone (when only the [X-Tend] section differs, such as the revision, the
// file is rewritten and systemd reloaded, without a restart). Otherwise it
// writes the files, runs daemon-reload, checks that systemd loaded the
// unit, resets its failed state and start rate limit (tend's own restarts
// are not a crash loop), restarts it (RestartUnit, "replace") and waits up
// to 2 s for it to be active or failed.
//
// StopReplica stops the unit (systemd sends SIGTERM, and SIGKILL after
// TimeoutStopSec), SIGKILLs what is left after the request's grace when
// that is shorter, removes the unit file, its wants link, the environment
// file, the record and the work directory, and runs daemon-reload. Volumes
// are kept.
//
// Halt (providers.Halter, for restores) stops the unit as StopReplica does
// but keeps everything else: the unit file (still enabled, so a reboot
// starts it), the record, the environment file, the work directory and the
// volumes' host directories; CopyIn and CopyOut, which find the volumes
// through the record, work on it, and Observe reports it exited
// (inactive). Resume resets the unit's failed state and start rate limit
// and starts the same unit again (StartUnit, "replace"), waiting for it as
// StartReplica does; a unit that is active or activating is left alone.
//
// RemoveVolumes (providers.VolumeRemover, for the throw-away replicas of
// restore drills) deletes M/S/volumes/NAME-i of each volume without a
// source, and the server's directory once empty, never following a link
// the replica's user left in it; it refuses while tend has a record of the
// replica, its unit file is there or its unit is active.
//
// # Observing
//
// Observe reads the unit files of the pattern tend.M.*.service in the unit
// directory and the provider's records (so that a unit whose file was
// removed by hand is still listed, and can be pruned), lists the units of
// the pattern in one ListUnitsByPatterns call (every state), and reads the
// unit and service properties of each loaded unit: ActiveState, SubState,
// Result, MainPID, NRestarts, ExecMainCode/Status, ExecMainStartTimestamp,
// DropInPaths, FragmentPath, NeedDaemonReload.
//
// States: active is running; activating/auto-restart (between a death and
// systemd's restart) is starting, or crashing once NRestarts is 2 or more;
// other activating states are starting; deactivating is exited ("stopping");
// failed is crashing when systemd gave up restarting it (start-limit-hit),
// else exited with the main process's exit code (128+N for signal N);
// inactive is exited; a unit systemd no longer finds, whose file is gone,
// is missing. Restarts is NRestarts. The instance's ID is the unit name.
//
// Drift: the unit file, the environment file (and its mode) and each config
// file (content and mode) no longer match the digests recorded when they
// were written; drop-ins that change the unit; systemd loading the unit
// from another file; a daemon-reload due. A unit that is not active when
// it should run shows in its state, not as drift.
//
// # Artifacts
//
// A server with an artifact is downloaded (http, https or file URL) into
// artifact_dir/S/VERSION (default /opt/tend): into a temporary directory
// beside it, checked against its sha256, unpacked when extract is set
// (.tar.gz or .zip, told apart by content; no entry may leave the
// directory), or kept under the URL's last path element (mode 0755), then
// renamed into place with a marker file (.tend-artifact.json) that records
// the digest. A version directory whose marker has the digest is used as it
// is, so a rollback downloads nothing. After a start, the versions of S
// beyond the keep_artifacts (default 3) used last are removed, never one
// that a unit file in the unit directory names.
//
// # Capabilities
//
// Exec runs a task as a transient service unit (Type=exec,
// RemainAfterExit) with the replica's environment (its secrets through an
// environment file), working directory and user; without an instance, in a
// fresh working directory holding the server's config files, with replica
// 0's environment and volumes (hooks, migrations). Its output goes to
// files (StandardOutputFile/StandardErrorFile) copied to the caller when it
// ends; its exit code is the main process's. A context that ends kills it.
// Stats samples the unit's CPUUsageNSec over 200 ms and MemoryCurrent (the
// main process's /proc figures where cgroup accounting is missing). Logs
// runs journalctl -u UNIT -o cat. CopyOut and CopyIn move a volume's
// host directory as a tar stream (CopyIn replaces its content).
//
// # D-Bus
//
// New does not connect. The first call that needs systemd connects to the
// system bus (as root without a bus daemon, to /run/systemd/private), or
// in user_mode to the session bus, and keeps the connection; a host
// without systemd is an error that says so.
//
// # What it must not do
//
// It never stops, rewrites or removes a unit whose file does not carry its
// own identity (or that it has no record of), never writes a secret into a
// unit file, a record, systemd's properties or an error (errors are
// redacted against the replica's secrets), and never writes outside the
// unit directory, its state directory, the artifact directory, the
// volumes' directories and the absolute config file paths a spec names.
package systemd
