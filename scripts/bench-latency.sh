#!/usr/bin/env bash
# bench-latency.sh: end-to-end latency (event ts -> client) and fan-out with
# the real binaries: a private redis-server, one synthetic collector, one
# publisher, and tickload. Used for BENCHMARKS.md.
#   FLUSH=0 RATE=1000 CLIENTS=10 DURATION=60s scripts/bench-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh redis # redis-server, installed with apt-get when missing and root
FLUSH=${FLUSH:-500ms}; RATE=${RATE:-200}; CLIENTS=${CLIENTS:-10}; DURATION=${DURATION:-60s}
CHANNELS=${CHANNELS:-trade:*,quote:*}
dir=$(mktemp -d); port=$((20000 + RANDOM % 20000)); pport=$((port + 1))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
go build -o bin/ ./collector ./publisher ./e2e/cmd/tickload
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
sleep 0.5
export REDIS_URL="redis://127.0.0.1:$port/0" JWT_SECRET=bench-secret LOG_LEVEL=warn
COLLECTOR_ADDR=127.0.0.1:0 COLLECTOR_RATE=$RATE COLLECTOR_FLUSH_INTERVAL=$FLUSH bin/collector 2>"$dir/collector.log" &
pids+=($!)
PUBLISHER_ADDR=127.0.0.1:$pport PUBLISHER_DEBUG_ADDR=${DEBUG_ADDR:-} PUBLISHER_REPLICA_ID=bench PUBLISHER_MAX_CONNS_PER_USER=100000 bin/publisher 2>"$dir/publisher.log" &
pids+=($!)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$pport/readyz" >/dev/null && break; sleep 0.1; done
echo "flush=$FLUSH rate=$RATE events/s clients=$CLIENTS channels=$CHANNELS duration=$DURATION"
bin/tickload -url "ws://127.0.0.1:$pport/v1/stream" -clients "$CLIENTS" -channels "$CHANNELS" -duration "$DURATION" -warmup 3s
