#!/usr/bin/env bash
# End-to-end suite: real client libraries and a real browser against
# bin/pub, bin/sub and a redis-server, all on loopback ports.
#   e2e/run.sh                      run every test in tests/
#   e2e/run.sh tests/50-tabs.test.mjs   run some files
# Needs node >= 20, npm, redis-server, and (for the browser test) Chromium.
set -euo pipefail
cd "$(dirname "$0")"

lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ "$(cat node_modules/.e2e-lock-sum 2>/dev/null)" != "$lock_sum" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.e2e-lock-sum
fi

# CHROMIUM names another Chromium-family browser (e.g. google-chrome on
# GitHub's Ubuntu runners, where the chromium package is only a snap stub).
if [[ -z "${CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  echo "e2e: installing Chromium" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

if ! command -v redis-server >/dev/null; then
  echo "e2e: installing redis-server" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
fi

bin_dir="${E2E_BIN_DIR:-../bin}"
if [[ ! -x "$bin_dir/pub" || ! -x "$bin_dir/sub" ]]; then
  make -C .. build
fi

mkdir -p artifacts
# Every server the harness starts leaves its pid here, so that whatever
# happens to a test process, nothing it started outlives the run.
export E2E_PIDDIR
E2E_PIDDIR="$(mktemp -d)"
cleanup() {
  local f
  for f in "$E2E_PIDDIR"/*; do
    [[ -e "$f" ]] && kill -9 "$(basename "$f")" 2>/dev/null || true
  done
  rm -rf "$E2E_PIDDIR"
}
trap cleanup EXIT

if [[ $# -eq 0 ]]; then
  set -- tests/
fi
node --test --test-concurrency=1 --test-force-exit --test-timeout=120000 \
  --test-reporter=spec "$@"
