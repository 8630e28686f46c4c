#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs every test file with Node's test runner.
# Tests that need root, etcd or Docker start their own (on loopback and in their own namespaces) and clean up.
# The Docker-facing files (test/e2e, test/packaging/managed-plugin) run on Docker 20.10 and on Docker 28 (fetched
# into /var/cache/flatnet/docker28 by install-deps.sh); FLATNET_LAB_ENGINES=docker20 narrows a local run to one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Test files only (Node's runner would also run every helper module under a test/ directory).
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
# One file at a time: the end-to-end files each run a cluster of real dockerds and etcd on 2 cores.
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
