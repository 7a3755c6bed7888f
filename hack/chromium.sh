#!/usr/bin/env bash
# Makes Debian's chromium available to the dashboard's browser tests
# (cmd/tend TestDashboardInChromium, driven through chromedp): installs the
# chromium package when /usr/bin/chromium is missing and this runs as root.
# With TEND_REQUIRE_CHROMIUM=1, failing to get it is an error; otherwise it
# is a warning and the browser tests skip.
set -uo pipefail

fail() {
  echo "chromium: $*" >&2
  if [ "${TEND_REQUIRE_CHROMIUM:-}" = 1 ]; then exit 1; fi
  echo "chromium: the browser tests will skip (set TEND_REQUIRE_CHROMIUM=1 to make this an error)" >&2
  exit 0
}

[ -x /usr/bin/chromium ] && exit 0
[ "$(id -u)" = 0 ] || fail "/usr/bin/chromium is missing, and installing it needs root (apt-get install chromium)"
command -v apt-get >/dev/null 2>&1 || fail "/usr/bin/chromium is missing and there is no apt-get to install it"
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; } ||
  fail "apt-get install chromium failed"
[ -x /usr/bin/chromium ] || fail "chromium installed, but /usr/bin/chromium is missing"
