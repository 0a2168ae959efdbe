#!/usr/bin/env bash
# ensure-browser.sh: make sure Debian's chromium is installed for the
# browser test (e2e TestBrowser). Installs it with apt-get when missing and
# running as root. Otherwise it only warns: the test then skips, except in
# CI (CI=true), where it fails. Used by 'make test'.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is not installed: the browser test will skip (Debian/Ubuntu: sudo apt-get install chromium)." >&2
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi
echo "==> installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  echo "could not install chromium: the browser test will skip." >&2
  [ "${CI:-}" = "true" ] && exit 1
fi
exit 0
