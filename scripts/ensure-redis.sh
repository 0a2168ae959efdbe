#!/usr/bin/env bash
# ensure-redis.sh: make sure redis-server and redis-cli are installed.
# Installs them with apt-get when missing and running as root; otherwise
# says what to do. Used by 'make run' and 'make test'.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install redis-server)," >&2
  echo "or point REDIS_URL at a running Redis (make run only)." >&2
  exit 1
fi
echo "==> installing redis-server with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
# The package may start a system service; tickwire starts its own servers.
command -v redis-server >/dev/null
