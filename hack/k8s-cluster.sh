#!/usr/bin/env bash
# Builds and caches the binaries of the Kubernetes control plane that the
# tests of the kubernetes provider run (providers/kubernetes/kubetest):
#
#   hack/k8s-cluster.sh build   build what is missing and print the bin dir
#   hack/k8s-cluster.sh bindir  print the bin dir if it is built (rewriting stale stages), else exit 1
#   hack/k8s-cluster.sh clean   remove this version's cache
#
# The bin dir, ${TEND_CACHE_DIR:-$HOME/.cache/tend}/k8s-v1.37.2-etcd-v3.7.3-kwok-v0.8.0/bin,
# holds kube-apiserver, kube-controller-manager and kube-scheduler (built from
# the separate module hack/k8s: k8s.io/kubernetes v1.37.2), etcd v3.7.3 (from
# the module hack/k8s/etcd) and kwok v0.8.0. Debian's etcd-server (3.4) is not
# used: it lacks the watch progress requests that this API server's watch
# streams need, and clients then fall back to relisting, which makes every
# change take seconds to be seen. Its sibling stages/
# holds kwok's stage configs (node-initialize, node-heartbeat-with-lease,
# pod-ready, pod-complete, pod-delete) from kwok's own module, with two
# changes to pod-ready: it skips pods annotated tend.dev/test-never-ready:
# "true", so that a Deployment of them never becomes Available, and it gives
# a pod annotated tend.dev/test-pod-ip the IP address the annotation names
# (where a test runs the pod's server, in a network namespace, so that the
# API server can proxy to it). The stages are rewritten, cheaply, whenever
# STAGES_REV below changes.
#
# The build (10 to 20 minutes on 2 cores when Go's build cache is cold) runs
# under a lock and is renamed into place whole, so concurrent callers wait for
# one build and later runs cost nothing. Build output goes to stderr; only the
# bin dir is printed on stdout. Needs go, flock and the Go module proxy.
set -euo pipefail
export GOWORK=off

K8S_VERSION=v1.37.2
KWOK_VERSION=v0.8.0
ETCD_VERSION=v3.7.3

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${TEND_CACHE_DIR:-$HOME/.cache/tend}
KEY=k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
DIR=$CACHE_ROOT/$KEY
BIN=$DIR/bin
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
STAGES=(node-initialize node-heartbeat-with-lease pod-ready pod-complete pod-delete)
# STAGES_REV names the edits made to kwok's stages; change it with them.
STAGES_REV=2-never-ready-pod-ip

log() { echo "k8s-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

binaries_complete() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}

stages_current() {
  local s
  for s in "${STAGES[@]}"; do [ -f "$DIR/stages/$s.yaml" ] || return 1; done
  [ "$(cat "$DIR/stages/REVISION" 2>/dev/null)" = "$STAGES_REV" ]
}

complete() { binaries_complete && stages_current; }

etcd_build() {
  local out=$1
  log "building etcd $ETCD_VERSION"
  (cd "$ROOT/hack/k8s/etcd" && CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags='-s -w' \
    -o "$out/etcd" go.etcd.io/etcd/server/v3) >&2
}

# stages_build writes kwok's stage configs, as tend's tests need them, into
# the directory $1.
stages_build() {
  local out=$1 src
  src=$(cd "$out" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src/kustomize/stage" ] || die "kwok's source not found in the module cache"
  cp "$src/kustomize/stage/node/fast/node-initialize.yaml" \
    "$src/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
    "$src/kustomize/stage/pod/fast/pod-complete.yaml" \
    "$src/kustomize/stage/pod/fast/pod-delete.yaml" "$out/"
  # pod-ready, with one more requirement (not annotated never-ready) and the
  # pod IP from the annotation tend.dev/test-pod-ip when a pod has it.
  awk '
    { print }
    !sel && prev == "  selector:" && $0 == "    matchExpressions:" {
      print "    - key: '"'"'.metadata.annotations[\"tend.dev/test-never-ready\"]'"'"'"
      print "      operator: '"'"'NotIn'"'"'"
      print "      values:"
      print "      - '"'"'true'"'"'"
      sel = 1
    }
    !ip && $0 ~ /^ *\{\{ \$podIPs := PodIPsWith / {
      print "      {{ with .metadata.annotations }}{{ with index . \"tend.dev/test-pod-ip\" }}{{ $podIPs = list . }}{{ end }}{{ end }}"
      ip = 1
    }
    { prev = $0 }
    END { if (!sel || !ip) exit 1 }
  ' "$src/kustomize/stage/pod/fast/pod-ready.yaml" >"$out/pod-ready.yaml" ||
    die "could not edit kwok's pod-ready stage (never-ready selector, test pod IP)"
  echo "$STAGES_REV" >"$out/REVISION"
}

# stages_refresh rewrites the stages of a complete build whose stages are
# from an older STAGES_REV.
stages_refresh() {
  local tmp
  tmp=$(mktemp -d "$DIR/.stages.XXXXXX")
  stages_build "$tmp" || { rm -rf "$tmp"; exit 1; }
  chmod -R u+w,go+rX "$tmp"
  rm -rf "$DIR/stages"
  mv "$tmp" "$DIR/stages"
  log "rewrote kwok's stages ($STAGES_REV)"
}

build() {
  command -v go >/dev/null || die "go is not on PATH"
  local tmp
  tmp=$(mktemp -d "$CACHE_ROOT/.$KEY.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/bin" "$tmp/stages"
  local start=$SECONDS

  etcd_build "$tmp/bin"

  log "building kube-apiserver, kube-controller-manager and kube-scheduler $K8S_VERSION (slow when cold)"
  local v=k8s.io/component-base/version
  local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=37 -X $v.gitTreeState=clean"
  (cd "$ROOT/hack/k8s" && CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags="$ldflags" -o "$tmp/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler) >&2

  log "building kwok $KWOK_VERSION"
  GOBIN=$tmp/bin CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags='-s -w' \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2

  stages_build "$tmp/stages"
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
    if ! binaries_complete; then
      build
    elif ! stages_current; then
      stages_refresh
    fi
    flock -u 9
  fi
  echo "$BIN"
  ;;
bindir)
  # Stale stages of complete binaries are rewritten: that costs nothing.
  if binaries_complete && ! stages_current; then
    exec 9>"$CACHE_ROOT/$KEY.lock"
    flock 9
    stages_current || stages_refresh
    flock -u 9
  fi
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
