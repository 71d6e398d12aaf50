#!/usr/bin/env bash
# Diagnostic (docs/benchmarks/serving.md, "Where the router's CPU goes beyond a relay's"): the
# router with its ledger writer and housekeeping threads reniced to NICE_LEDGER (10), so that
# the request path's threads win a contended core. Measured as router B:
# RATES=300 scripts/bench-router-ab build/release/bin/tidelane-router \
#   docs/benchmarks/serving/niced-ledger-router.sh 3 4000 "1 2"
# It execs the router (same pid, so the bench's perf stat and kill reach it).
pid=$$
( for _ in $(seq 50); do
    sleep 0.1
    found=0
    for t in /proc/$pid/task/*; do
      c=$(cat $t/comm 2>/dev/null)
      if [[ $c == tl-ledger || $c == tl-housekeepin* ]]; then renice -n ${NICE_LEDGER:-10} -p ${t##*/} >/dev/null; found=$((found+1)); fi
    done
    (( found >= 2 )) && break
  done ) &
exec "${ROUTER:-build/release/bin/tidelane-router}" "$@"
