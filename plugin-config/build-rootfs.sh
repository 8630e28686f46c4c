#!/usr/bin/env bash
# Builds the managed (v2) plugin directory OUT (config.json + rootfs/) from THIS machine: the node binary and
# the tools flatnet runs (ip, bridge, iptables, nsenter, arping if installed) with the shared libraries `ldd`
# names, plus the app (dist + production node_modules). No image registry is involved. Runs from a checkout
# (after `npx tsc -p .`) or from an installed flatnet (/usr/lib/flatnet/plugin-config); `flatnet plugin build OUT`
# runs it.
#   plugin-config/build-rootfs.sh OUT && docker plugin create flatnet:latest OUT
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build-rootfs.sh OUT_DIR}"
rootfs="$out/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc/flatnet,var/lib/flatnet,run/docker/plugins,proc,sys,dev,tmp}
chmod 1777 "$rootfs/tmp"
# merged-/usr layout, as on Debian: library paths from ldd (/lib/..., /lib64/...) resolve inside the rootfs
for d in bin sbin lib lib64; do ln -s "usr/$d" "$rootfs/$d"; done

# Copies PATH (following symlinks) into the rootfs at its real location and keeps the name as a symlink.
copy_file() {
  local path="$1" real
  real="$(readlink -f "$path")"
  [[ -e "$rootfs$real" ]] || { mkdir -p "$rootfs$(dirname "$real")"; cp "$real" "$rootfs$real"; }
  local canon_dir
  canon_dir="$(readlink -f "$(dirname "$path")")/$(basename "$path")"
  if [[ "$canon_dir" != "$real" && ! -e "$rootfs$canon_dir" ]]; then
    mkdir -p "$rootfs$(dirname "$canon_dir")"
    ln -s "$real" "$rootfs$canon_dir"
  fi
}

copy_with_libs() {
  local bin="$1" lib
  copy_file "$bin"
  while read -r lib; do
    [[ -n "$lib" ]] && copy_file "$lib"
  done < <(ldd "$(readlink -f "$bin")" 2>/dev/null | grep -oE '/[^ ]+' || true)
}

copy_with_libs "$(command -v node)"
for tool in ip bridge iptables ip6tables nsenter; do
  p="$(command -v "$tool" || true)"
  [[ -n "$p" ]] || { echo "build-rootfs: $tool not found; install it (apt-get install iproute2 iptables util-linux)" >&2; exit 1; }
  copy_with_libs "$p"
done
if p="$(command -v arping)"; then copy_with_libs "$p"; else echo "build-rootfs: arping not installed; gratuitous ARP will be unavailable in the plugin" >&2; fi
# iptables extensions (-m comment, ...) are loaded at run time from the xtables directory
for x in /usr/lib/*/xtables /usr/lib/xtables; do
  [[ -d "$x" ]] || continue
  mkdir -p "$rootfs$x"
  cp -a "$x/." "$rootfs$x/"
done
# iptables-nft finds its protocol and service names here
for f in /etc/protocols /etc/services /etc/ethertypes; do [[ -f "$f" ]] && cp "$f" "$rootfs$f"; done
echo 'root:x:0:0:root:/root:/usr/sbin/nologin' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
touch "$rootfs/etc/machine-id"

app="$(cd "$here/.." && pwd)"
if [[ -f "$app/rpm/stage-app.sh" ]]; then
  bash "$app/rpm/stage-app.sh" "$rootfs/usr/lib/flatnet"
else
  # an installed app (the rpm's /usr/lib/flatnet) is already staged: production modules only
  [[ -f "$app/dist/src/cli/main.js" && -d "$app/node_modules" ]] || { echo "build-rootfs: $app is neither a checkout nor an installed flatnet" >&2; exit 1; }
  mkdir -p "$rootfs/usr/lib/flatnet"
  cp -a "$app/." "$rootfs/usr/lib/flatnet/"
fi
cp "$here/config.json" "$out/config.json"
echo "plugin directory ready: $out ($(du -sh "$rootfs" | cut -f1))"
