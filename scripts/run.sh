#!/usr/bin/env bash
# run.sh: the 'make run' demo, and 'make replay' / 'make stdin' beside it.
# Starts a local Redis if none answers at REDIS_URL, then one collector and
# the publisher replicas, checks that each came up (or says why not), and
# prints the demo page URLs with a development token. Ctrl-C stops what it
# started, and nothing else: the collector and publishers first (so that
# the publishers remove their consumer groups), Redis last.
#
# Settings (environment): REDIS_URL, STREAM_PREFIX, PUB_PORTS (the replicas'
# ports, "8080 8081"), COLLECTOR_ADDR (127.0.0.1:9101), RUN_DIR (.run, logs),
# SECRET_FILE (the development JWT secret, $RUN_DIR/jwt-secret), BIN_DIR
# (where the binaries are, bin), and every
# COLLECTOR_* / PUBLISHER_* variable, passed on. A collector whose input
# ends (a replay without loop, stdin closed) exits 0; the publishers keep
# serving until Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
RUN_DIR=$(realpath -m "${RUN_DIR:-.run}")
SECRET_FILE=$(realpath -m "${SECRET_FILE:-$RUN_DIR/jwt-secret}")
PUB_PORTS=${PUB_PORTS:-"8080 8081"}
COLLECTOR_ADDR=${COLLECTOR_ADDR:-127.0.0.1:9101}
BIN_DIR=${BIN_DIR:-bin}
mkdir -p "$RUN_DIR" "$(dirname "$SECRET_FILE")"
# The collector's stdin (COLLECTOR_SOURCE=stdin): a background job would
# get /dev/null. With stdin closed, /dev/null it is.
if { true 3<&0; } 2>/dev/null; then exec 3<&0; else exec 3</dev/null; fi

redis_pid=
pids=()   # collector and publishers
names=()  # their names, same order
cleanup() {
  trap - INT TERM EXIT
  local live=()
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && live+=("$p"); done
  if [ ${#live[@]} -gt 0 ]; then
    echo
    echo "==> stopping the collector and publishers (${#live[@]} processes)"
    kill -TERM "${live[@]}" 2>/dev/null || true
    wait "${live[@]}" 2>/dev/null || true
  fi
  if [ -n "$redis_pid" ]; then
    echo "==> stopping redis-server"
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
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
  scripts/ensure-deps.sh redis
  if redis_answers; then
    echo "==> using the Redis at $REDIS_URL"
  else
    case "$host" in
      127.0.0.1|localhost) ;;
      *) echo "no Redis answers at $REDIS_URL, and it is not local: start it, or unset REDIS_URL" >&2; exit 1 ;;
    esac
    echo "==> starting redis-server on port $port (data in $RUN_DIR, log $RUN_DIR/redis.log)"
    # In a session of its own: Ctrl-C at the terminal signals the whole
    # foreground process group, and Redis must outlive the publishers, which
    # remove their consumer groups as they stop. cleanup stops it last.
    setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$RUN_DIR" --save "" --appendonly yes \
      --daemonize no --logfile "$RUN_DIR/redis.log" &
    redis_pid=$!
    for _ in $(seq 1 100); do redis_answers && break; sleep 0.1; done
    redis_answers || { echo "redis-server did not start; see $RUN_DIR/redis.log" >&2; exit 1; }
  fi
fi

# A development secret, made once and kept.
if [ -z "${JWT_SECRET:-}" ]; then
  [ -s "$SECRET_FILE" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$SECRET_FILE"
  JWT_SECRET=$(cat "$SECRET_FILE")
fi
export REDIS_URL JWT_SECRET

# failed NAME LOG: a process did not come up; say why (its last log lines)
# and stop.
failed() {
  echo "$1 did not start. The end of its log ($2):" >&2
  tail -n 5 "$2" | sed 's/^/    /' >&2
  exit 1
}

# up NAME PID LOG URL: wait until URL answers 200 (return 0), or the
# process exits: with status 0 (a finite input, all written) return 1,
# otherwise say why and stop.
up() {
  local end=$((SECONDS + 15))
  while [ "$SECONDS" -lt "$end" ]; do
    if ! kill -0 "$2" 2>/dev/null; then
      wait "$2" && return 1
      failed "$1" "$3"
    fi
    # Bounded: the port may belong to something that accepts and never
    # answers (another program holding it, while our process fails to bind).
    curl -fsS --max-time 2 "$4" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  failed "$1 (no answer at $4 within 15 s)" "$3"
}

echo "==> starting the collector on $COLLECTOR_ADDR (source ${COLLECTOR_SOURCE:-synthetic}, log $RUN_DIR/collector.log)"
COLLECTOR_ADDR=$COLLECTOR_ADDR "$BIN_DIR/collector" <&3 >"$RUN_DIR/collector.log" 2>&1 &
pids+=($!) names+=(collector)
collector_url="http://${COLLECTOR_ADDR/#:/127.0.0.1:}/healthz"

n=0
for p in $PUB_PORTS; do
  n=$((n + 1))
  echo "==> starting publisher pub-$n on :$p (log $RUN_DIR/publisher-$n.log)"
  PUBLISHER_ADDR=":$p" PUBLISHER_REPLICA_ID="pub-$n" "$BIN_DIR/publisher" serve >"$RUN_DIR/publisher-$n.log" 2>&1 &
  pids+=($!) names+=("publisher pub-$n")
done

# A finite input may be written and gone before we look: a collector that
# exited 0 is fine.
collector_done=
up collector "${pids[0]}" "$RUN_DIR/collector.log" "$collector_url" || collector_done=1
i=1
for p in $PUB_PORTS; do
  up "publisher pub-$i on :$p" "${pids[$i]}" "$RUN_DIR/publisher-$i.log" "http://127.0.0.1:$p/readyz" ||
    failed "publisher pub-$i on :$p" "$RUN_DIR/publisher-$i.log"
  i=$((i + 1))
done

token=$("$BIN_DIR/publisher" token --sub demo --ttl 24h)
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
echo "Watch it:  STREAM_PREFIX=${STREAM_PREFIX:-md} bin/publisher status    STREAM_PREFIX=${STREAM_PREFIX:-md} bin/publisher tail 'trade:*'"
echo "Ctrl-C stops everything started here."

if [ -n "$collector_done" ]; then
  echo "==> the collector already finished its input; the publishers serve it from history."
  pids=("${pids[@]:1}") names=("${names[@]:1}")
fi

# Wait until Ctrl-C. A collector that ends cleanly (its input ended) leaves
# the publishers serving; any other exit stops the rest.
stopping=
trap 'stopping=1' INT TERM
set +e
while [ ${#pids[@]} -gt 0 ]; do
  done_pid=
  wait -n -p done_pid "${pids[@]}"
  status=$?
  [ -n "$stopping" ] && exit 0
  [ -z "$done_pid" ] && continue # interrupted by a trapped signal
  name=? keep=() keep_names=()
  for i in "${!pids[@]}"; do
    if [ "${pids[$i]}" = "$done_pid" ]; then name=${names[$i]}; else keep+=("${pids[$i]}") keep_names+=("${names[$i]}"); fi
  done
  pids=("${keep[@]}") names=("${keep_names[@]}")
  if [ "$name" = collector ] && [ "$status" -eq 0 ]; then
    echo "==> the collector finished its input (log $RUN_DIR/collector.log); the publishers keep serving it from history. Ctrl-C stops them."
    continue
  fi
  echo "$name exited (status $status); see $RUN_DIR. Stopping the rest." >&2
  exit "$status"
done
