#!/usr/bin/env bash
# Installs what flatnet's tests, demo and benchmarks need on a Debian machine (as root), then the npm packages,
# then builds. Safe to run again: it installs only what is missing. Every early exit names its step.
set -eEuo pipefail
cd "$(dirname "$0")/.."
step="starting"
trap 'echo "flatnet: install-deps failed while $step (exit $?); see the lines above, fix it, then run this again" >&2' ERR

step="checking the Debian packages"
need=($(bash scripts/missing-packages.sh))
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "flatnet: missing packages (${need[*]}); run this script as root to install them" >&2
    exit 1
  fi
  echo "flatnet: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  step="reading the package lists (apt-get update)"
  apt-get update -qq
  step="installing ${need[*]} (apt-get install)"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's docker.io postinst may start a system dockerd where systemd runs; flatnet's lab runs its own.

step="fetching Docker 28"
bash scripts/fetch-docker28.sh

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step="installing the npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
step="building (npm run build)"
rm -rf dist
npm run --silent build
