#!/usr/bin/env bash
# run.sh: the 'make run' demo. Starts a local Redis if none answers at
# REDIS_URL, then one collector and two publisher replicas, and prints the
# demo page URLs with a development token. Ctrl-C stops what it started,
# and nothing else.
set -euo pipefail

cd "$(dirname "$0")/.."
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
RUN_DIR=$(realpath -m "${RUN_DIR:-.run}")
PUB_PORTS=${PUB_PORTS:-"8080 8081"}
mkdir -p "$RUN_DIR"

pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "==> stopping (${#pids[@]} processes)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# host and port of REDIS_URL, for redis-cli and for starting a server.
hostport=${REDIS_URL#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
host=${hostport%:*}
port=${hostport##*:}
[ "$port" = "$hostport" ] && port=6379

redis_answers() {
  command -v redis-cli >/dev/null 2>&1 || return 1
  redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG
}

if redis_answers; then
  echo "==> using the Redis at $REDIS_URL"
else
  scripts/ensure-redis.sh
  if redis_answers; then
    echo "==> using the Redis at $REDIS_URL"
  else
    case "$host" in
      127.0.0.1|localhost) ;;
      *) echo "no Redis answers at $REDIS_URL, and it is not local: start it, or unset REDIS_URL" >&2; exit 1 ;;
    esac
    echo "==> starting redis-server on port $port (data in $RUN_DIR, log $RUN_DIR/redis.log)"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$RUN_DIR" --save "" --appendonly yes \
      --daemonize no --logfile "$RUN_DIR/redis.log" &
    pids+=($!)
    for _ in $(seq 1 100); do redis_answers && break; sleep 0.1; done
    redis_answers || { echo "redis-server did not start; see $RUN_DIR/redis.log" >&2; exit 1; }
  fi
fi

# A development secret, made once and kept in the run directory.
if [ -z "${JWT_SECRET:-}" ]; then
  [ -s "$RUN_DIR/jwt-secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN_DIR/jwt-secret"
  JWT_SECRET=$(cat "$RUN_DIR/jwt-secret")
fi
export REDIS_URL JWT_SECRET

echo "==> starting the collector (log $RUN_DIR/collector.log)"
COLLECTOR_ADDR=${COLLECTOR_ADDR:-127.0.0.1:9101} bin/collector >"$RUN_DIR/collector.log" 2>&1 &
pids+=($!)

n=0
for p in $PUB_PORTS; do
  n=$((n + 1))
  echo "==> starting publisher pub-$n on :$p (log $RUN_DIR/publisher-$n.log)"
  PUBLISHER_ADDR=":$p" PUBLISHER_REPLICA_ID="pub-$n" bin/publisher serve >"$RUN_DIR/publisher-$n.log" 2>&1 &
  pids+=($!)
done

for p in $PUB_PORTS; do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$p/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

token=$(bin/publisher token --sub demo --ttl 24h)
echo
echo "tickwire is running. Open the demo page of either replica:"
for p in $PUB_PORTS; do
  echo "  http://localhost:$p/?token=$token"
done
echo
echo "Or with any WebSocket client:"
echo "  wscat -c \"ws://localhost:${PUB_PORTS%% *}/v1/stream?access_token=$token\""
echo "  > {\"op\":\"subscribe\",\"channels\":[\"trade:AAPL\",\"quote:*\"]}"
echo
echo "Ctrl-C stops everything started here."

# Exit (and stop the rest) on Ctrl-C, or as soon as any process we started
# ends by itself.
stopping=
trap 'stopping=1' INT TERM
set +e
wait -n "${pids[@]}"
status=$?
if [ -n "$stopping" ]; then
  exit 0
fi
echo "a process exited (status $status); see the logs in $RUN_DIR" >&2
exit "$status"
