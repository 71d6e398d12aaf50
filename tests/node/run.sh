#!/usr/bin/env bash
# Runs the openai-npm client test; installs its pinned dependencies from the npm registry
# (package-lock.json) into tests/node/node_modules the first time.
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -d node_modules/openai ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node openai_client_test.mjs "$1"
