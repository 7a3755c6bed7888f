#!/usr/bin/env bash
# make demo: tend's main job on the embedded defaults (the process provider
# and the SQLite store), with nothing but Go and git installed.
#
# It builds tend and three releases of the example MCP server mcp-notes
# (1.0.0, 1.1.0, and a broken 1.2.0 that crashes at start), makes a state
# repository from examples/quickstart under demo/, and walks through: plan,
# apply, a rolling upgrade, a bad release rolled back automatically and
# held, history, a manual rollback, status, a backup, a restore drill and a
# restore, and pruning.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/demo
rm -rf "$demo"
mkdir -p "$demo/bin"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "build tend and three releases of mcp-notes"
go build -o "$demo/bin/" ./cmd/tend ./cmd/tend-supervise
for v in 1.0.0 1.1.0; do
  go build -ldflags "-X main.version=$v" -o "$demo/bin/mcp-notes-$v" ./examples/mcp-notes
done
go build -ldflags "-X main.version=1.2.0 -X main.fault=crash" -o "$demo/bin/mcp-notes-1.2.0" ./examples/mcp-notes
ls "$demo/bin"

cp -r examples/quickstart "$demo/repo"
export TEND_STATE_DIR=$demo/state
tend() { "$demo/bin/tend" "$@"; }
vars=(--var "bin_dir=$demo/bin")
set_version() { sed -i "s/default     = \"[0-9.]*\"/default     = \"$1\"/" "$demo/repo/main.hcl"; }
cleanup() { [ -d "$demo/repo" ] && [ -f "$demo/state/state.db" ] && { sed -i '/^server "notes"/,$d' "$demo/repo/main.hcl"; "$demo/bin/tend" apply --allow-prune "${vars[@]}" "$demo/repo" >/dev/null 2>&1 || true; }; }
trap cleanup EXIT

step "the desired state: examples/quickstart (mcp-notes 1.0.0, two replicas)"
run tend validate "${vars[@]}" "$demo/repo"
run tend plan "${vars[@]}" "$demo/repo"

step "apply: start the replicas, verify their health checks"
run tend apply "${vars[@]}" "$demo/repo"
for port in 8410 8411; do printf 'replica on %s: ' $port; curl -fsS "http://127.0.0.1:$port/health"; echo; done

step "nothing changed: the plan is empty (exit code 0 with -detailed-exitcode)"
run tend plan -detailed-exitcode "${vars[@]}" "$demo/repo"

step "upgrade to 1.1.0: a rolling update, one replica at a time"
set_version 1.1.0
run tend plan "${vars[@]}" "$demo/repo"
run tend apply "${vars[@]}" "$demo/repo"

step "a bad release: 1.2.0 crashes at start; tend rolls back to 1.1.0 by itself"
set_version 1.2.0
run tend apply "${vars[@]}" "$demo/repo" || echo "(apply exited $? because a server was rolled back)"
for port in 8410 8411; do printf 'replica on %s: ' $port; curl -fsS "http://127.0.0.1:$port/health"; echo; done

step "1.2.0 is held: the next plan does not try it again"
run tend plan "${vars[@]}" "$demo/repo"

step "history"
run tend history notes

step "a manual rollback to 1.0.0 (the sync will not undo it: 1.1.0 is held too)"
run tend rollback notes
run tend status "${vars[@]}" "$demo/repo"

step "backups: take one now, list the catalog, prove it restores, restore it"
run tend backup "${vars[@]}" --dir "$demo/repo" notes
run tend backups notes
run tend restore --drill "${vars[@]}" --dir "$demo/repo" notes
run tend restore "${vars[@]}" --dir "$demo/repo" notes
run tend backups verify "${vars[@]}" --dir "$demo/repo"

step "the server leaves the repository: it was the only one, so the plan keeps it"
sed -i '/^server "notes"/,$d' "$demo/repo/main.hcl"
run tend plan "${vars[@]}" "$demo/repo"
step "an empty repository deletes the fleet only when asked to: apply --allow-prune"
run tend apply --allow-prune "${vars[@]}" "$demo/repo"
trap - EXIT
echo
echo "Done. The state is in $demo/state; remove $demo to start again."
