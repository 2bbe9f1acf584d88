#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: redis-server,
# nginx (the load balancer of the multi-instance tests) and Chromium from
# Debian's packages (npm packages are installed by
# e2e/run.sh from its lockfile). Safe to run again: it installs only what is
# missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Debian's nginx lives in /usr/sbin, which a user's PATH may lack. The tests
# run it in the foreground under a prefix of their own; the package's own
# service is never started for them.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# CHROMIUM may name another Chromium-family browser (see e2e/run.sh).
[ -n "${CHROMIUM:-}" ] || [ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
redis-server --version
{ command -v nginx >/dev/null 2>&1 && nginx -v || /usr/sbin/nginx -v; } 2>&1
