#!/usr/bin/env bash
# bench-collector.sh: CPU per event of the real collector binary and of
# Redis. For each rate it starts a private redis-server and a synthetic
# collector (flush FLUSH, default 0), waits WARMUP, then over DURATION reads
# the collector's utime+stime from /proc/<pid>/stat, the events it wrote
# (tickwire_collector_events_written_total) and Redis's used_cpu_user+sys.
#   RATES="200 2000 20000" DURATION=10s scripts/bench-collector.sh
# CPU time, not wall time, so that a loaded machine moves it less; still
# state the load average with the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh redis # redis-server, installed with apt-get when missing and root
RATES=${RATES:-200 2000 20000}; FLUSH=${FLUSH:-0}
DURATION=${DURATION:-10}; WARMUP=${WARMUP:-3}
DURATION=${DURATION%s}; WARMUP=${WARMUP%s}
BIN=${BIN:-bin/collector}; PUB=${PUB:-}   # PUB=bin/publisher: also run a publisher reading the feed
[ -n "${NOBUILD:-}" ] || go build -o bin/ ./collector ./publisher
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
tick=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tick" '{print ($14+$15)/t}' "/proc/$1/stat"; }
written() { curl -fs "http://$1/metrics" | awk '/^tickwire_collector_events_written_total /{print $2}'; }
rcpu() { redis-cli -p "$1" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/{s+=$2} END{print s}'; }
# Redis's own account of its commands: calls of every command (those the
# scripts call included) and µs spent in the top-level ones (a script's time
# includes the commands it calls; the reads and acks are counted apart).
rcmd() { redis-cli -p "$1" info commandstats | tr -d '\r' |
  awk -F'[=,:]' '/^cmdstat_/{c+=$3} /^cmdstat_(evalsha|eval|xreadgroup|xack):/{u+=$5} END{print c, u}'; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)   flush=$FLUSH duration=${DURATION}s"
printf '%8s %10s %12s %14s %14s %16s %14s\n' rate events/s cpu_µs/event redis_µs/event collector_cpu% redis_cmd_µs/event redis_calls/event
for rate in $RATES; do
  rport=$(free_port); cport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
  rpid=$!; pids+=("$rpid")
  for _ in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  REDIS_URL="redis://127.0.0.1:$rport/0" LOG_LEVEL=warn COLLECTOR_ADDR="127.0.0.1:$cport" \
    COLLECTOR_RATE=$rate COLLECTOR_FLUSH_INTERVAL=$FLUSH "$BIN" 2>"$dir/collector.log" &
  cpid=$!; pids+=("$cpid"); ppid=""
  if [ -n "$PUB" ]; then
    pport=$(free_port)
    REDIS_URL="redis://127.0.0.1:$rport/0" LOG_LEVEL=warn JWT_SECRET=bench-secret PUBLISHER_ADDR="127.0.0.1:$pport" \
      PUBLISHER_REPLICA_ID=bench "$PUB" 2>"$dir/publisher.log" &
    ppid=$!; pids+=("$ppid")
  fi
  for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$cport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  sleep "$WARMUP"
  c0=$(cpu_of "$cpid"); w0=$(written "127.0.0.1:$cport"); r0=$(rcpu "$rport"); t0=$(date +%s.%N)
  read -r k0 u0 < <(rcmd "$rport")
  sleep "$DURATION"
  c1=$(cpu_of "$cpid"); w1=$(written "127.0.0.1:$cport"); r1=$(rcpu "$rport"); t1=$(date +%s.%N)
  read -r k1 u1 < <(rcmd "$rport")
  awk -v r="$rate" -v c="$(echo "$c1 - $c0" | bc -l)" -v w="$(echo "$w1 - $w0" | bc -l)" \
      -v rc="$(echo "$r1 - $r0" | bc -l)" -v t="$(echo "$t1 - $t0" | bc -l)" -v k=$((k1 - k0)) -v u=$((u1 - u0)) \
      'BEGIN{printf "%8d %10.0f %12.1f %14.1f %14.1f %16.2f %14.2f\n", r, w/t, c/w*1e6, rc/w*1e6, c/t*100, u/w, k/w}'
  kill $cpid $ppid $rpid; wait $cpid $ppid $rpid 2>/dev/null || true
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
