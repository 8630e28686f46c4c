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

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
rm -rf dist
npm run --silent build
