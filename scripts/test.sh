#!/usr/bin/env bash
# The test suite in three tiers, each a superset of the one before:
#   quick  what needs neither root, etcd nor Docker (builds first; installs only the npm packages)
#   etcd   quick plus everything against real etcd members on loopback
#   full   (default; `npm test`, what .ci/run runs) installs what is missing, checks format and lint, then runs
#          everything, the Docker-facing files on Docker 20.10 and Docker 28 (scripts/fetch-docker28.sh);
#          FLATNET_LAB_ENGINES=docker20 narrows a local run to one engine.
# A test outside the tier skips, saying so (test/harness/requirements.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-full}
case $tier in
  full)
    bash scripts/install-deps.sh
    npm run --silent format:check
    npm run --silent lint
    ;;
  quick | etcd)
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error
    fi
    rm -rf dist
    npm run --silent build
    export FLATNET_TEST_TIER=$tier
    ;;
  *)
    echo "flatnet: test tier is quick, etcd or full, not '$tier'" >&2
    exit 2
    ;;
esac
# Test files only (Node's runner would also run every helper module under a test/ directory).
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
# One file at a time: the end-to-end files each run a cluster of real dockerds and etcd on 2 cores.
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
