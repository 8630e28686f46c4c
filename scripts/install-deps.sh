#!/usr/bin/env bash
# Installs what flatnet's tests, demo and benchmarks need on a Debian machine (root), then the npm packages.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have dockerd   || need+=(docker.io)
have etcd      || need+=(etcd-server)
have etcdctl   || need+=(etcd-client)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx sh && file_ok=1 || file_ok=0
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
have ip        || need+=(iproute2)
have iptables  || need+=(iptables)
have iperf3    || need+=(iperf3)
have arping    || need+=(iputils-arping)
have na6       || need+=(ipv6toolkit)
have nsenter   || need+=(util-linux)
have rpmbuild  || need+=(rpm)
have modprobe  || need+=(kmod)
have openssl   || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "flatnet: missing packages (${need[*]}); run this script as root to install them" >&2
    exit 1
  fi
  echo "flatnet: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's docker.io postinst may start a system dockerd where systemd runs; flatnet's lab runs its own.

# Docker 28 beside 20.10: the e2e tests run on both engines. Debian unstable's docker.io and containerd are
# downloaded through a private apt configuration (the machine's own sources stay untouched) and only unpacked
# (never installed) into a cache directory; bookworm's runc stays in use (sid's needs a newer glibc).
# Reused when present: a second run changes nothing.
docker28_dir=${FLATNET_DOCKER28_DIR:-/var/cache/flatnet/docker28}
debian_mirror() {
  # The machine's own Debian mirror (deb822 or one-line sources): the first URI ending in /debian.
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && awk '/^URIs:/{for (i = 2; i <= NF; i++) print $i}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' "$f"
  done
}
fetch_docker28() {
  local d=$docker28_dir root=$docker28_dir/root
  if [ -x "$root/usr/sbin/dockerd" ] && [ -x "$root/usr/bin/containerd" ] && [ -x "$root/usr/bin/containerd-shim-runc-v2" ] && [ -x "$root/usr/bin/docker" ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "flatnet: Docker 28 is not in $d; run this script as root to fetch it" >&2
    exit 1
  fi
  local mirror
  mirror=$(debian_mirror | grep -E '/debian/?$' | head -n 1)
  if [ -z "$mirror" ]; then
    echo "flatnet: no Debian mirror in /etc/apt/sources.list*; cannot fetch Docker 28 from the unstable suite" >&2
    exit 1
  fi
  echo "flatnet: fetching Docker 28 (docker.io, docker-cli, containerd from $mirror sid) into $d" >&2
  rm -rf "$d/pkgs" "$d/root.new"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/pkgs" "$d/root.new"
  echo "deb $mirror sid main" > "$d/sources.list"
  local o=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root)
  apt-get "${o[@]}" -qq update
  (cd "$d/pkgs" && apt-get "${o[@]}" -qq download docker.io docker-cli containerd)
  local f
  for f in "$d"/pkgs/*.deb; do dpkg-deb -x "$f" "$d/root.new"; done
  # Whole or nothing: an interrupted run leaves no half-unpacked engine behind.
  rm -rf "$root" && mv "$d/root.new" "$root"
  rm -rf "$d/pkgs" "$d/cache" "$d/lists"
  "$root/usr/sbin/dockerd" --version >&2
}
fetch_docker28

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
rm -rf dist
npm run --silent build
