#!/usr/bin/env bash
# Where the router's added latency goes: the router as built, and with its receipts, its ledger
# or both switched off by router-variants.patch (a diagnostic, never committed to the router),
# each measured beside a bare relay (tests/bench/bare_relay) in front of the same worker.
# Run from the repository root with router-variants.patch applied and build/release built:
#   git apply docs/benchmarks/serving/router-cost-2026-11-27/router-variants.patch
#   cmake --build build/release && docs/benchmarks/serving/router-cost-2026-11-27/variants.sh
# One JSON line per round, variant and load (1 and 2 clients in a closed loop, 300 requests/s
# in an open loop with up to 8 in flight), 2,000 requests per path per line.
set -euo pipefail
here=$(dirname "$0")
for round in 1 2 3; do
  for v in base no-receipt no-ledger neither; do
    e=""
    case $v in
      no-receipt) e="TL_NO_RECEIPT=1" ;;
      no-ledger) e="TL_NO_LEDGER=1" ;;
      neither) e="TL_NO_RECEIPT=1 TL_NO_LEDGER=1" ;;
    esac
    for load in "1 0" "2 0" "8 300"; do
      set -- $load
      j=$(env $e RATE=$2 N=2000 "$here/one-run.sh" "$1" "$(mktemp -d)" 2>/dev/null | tail -1)
      echo "{\"round\":$round,\"variant\":\"$v\",${j#\{}"
    done
  done
done
