#!/usr/bin/env bash
# Prints the machine's own Debian mirror: the first URI ending in /debian among apt's sources, deb822
# (sources.list.d/*.sources, Debian 12's default) before one-line (sources.list, sources.list.d/*.list,
# Debian 11's). The apt directory is $1 (default /etc/apt), so tests can hand it any layout.
# Exit 1 with a one-line message when no source names a Debian mirror.
set -euo pipefail
shopt -s nullglob
apt_dir=${1:-/etc/apt}

uris() {
  local f
  for f in "$apt_dir"/sources.list.d/*.sources; do
    # deb822: "URIs: a b" on one line, possibly several stanzas; disabled stanzas say "Enabled: no".
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        enabled = 1; u = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^[Ee]nabled:[ \t]*no/) enabled = 0
          if ($i ~ /^URIs:/) u = $i
        }
        if (enabled && u != "") { n = split(u, w, /[ \t]+/); for (j = 2; j <= n; j++) print w[j] }
      }' "$f"
  done
  for f in "$apt_dir"/sources.list "$apt_dir"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # one-line: "deb [options] URI suite components"; the URI is the first word with a scheme.
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }' "$f"
  done
}

mirror=$(uris | grep -E '/debian/?$' | head -n 1 || true)
if [ -z "$mirror" ]; then
  echo "flatnet: no Debian mirror in $apt_dir/sources.list or $apt_dir/sources.list.d/ (deb822 .sources or one-line .list); add one, or fetch Docker 28 by hand into \$FLATNET_DOCKER28_DIR" >&2
  exit 1
fi
echo "${mirror%/}"
