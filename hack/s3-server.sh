#!/usr/bin/env bash
# Builds and caches the S3-compatible server that the tests of the s3 backup
# destination run (reconcile/backup/s3test):
#
#   hack/s3-server.sh build   build it if missing and print the bin dir
#   hack/s3-server.sh bindir  print the bin dir if it is built, else exit 1
#   hack/s3-server.sh clean   remove this version's cache
#
# The bin dir, ${TEND_CACHE_DIR:-$HOME/.cache/tend}/s3-versitygw-v1.8.0/bin,
# holds versitygw, the Versity S3 gateway (github.com/versity/versitygw), a
# real S3 server whose posix backend keeps buckets as directories and
# objects as files (multipart uploads, listing, signatures v4, as AWS does).
# Debian bookworm has no S3 server (its rclone, 1.60, has no "serve s3"),
# and MinIO and SeaweedFS take several times longer to build.
#
# The build (about 4 minutes on 2 cores when Go's build cache is cold,
# seconds when it is warm) runs under a lock and is renamed into place whole,
# so concurrent callers wait for one build and later runs cost nothing. Build
# output goes to stderr; only the bin dir is printed on stdout. Needs go,
# flock and the Go module proxy.
set -euo pipefail
export GOWORK=off

VERSITYGW_VERSION=v1.8.0

CACHE_ROOT=${TEND_CACHE_DIR:-$HOME/.cache/tend}
KEY=s3-versitygw-$VERSITYGW_VERSION
DIR=$CACHE_ROOT/$KEY
BIN=$DIR/bin

log() { echo "s3-server: $*" >&2; }
die() { log "$*"; exit 1; }

complete() { [ -x "$BIN/versitygw" ]; }

build() {
  command -v go >/dev/null || die "go is not on PATH"
  local tmp
  tmp=$(mktemp -d "$CACHE_ROOT/.$KEY.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/bin"
  local start=$SECONDS

  log "building versitygw $VERSITYGW_VERSION"
  # go install pkg@version builds with versitygw's own go.mod and go.sum,
  # independent of this module's.
  GOBIN=$tmp/bin CGO_ENABLED=0 GOFLAGS=-buildvcs=false nice -n 19 go install -trimpath -ldflags='-s -w' \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
  chmod -R u+w,go+rX "$tmp"

  rm -rf "$DIR"
  mv "$tmp" "$DIR"
  trap - EXIT
  log "built in $((SECONDS - start))s: $BIN ($(du -sh "$DIR" | cut -f1))"
}

case "${1:-}" in
build)
  if ! complete; then
    mkdir -p "$CACHE_ROOT"
    exec 9>"$CACHE_ROOT/$KEY.lock"
    flock 9
    # Not "complete || build": errexit would not apply inside build.
    if ! complete; then
      build
    fi
    flock -u 9
  fi
  echo "$BIN"
  ;;
bindir)
  complete || exit 1
  echo "$BIN"
  ;;
clean)
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/$KEY.lock"
  flock 9
  rm -rf "$DIR"
  ;;
*)
  echo "usage: $0 build|bindir|clean" >&2
  exit 2
  ;;
esac
