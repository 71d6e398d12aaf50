#!/usr/bin/env bash
# one-run.sh CLIENTS OUTDIR: a router, one instant synthetic worker and a bare relay in front
# of it on loopback TCP, then router_overhead_bench with N requests per path (default 4000),
# CLIENTS threads and RATE requests/s (0: closed loop). PERF=1 runs the bench under
# `perf ${PERFCMD:-record -g -F 2000} -p ROUTER`. The router inherits the environment (the
# variants' TL_NO_* switches). Prints the bench's JSON line.
set -euo pipefail
c=${1:-1}; out=${2:-/tmp/one-run}; bin=${BIN:-build/release/bin}
rm -rf "$out"; mkdir -p "$out"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$out/token"; chmod 600 "$out/token"
"$bin/tidelane-router" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --auth-token-file "$out/token" --data-dir "$out/data" > "$out/router.out" 2> "$out/router.err" &
r=$!
for _ in $(seq 100); do grep -q ready "$out/router.out" 2>/dev/null && break; sleep 0.1; done
grpc=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$out/router.out")
"$bin/tidelane-worker" --router "$grpc" --auth-token-file "$out/token" --profile high \
  --time-scale 0 --name instant --listen 127.0.0.1:0 > "$out/worker.out" 2>/dev/null &
w=$!
for _ in $(seq 100); do grep -q ready "$out/worker.out" 2>/dev/null && break; sleep 0.1; done
listen=$(sed -n 's/.*listen=\([^ ]*\).*/\1/p' "$out/worker.out")
"$bin/bare_relay" 127.0.0.1:0 "$listen" "$out/token" > "$out/relay.out" 2>&1 &
b=$!
for _ in $(seq 100); do grep -q ready "$out/relay.out" 2>/dev/null && break; sleep 0.1; done
relay=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$out/relay.out")
bench=("$bin/router_overhead_bench" "$grpc" "$listen" "$out/token" "${N:-4000}" "$c" "${RATE:-0}" "$relay")
if [ -n "${PERF:-}" ]; then
  # shellcheck disable=SC2086
  /usr/bin/perf ${PERFCMD:-record -g -F 2000} -p "$r" -o "$out/perf.data" -- "${bench[@]}"
else
  "${bench[@]}"
fi
kill "$w" "$r" "$b"; wait "$w" "$r" "$b" 2>/dev/null || true
