#!/usr/bin/env bash
# Builds the flatnet noarch rpm with rpmbuild (works on Debian's `rpm` package): stages dist + production
# node_modules, wraps them in a tarball, runs rpmbuild in a private _topdir. Prints the rpm path.
#   rpm/build-rpm.sh [OUT_DIR]   (default: ./build/rpm; run `npx tsc -p .` first)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$repo/build/rpm}"
version="$(node -p "require('$repo/package.json').version")"
top="$(mktemp -d "${TMPDIR:-/tmp}/flatnet-rpm.XXXXXX")"
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{BUILD,RPMS,SOURCES,SPECS,SRPMS,stage/app}
bash "$repo/rpm/stage-app.sh" "$top/stage/app"
cp "$repo/rpm/flatnet.sh" "$top/stage/flatnet.sh"
cp "$repo/plugin-config/flatnet.service" "$repo/plugin-config/flatnet.conf" "$top/stage/"
mkdir -p "$top/stage/monitoring"
cp "$repo/monitoring/flatnet-dashboard.json" "$repo/monitoring/flatnet-alerts.yml" "$top/stage/monitoring/"
tar -cf "$top/SOURCES/flatnet-staged.tar" -C "$top/stage" .
cp "$repo/rpm/flatnet.spec" "$top/SPECS/"
rpmbuild -bb --nodeps \
  --define "_topdir $top" \
  --define "flatnet_version $version" \
  --define "_binary_payload w6.gzdio" \
  "$top/SPECS/flatnet.spec" >"$top/rpmbuild.log" 2>&1 || { cat "$top/rpmbuild.log" >&2; exit 1; }
mkdir -p "$out"
rpm_file="$(find "$top/RPMS" -name '*.rpm' | head -n 1)"
cp "$rpm_file" "$out/"
echo "$out/$(basename "$rpm_file")"
