#!/usr/bin/env bash
# Prints, one a line, the Debian packages that install-deps.sh must install: those whose command (or file) this
# machine lacks. Looks commands up on $PATH, so a test can run it with an empty PATH to see the list from empty.
set -euo pipefail
# "dpkg:NAME" asks dpkg for the package itself (a plain busybox would not do: the test image needs the static one).
have() {
  case $1 in
    dpkg:*) command -v dpkg >/dev/null 2>&1 && dpkg -s "${1#dpkg:}" >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
while read -r cmd pkg; do
  have "$cmd" || echo "$pkg"
done <<'LIST'
dockerd docker.io
etcd etcd-server
etcdctl etcd-client
dpkg:busybox-static busybox-static
ip iproute2
iptables iptables
iperf3 iperf3
arping iputils-arping
na6 ipv6toolkit
nsenter util-linux
rpmbuild rpm
modprobe kmod
openssl openssl
promtool prometheus
chromium chromium
LIST
