#!/usr/bin/env bash
# Docker 28 beside Debian's 20.10: the e2e tests run on both engines. Debian unstable's docker.io, docker-cli and
# containerd are downloaded through a private apt configuration (the machine's own sources stay untouched) and
# only unpacked (never installed) into $FLATNET_DOCKER28_DIR (default /var/cache/flatnet/docker28); bookworm's
# runc stays in use (sid's needs a newer glibc). Reused when present: a second run changes nothing.
# test/packaging/install-deps.test.ts runs this into an empty directory on every CI run.
set -eEuo pipefail
here=$(dirname "$0")
d=${FLATNET_DOCKER28_DIR:-/var/cache/flatnet/docker28}
root=$d/root
step="checking $d"
trap 'echo "flatnet: fetching Docker 28 failed while $step (exit $?); see the lines above, fix it, then run this again" >&2' ERR

if [ -x "$root/usr/sbin/dockerd" ] && [ -x "$root/usr/bin/containerd" ] \
  && [ -x "$root/usr/bin/containerd-shim-runc-v2" ] && [ -x "$root/usr/bin/docker" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "flatnet: Docker 28 is not in $d; run this as root to fetch it" >&2
  exit 1
fi
step="finding the machine's Debian mirror"
mirror=$(bash "$here/debian-mirror.sh") || exit 1
echo "flatnet: fetching Docker 28 (docker.io, docker-cli, containerd from $mirror sid) into $d" >&2
step="preparing $d"
rm -rf "$d/pkgs" "$d/root.new"
mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/pkgs" "$d/root.new"
echo "deb $mirror sid main" >"$d/sources.list"
o=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root)
step="reading sid's package lists from $mirror (apt-get update)"
apt-get "${o[@]}" -qq update
step="downloading docker.io, docker-cli and containerd from sid"
(cd "$d/pkgs" && apt-get "${o[@]}" -qq download docker.io docker-cli containerd)
step="unpacking the downloaded packages"
for f in "$d"/pkgs/*.deb; do dpkg-deb -x "$f" "$d/root.new"; done
# Whole or nothing: an interrupted run leaves no half-unpacked engine behind.
rm -rf "$root" && mv "$d/root.new" "$root"
rm -rf "$d/pkgs" "$d/cache" "$d/lists"
step="running the unpacked dockerd --version"
"$root/usr/sbin/dockerd" --version >&2
