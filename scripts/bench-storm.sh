#!/usr/bin/env bash
# bench-storm.sh: many users on one publisher replica (issue 11.4). Starts a
# private redis-server, a synthetic collector at a low rate and one
# publisher, then bin/tickstorm: CLIENTS authenticated WebSocket clients (one
# token, one user each) connect and subscribe within STORM, spread over
# PROCS load processes and loopback source addresses 127.0.0.2 and up, and
# are held for WARMUP+DURATION. Reports the storm's time, deliveries/s,
# latency ts->client, publisher memory per connection (RSS and Go heap,
# before and after a forced GC) and CPU per process. Everything on loopback;
# everything it starts is stopped on exit.
#   CLIENTS=15000 PROCS=2 PER=3 RATE=50 scripts/bench-storm.sh
# A/B runs: PUBLISHER=<another build> (and NOBUILD=1 to keep bin/ as it is).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh redis # redis-server, installed with apt-get when missing and root
CLIENTS=${CLIENTS:-15000}; PROCS=${PROCS:-2}; PER=${PER:-3}; STORM=${STORM:-10s}
RATE=${RATE:-50}; FLUSH=${FLUSH:-0}; WARMUP=${WARMUP:-3s}; DURATION=${DURATION:-20s}
PROFILE=${PROFILE:-}   # a file name: save the publisher's heap profile there
TICKSTORM=${TICKSTORM:-bin/tickstorm} # another build of the load tool, for A/B runs
CPUPROFILE=${CPUPROFILE:-} # a file name: the publisher's CPU profile of the storm goes there,
                           # tickstorm's children's to CPUPROFILE.load.0, .1, ...
# One process may hold at most the hard limit of open files (20 000 here):
# the publisher needs one per connection, the load is split over PROCS.
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d); port=$((20000 + RANDOM % 20000)); pport=$((port + 1)); dport=$((port + 2))
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -n "${NOBUILD:-}" ] || go build -o bin/ ./collector ./publisher ./e2e/cmd/tickstorm
PUBLISHER=${PUBLISHER:-bin/publisher} # another build of the publisher, for A/B runs
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
rpid=$!; pids+=($rpid)
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export REDIS_URL="redis://127.0.0.1:$port/0" JWT_SECRET=bench-secret LOG_LEVEL=warn
COLLECTOR_ADDR=127.0.0.1:0 COLLECTOR_RATE=$RATE COLLECTOR_FLUSH_INTERVAL=$FLUSH bin/collector 2>"$dir/collector.log" &
cpid=$!; pids+=($cpid)
PUBLISHER_ADDR=127.0.0.1:$pport PUBLISHER_DEBUG_ADDR=127.0.0.1:$dport PUBLISHER_REPLICA_ID=storm \
  PUBLISHER_MAX_CONNS=$((CLIENTS + 1000)) PUBLISHER_MAX_CONNS_PER_USER=10 "$PUBLISHER" 2>"$dir/publisher.log" &
ppid=$!; pids+=($ppid)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$pport/readyz" >/dev/null && break; sleep 0.1; done
echo "clients=$CLIENTS procs=$PROCS channels/client=$PER storm<=$STORM rate=$RATE events/s flush=$FLUSH duration=$DURATION"
echo "nofile limit $(ulimit -n); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$TICKSTORM" -url "ws://127.0.0.1:$pport/v1/stream" -clients "$CLIENTS" -procs "$PROCS" -per "$PER" \
  -storm "$STORM" -warmup "$WARMUP" -duration "$DURATION" \
  -gc "http://127.0.0.1:$dport/debug/pprof/heap?gc=1,http://127.0.0.1:$dport/debug/pprof/heap?gc=1" \
  -cpu "publisher=$ppid;redis=$rpid;collector=$cpid" ${CPUPROFILE:+-cpuprofile "$CPUPROFILE.load"} &
tpid=$!; pids+=($tpid)
if [ -n "$CPUPROFILE" ]; then # the storm starts a second after tickstorm
  curl -fs -o "$CPUPROFILE" "http://127.0.0.1:$dport/debug/pprof/profile?seconds=$(( ${STORM%s} + 1 ))" &
  pids+=($!)
fi
if [ -n "$PROFILE" ]; then # while the clients are held: after storm, warmup and most of the run
  sleep "$(( ${STORM%s} + ${WARMUP%s} + ${DURATION%s} - 3 ))"
  curl -fs -o "$PROFILE" "http://127.0.0.1:$dport/debug/pprof/heap" && echo "heap profile: $PROFILE"
fi
wait "$tpid"
grep -E 'level=(ERROR|WARN)' "$dir/publisher.log" | sort | uniq -c | sort -rn | head -5 || true
