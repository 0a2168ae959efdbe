#!/usr/bin/env bash
# ensure-deps.sh TOOL…: make sure the named tools are installed, installing
# Debian's packages with apt-get when one is missing and we run as root.
#
#   redis    redis-server and redis-cli (required: the tests start their own)
#   promtool prometheus's promtool (make test checks deploy/monitoring)
#   nginx    nginx (an e2e test runs `nginx -t` on deploy/nginx.conf)
#
# A required tool that cannot be had fails; an optional one (a name with a
# leading ?, e.g. ?promtool) is reported and skipped, and the caller skips
# what needs it.
set -euo pipefail

# package and binaries of each tool
pkg_of() {
  case "$1" in
    redis) echo "redis-server redis-tools" ;;
    promtool) echo "prometheus" ;;
    nginx) echo "nginx" ;;
    *) echo "ensure-deps.sh: unknown tool $1" >&2; exit 2 ;;
  esac
}
bins_of() {
  case "$1" in
    redis) echo "redis-server redis-cli" ;;
    *) echo "$1" ;;
  esac
}
have() {
  local b
  for b in $(bins_of "$1"); do command -v "$b" >/dev/null 2>&1 || return 1; done
}

missing=() required=()
for arg in "$@"; do
  tool=${arg#\?}
  pkg_of "$tool" >/dev/null
  have "$tool" && continue
  missing+=("$tool")
  [ "$arg" = "$tool" ] && required+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  for tool in "${missing[@]}"; do
    echo "$tool is not installed (Debian/Ubuntu: sudo apt-get install $(pkg_of "$tool"))." >&2
  done
  if [ ${#required[@]} -gt 0 ]; then
    echo "Install the above, then run again (for make run, REDIS_URL may point at a running Redis instead)." >&2
    exit 1
  fi
  echo "Skipping what needs them." >&2
  exit 0
fi

pkgs=()
for tool in "${missing[@]}"; do pkgs+=($(pkg_of "$tool")); done
echo "==> installing ${pkgs[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# Packages may start a system service (prometheus, nginx); tickwire starts
# its own processes and does not use them.
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
for tool in "${missing[@]}"; do
  if ! have "$tool"; then
    echo "$tool: still missing after apt-get install" >&2
    exit 1
  fi
done
