#!/usr/bin/env bash
# The demo: installs what it needs, then runs `flatnet demo` (a 3-host flat LAN on this machine).
# Extra arguments go to `flatnet demo` (e.g. --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec node dist/src/cli/main.js demo "$@"
