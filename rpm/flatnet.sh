#!/bin/sh
# /usr/bin/flatnet: runs the CLI with the system Node.js (20 or newer).
exec node /usr/lib/flatnet/dist/src/cli/main.js "$@"
