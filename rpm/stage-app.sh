#!/usr/bin/env bash
# Stages the installable app into DEST: dist/src (compiled), package.json and the production node_modules
# (the packages `npm ls --omit=dev` lists, copied from this checkout: no registry access).
# Used by rpm/build-rpm.sh and plugin-config/build-rootfs.sh. Run `npx tsc -p .` first.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:?usage: stage-app.sh DEST}"
[[ -f "$repo/dist/src/cli/main.js" ]] || { echo "stage-app: $repo/dist/src/cli/main.js missing; build first (npx tsc -p .)" >&2; exit 1; }
mkdir -p "$dest/dist"
cp -a "$repo/dist/src" "$dest/dist/"
find "$dest/dist" -name '*.map' -delete
cp "$repo/package.json" "$dest/"
# `flatnet demo` runs each lab host through these scripts, looked up at <app>/src/lab/
mkdir -p "$dest/src/lab"
cp "$repo/src/lab/host-launcher.sh" "$repo/src/lab/host-dockerd.sh" "$dest/src/lab/"
# `flatnet dashboard` serves its page (html, css, js: not compiled by tsc) from <app>/src/dashboard/static/
mkdir -p "$dest/src/dashboard"
cp -a "$repo/src/dashboard/static" "$dest/src/dashboard/"
# `flatnet plugin build` runs the rootfs builder from <app>/plugin-config/ (an installed app builds the plugin too)
mkdir -p "$dest/plugin-config"
cp "$repo/plugin-config/build-rootfs.sh" "$repo/plugin-config/config.json" "$dest/plugin-config/"
chmod 0755 "$dest/dist/src/cli/main.js"
cd "$repo"
# `npm ls` exits non-zero on extraneous packages (dev tooling): the list it prints is still complete
mapfile -t pkgs < <(npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 || true)
[[ ${#pkgs[@]} -gt 0 ]] || { echo "stage-app: npm ls found no production packages" >&2; exit 1; }
# npm may name packages by node_modules' real path when node_modules is a symlink
nm_real="$(readlink -f "$repo/node_modules")"
for abs in "${pkgs[@]}"; do
  rel="${abs#"$repo"/}"
  [[ "$abs" == "$nm_real"/* ]] && rel="node_modules/${abs#"$nm_real"/}"
  [[ "$rel" == /* ]] && { echo "stage-app: $abs is outside this checkout" >&2; exit 1; }
  # Not cp --parents: it trips over a node_modules that is a symlink (a worktree sharing another's modules).
  [[ -d "$rel" ]] && mkdir -p "$dest/$rel" && cp -a "$rel/." "$dest/$rel/"
done
