#!/usr/bin/env bash
# Builds the image of a Debian bookworm with systemd as PID 1 that the
# systemd provider's tests run in, and prints its tag. The image is keyed by
# a hash of this script (the recipe), so only a change to the recipe pays the
# cold build (debootstrap, about a minute); the root file system is cached as
# a tarball in $TEND_CACHE_DIR (default ~/.cache/tend), so a new Docker
# Engine only imports it.
#
# Run the image with:
#   docker run -d --cgroupns=private --cap-add ALL --cap-drop SYS_RESOURCE \
#     --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#     --stop-signal SIGRTMIN+3 --tmpfs /run --tmpfs /run/lock --tmpfs /tmp TAG
# (--privileged fails on these machines: CAP_SYS_RESOURCE is not in the
# bounding set; never bind-mount the host's /sys/fs/cgroup into it.)
set -euo pipefail

hash=$(sha256sum "$0" | cut -c1-12)
tag="tend-systemd-test:$hash"
cache="${TEND_CACHE_DIR:-$HOME/.cache/tend}/systemd-$hash.tar"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

if [ ! -s "$cache" ]; then
  command -v debootstrap >/dev/null 2>&1 || {
    [ "$(id -u)" = 0 ] || { echo "systemd-image: debootstrap is missing, and only root can install it" >&2; exit 1; }
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null) >&2
  }
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "systemd-image: debootstrap bookworm from $mirror (about a minute)" >&2
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps bookworm "$root" "$mirror" >/dev/null

  # What a test host does not need, and what would get in the way: terminals,
  # udev, time sync, logins, periodic jobs.
  for u in getty@.service serial-getty@.service console-getty.service \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-timesyncd.service systemd-logind.service \
    apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer \
    dpkg-db-backup.timer systemd-tmpfiles-clean.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
  mkdir -p "$root/etc/systemd/system.conf.d"
  printf '[Manager]\nDefaultCPUAccounting=yes\nDefaultMemoryAccounting=yes\n' >"$root/etc/systemd/system.conf.d/tend.conf"
  rm -rf "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale "$root"/usr/share/info \
    "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*

  # PID 1: mount the cgroup v1 hierarchies of /proc/self/cgroup inside the
  # container's private cgroup namespace, then become systemd. cpu and
  # cpuacct are separate hierarchies on these hosts, and systemd reports
  # CPUUsageNSec only when cpuacct is mounted at /sys/fs/cgroup/cpu; so
  # cpuacct is mounted there too (CPUQuota= is then recorded by systemd but
  # not enforced inside this container).
  cat >"$root/usr/local/sbin/tend-init" <<'EOF'
#!/bin/sh
set -eu
mount -o remount,rw /sys 2>/dev/null || true
mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs /sys/fs/cgroup
while IFS=: read -r _ ctrls _; do
  case "$ctrls" in
  "") mkdir -p /sys/fs/cgroup/unified
      mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup/unified ;;
  name=systemd) mkdir -p /sys/fs/cgroup/systemd
      mount -t cgroup -o nosuid,nodev,noexec,none,name=systemd cgroup /sys/fs/cgroup/systemd ;;
  name=*) ;;
  cpu) mkdir -p /sys/fs/cgroup/cpu
      mount -t cgroup -o nosuid,nodev,noexec,cpuacct cgroup /sys/fs/cgroup/cpu ;;
  *) mkdir -p "/sys/fs/cgroup/$ctrls"
     mount -t cgroup -o "nosuid,nodev,noexec,$ctrls" cgroup "/sys/fs/cgroup/$ctrls" ;;
  esac
done </proc/self/cgroup
exec /lib/systemd/systemd "$@"
EOF
  chmod 0755 "$root/usr/local/sbin/tend-init"

  mkdir -p "$(dirname "$cache")"
  tar -C "$root" -cf "$cache.tmp" .
  mv "$cache.tmp" "$cache"
fi

docker import --change 'CMD ["/usr/local/sbin/tend-init"]' "$cache" "$tag" >/dev/null
echo "$tag"
