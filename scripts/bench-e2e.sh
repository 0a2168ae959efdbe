#!/usr/bin/env bash
# bench-e2e.sh: the named workloads of issue 9 (tickload -preset w1..w4)
# with the real binaries. For each preset it starts, on loopback and free
# ports, a private redis-server, a synthetic collector at the preset's rate
# (five symbols, bars and signals off, so every client receives the rate;
# flush FLUSH, default 0) and one publisher, runs tickload with -pids of the
# collector and publisher (deliveries per server CPU-second), and stops
# everything. Each preset is bounded by DURATION + WARMUP + a minute.
#   PRESETS="w1 w3" DURATION=15s scripts/bench-e2e.sh     (make bench-e2e)
# TICKLOAD_ARGS adds flags of tickload's, e.g. TICKLOAD_ARGS=-sse: the
# clients read event streams (GET /v1/sse) instead of WebSockets.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh redis # redis-server, installed with apt-get when missing and root
PRESETS=${PRESETS:-w1 w2 w3 w4}; FLUSH=${FLUSH:-0}
DURATION=${DURATION:-15s}; WARMUP=${WARMUP:-3s}
[ -n "${NOBUILD:-}" ] || go build -o bin/ ./collector ./publisher ./e2e/cmd/tickload
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
limit=$(( ${DURATION%s} + ${WARMUP%s} + 60 ))
for preset in $PRESETS; do
  read -r rate symbols < <(bin/tickload -preset "$preset" -print-rate)
  rport=$(free_port); cport=$(free_port); pport=$(free_port); dport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
  rpid=$!; pids+=("$rpid")
  for _ in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REDIS_URL="redis://127.0.0.1:$rport/0" JWT_SECRET=bench-secret LOG_LEVEL=warn
  COLLECTOR_ADDR="127.0.0.1:$cport" COLLECTOR_RATE=$rate COLLECTOR_SYMBOLS=$symbols COLLECTOR_BARS=false \
    COLLECTOR_SIGNALS=false COLLECTOR_FLUSH_INTERVAL=$FLUSH bin/collector 2>"$dir/collector.log" &
  cpid=$!; pids+=("$cpid")
  PUBLISHER_ADDR="127.0.0.1:$pport" PUBLISHER_DEBUG_ADDR="127.0.0.1:$dport" PUBLISHER_REPLICA_ID=bench PUBLISHER_MAX_CONNS_PER_USER=100000 \
    bin/publisher 2>"$dir/publisher.log" &
  ppid=$!; pids+=("$ppid")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$pport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "== $preset: rate=$rate flush=$FLUSH duration=$DURATION load average $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout "$limit" bin/tickload -url "ws://127.0.0.1:$pport/v1/stream" -preset "$preset" \
    -pids "$cpid,$ppid" -redis "$REDIS_URL" -gc "http://127.0.0.1:$dport/debug/pprof/heap?gc=1" -duration "$DURATION" -warmup "$WARMUP" ${TICKLOAD_ARGS:-} || echo "tickload failed ($?)"
  kill "$cpid" "$ppid" "$rpid"; wait "$cpid" "$ppid" "$rpid" 2>/dev/null || true
  pids=()
done
