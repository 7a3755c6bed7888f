#!/usr/bin/env bash
# Makes Debian's PostgreSQL server available to the tests of the PostgreSQL
# state store (internal/pgtest starts a throw-away server from it, in a
# temporary directory, on a loopback port):
#
#   hack/postgres.sh install  install the postgresql package when missing
#                             (root only), then print the bin dir
#   hack/postgres.sh bindir   print the bin dir (initdb, postgres) if it is
#                             there, else exit 1
#
# The bin dir is the newest /usr/lib/postgresql/VERSION/bin; TEND_POSTGRES_BIN
# names another. Installing takes a Debian package (about 20 s, nothing is
# built or cached) and starts no server: Debian's main cluster is not
# created (createcluster.conf: create_main_cluster = false, when that file
# is not there yet). Output of apt-get goes to stderr; only the bin dir is
# printed on stdout.
set -euo pipefail

log() { echo "postgres: $*" >&2; }
die() { log "$*"; exit 1; }

bindir() {
  if [ -n "${TEND_POSTGRES_BIN:-}" ]; then
    [ -x "$TEND_POSTGRES_BIN/initdb" ] && [ -x "$TEND_POSTGRES_BIN/postgres" ] || return 1
    echo "$TEND_POSTGRES_BIN"
    return 0
  fi
  # Sorted by version: a glob would put 9 after 15.
  local best
  best=$(for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then echo "$d"; fi
  done | sort -t/ -k4,4n | tail -n1)
  [ -n "$best" ] || return 1
  echo "$best"
}

install() {
  if bindir; then return 0; fi
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed, and installing it needs root: apt-get install postgresql"
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
  log "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
  bindir || die "postgresql was installed, but no /usr/lib/postgresql/*/bin/initdb is there"
}

case "${1:-}" in
  install) install ;;
  bindir) bindir ;;
  *) die "usage: $0 install|bindir" ;;
esac
