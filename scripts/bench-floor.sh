#!/usr/bin/env bash
# bench-floor.sh: what this machine charges for the costs tickwire cannot
# avoid at light load, with none of its code in the way (bin/tickfloor):
# a frame written to each of 100 loopback connections every 10 ms (W3's
# fan-out: 100 clients, a frame of ~2 events per source tick), and one
# Redis round trip per 10 ms tick (the collector's write with flush 0) of 2
# and 20 events (200 and 2 000 events/s). Compare with make bench-e2e and
# scripts/bench-collector.sh: BENCHMARKS.md, "Floors".
#   DURATION=10s scripts/bench-floor.sh     (make bench-floor)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh redis # redis-server, installed with apt-get when missing and root
DURATION=${DURATION:-10s}
[ -n "${NOBUILD:-}" ] || go build -o bin/ ./e2e/cmd/tickfloor
dir=$(mktemp -d)
rpid=
cleanup() { [ -z "$rpid" ] || kill "$rpid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
rport=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
rpid=$!
for _ in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg)"
bin/tickfloor -mode write -conns 100 -bytes 300 -events 2 -duration "$DURATION"
bin/tickfloor -mode write -conns 100 -bytes 300 -events 2 -serial -duration "$DURATION"
for ev in 2 20; do
  bin/tickfloor -mode redis -redis "redis://127.0.0.1:$rport/0" -events "$ev" -duration "$DURATION"
done
