#!/usr/bin/env bash
# hack/rss.sh: the peak memory of `tend plan` on generated fleets.
#
# For each size (default 5000 and 10000 servers) it writes a fleet with
# hack/genfleet, runs bin/tend plan on it with an empty state directory on
# the process provider (nothing runs, so the plan observes an empty fleet and
# creates every server), and reads the process's maximum resident set size
# from GNU time (/usr/bin/time -f %M, in KiB). It prints one line per size
# and exits 1 when a size is over its target (issue 16 item 3: 200 MiB at
# 5,000 servers, 400 MiB at 10,000).
#
#   hack/rss.sh                 # build bin/tend, measure 5000 and 10000
#   hack/rss.sh 5000=200 20000  # sizes, each with an optional target in MiB
#   RUNS=3 hack/rss.sh          # the highest of 3 runs of each size
#   TEND=/tmp/old/tend hack/rss.sh   # measure another build (not built here)
#   GOGC=... GOMEMLIMIT=... are passed through to tend as they are set.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/time ]; then
  echo "rss.sh: /usr/bin/time (GNU time) is needed" >&2
  exit 2
fi
tend=${TEND:-}
if [ -z "$tend" ]; then
  make -s build
  tend=bin/tend
fi

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(5000=200 10000=400)
runs=${RUNS:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail=0
for arg in "${sizes[@]}"; do
  n=${arg%%=*}
  target=
  [[ $arg == *=* ]] && target=${arg#*=}
  fleet=$work/fleet-$n
  go run ./hack/genfleet -servers "$n" -out "$fleet" >/dev/null
  worst=0
  for ((r = 0; r < runs; r++)); do
    state=$work/state-$n-$r
    mkdir -p "$state"
    # Exit status 2 is "changes present" (-detailed-exitcode): the expected
    # answer for a fleet that is not running yet.
    set +e
    TEND_SECRET_API_TOKEN=t0ken /usr/bin/time -f %M -o "$work/rss" \
      "$tend" plan -detailed-exitcode --state-dir "$state" "$fleet" >"$work/plan.txt" 2>"$work/plan.err"
    rc=$?
    set -e
    if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then
      echo "rss.sh: tend plan failed on $n servers (exit $rc):" >&2
      cat "$work/plan.err" >&2
      exit 1
    fi
    kib=$(tail -n 1 "$work/rss")
    [ "$kib" -gt "$worst" ] && worst=$kib
  done
  mib=$(( (worst + 1023) / 1024 ))
  verdict=
  if [ -n "$target" ]; then
    if [ "$mib" -lt "$target" ]; then
      verdict=" (target < $target MiB: ok)"
    else
      verdict=" (target < $target MiB: OVER)"
      fail=1
    fi
  fi
  echo "tend plan, $n servers: max RSS $mib MiB$verdict"
done
exit $fail
