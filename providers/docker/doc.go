// Package docker runs servers as containers on a Docker Engine, through the
// Engine API and its official Go client.
//
// # Objects
//
// Replica i of server S, owned by the tend instance M, is the container
// named M.S.i (characters Docker refuses in a name become "-"). It carries
// tend's identity as labels (tend.dev/managed-by, server, replica,
// spec-hash, revision, version), the server's own labels, and
// tend.dev/expect: what tend set on the container that Docker lets a person
// change afterwards (resources, restart policy, networks, config files).
// Observe lists every container of M in one call with a label filter, then
// inspects each to read its state, restart count and drift.
//
// From the server spec:
//
//   - image: the image reference (a tag, or a digest with @sha256:), got
//     according to the provider's pull_policy (missing, always, never),
//     with the credentials of the provider's registry block for the image's
//     registry, else of a Docker CLI config.json (docker_config,
//     $DOCKER_CONFIG/config.json, ~/.docker/config.json): its auths, else
//     its credential helper (docker-credential-NAME get); a failed pull says
//     which credentials it used;
//   - command and args replace the image's entrypoint and cmd (args alone
//     replace the cmd), with $(PORT) and friends expanded;
//   - ports: the container listens on each declared port; replica i's port
//     is published on publish_address (default 127.0.0.1) at port + i, and
//     tend's checks reach it there;
//   - env: the server's env plus PORT, TEND_PORT_<NAME>, TEND_SERVER,
//     TEND_REPLICA and TEND_VERSION; inside the container PORT is the
//     declared port;
//   - config files are copied into the container (archive API) before it
//     starts, with their mode, at a fixed modification time so that an edit
//     by hand shows as drift;
//   - volumes: a named volume M.S.NAME.i per replica (kept when the replica
//     is replaced or stopped, so data outlives releases), labelled with
//     tend's identity (managed-by, server, replica), or a bind mount of the
//     volume's source;
//   - resources: cpu → NanoCPUs, memory → Memory;
//   - restart_policy (default unless-stopped), network (created when
//     missing; the container is reachable there under the server's name),
//     user and work_dir.
//
// # Replacing a replica
//
// StartReplica refuses what it can before it touches the running replica:
// the image is got and inspected, the network and volumes are made, and the
// new container is created (under M.S.i.next) with its config files. Only
// then is the old container stopped and the new one started. When the new
// one cannot start (a port taken by something else, say), it is removed and
// the old one is started again, so a failed replace leaves the replica as
// it was. Then the old container is removed and the new one renamed. A
// container already as tend would create it, running and without drift, is
// left alone.
//
// # Drift
//
// Docker cannot change a container's image, command, env, ports or mounts
// after it is created; the spec hash covers those. What a person can change
// is compared: cpu and memory limits and the restart policy (docker update),
// the name (docker rename), the networks (docker network connect or
// disconnect), a paused container, and the config files' size, mode and
// modification time (an edit through docker exec or docker cp).
//
// # Capabilities
//
// Exec runs a command in a replica (docker exec), or, with no replica, as a
// one-off container from the server's image with its env, config files and
// network (hooks, migrations). Stats reads the Engine's stats API. Logs
// tails the container's output. CopyOut and CopyIn move a volume's content
// as a tar stream through the archive API, on a running container or a
// halted one.
//
// CopyIn merges: it extracts over what is there, and files of the volume
// that are not in the stream stay, so a restore brings back every file of
// the backup but leaves a file made since. The Engine API cannot delete a
// file in a volume: the archive API only adds and replaces (whiteout
// entries are extracted as plain files), and emptying the volume first
// takes a process in a container that mounts it: rm run by docker exec in
// the replica, or a throw-away container of some image, which works only
// when that image has such a program (a distroless or scratch image has
// none). tend does not depend on that.
//
// Halt (providers.Halter, for restores) stops every container of the
// replica as docker stop does, with the grace, and keeps them and their
// volumes; Observe reports the replica exited. A container stopped so is
// not started by its restart policy, except "always" when the Engine
// restarts. Resume starts the same container again (docker start): its ID,
// name, labels, config files and volumes are those it had.
//
// RemoveVolumes (providers.VolumeRemover, for the throw-away replicas of
// restore drills) removes the named volumes M.S.NAME.i of the replica
// (never a bind mount's source), only those labelled as this tend's and
// that server's (and that replica's: volumes an older tend made have no
// replica label); it refuses while the replica has a container or any
// container uses the volume, and a volume already gone is fine.
//
// Secret values of env and config files are given to the Engine (Docker has
// no other way to pass them to a container without swarm), so anyone who
// may inspect the containers sees them; tend never prints them.
package docker
