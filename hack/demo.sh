#!/usr/bin/env bash
# The demo on the embedded defaults. Today it shows the language: validate
# and format-check the quickstart repository, then show a mistake caught with
# its position. (The engine issue extends this to plan, apply and rollback.)
set -euo pipefail
cd "$(dirname "$0")/.."
tend=./bin/tend

echo "== tend validate examples/quickstart"
$tend validate examples/quickstart

echo
echo "== tend fmt --check examples/quickstart"
$tend fmt --check examples/quickstart && echo "formatted"

echo
echo "== tend validate --env staging examples/mcp-fleet"
$tend validate --env staging --no-color examples/mcp-fleet 2>/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/quickstart/. "$work/"
sed -i 's/version  = var.notes_version/version  = "1.2"/' "$work/main.hcl"
echo
echo "== a mistake: version = \"1.2\" (not a full version)"
if $tend validate --no-color "$work" 2>&1 | sed "s|$work/||"; then
  echo "demo: the broken copy validated, which is wrong" >&2
  exit 1
fi
