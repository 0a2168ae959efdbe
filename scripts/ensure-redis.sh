#!/usr/bin/env bash
# ensure-redis.sh: make sure redis-server and redis-cli are installed
# (kept for callers of the old name; see ensure-deps.sh).
exec "$(dirname "$0")/ensure-deps.sh" redis
