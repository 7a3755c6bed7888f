#!/usr/bin/env bash
# Makes a Docker Engine available to the tests on this machine:
#
#   hack/docker-engine.sh up       install docker.io, busybox-static (a shell
#                                  for the test images) and docker-registry (a
#                                  registry to pull from), and iproute2 (for
#                                  the kubernetes tests' network namespaces),
#                                  when missing (root only), start dockerd when it is not
#                                  running, and wait until it answers
#   hack/docker-engine.sh restart  restart the dockerd this script started
#   hack/docker-engine.sh down     stop it
#
# A dockerd this script did not start (the machine's own) is used as it is
# and never restarted or stopped. With TEND_REQUIRE_DOCKER=1, failing to get
# an engine is an error; otherwise it is a warning and the docker tests skip.
set -uo pipefail

PIDFILE=${TEND_DOCKERD_PIDFILE:-/run/tend-dockerd.pid}
LOG=${TEND_DOCKERD_LOG:-/tmp/tend-dockerd.log}

fail() {
  echo "docker-engine: $*" >&2
  if [ "${TEND_REQUIRE_DOCKER:-}" = 1 ]; then exit 1; fi
  echo "docker-engine: the docker tests will skip (set TEND_REQUIRE_DOCKER=1 to make this an error)" >&2
  exit 0
}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

wait_up() {
  for _ in $(seq 1 120); do
    answers && return 0
    sleep 0.5
  done
  return 1
}

ours() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  # dockerd leaves its pid file behind when it is killed; it refuses to
  # start over one whose process is gone.
  rm -f /var/run/docker.pid
  nohup dockerd >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  wait_up || fail "dockerd did not answer within 60 s; its log: $(tail -5 "$LOG")"
}

stop() {
  ours || return 0
  local pid
  pid=$(cat "$PIDFILE")
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PIDFILE"
}

case "${1:-up}" in
up)
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v busybox >/dev/null 2>&1 || ! command -v docker-registry >/dev/null 2>&1 ||
    ! command -v ip >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      command -v dockerd >/dev/null 2>&1 || fail "no dockerd here, and only root can install Debian's docker.io"
    else
      pkgs=()
      command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
      command -v busybox >/dev/null 2>&1 || pkgs+=(busybox-static)
      command -v docker-registry >/dev/null 2>&1 || pkgs+=(docker-registry)
      # ip: the network namespaces of the kubernetes tests' pod hosts.
      command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
      echo "docker-engine: installing ${pkgs[*]}" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null) ||
        fail "apt-get install ${pkgs[*]} failed"
    fi
  fi
  answers && exit 0
  [ "$(id -u)" = 0 ] || fail "the Docker Engine does not answer, and only root can start dockerd"
  start
  ;;
restart)
  ours || { echo "docker-engine: the running dockerd was not started by this script; not restarting it" >&2; exit 2; }
  stop
  start
  ;;
down)
  stop
  ;;
*)
  echo "usage: $0 up|restart|down" >&2
  exit 2
  ;;
esac
