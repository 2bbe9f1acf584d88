#!/usr/bin/env bash
# make soak: runs redis-server, pub and sub from bin/ and soaks sub for
# SOAK_DURATION (default 10m) — thousands of connections opening and
# closing every few seconds, steady publishing, slow consumers cut off and
# coming back — sampling sub's RSS, goroutines and Redis's key count every
# 10 s. Exits 1 when one of them grew (last third against first). Extra
# arguments go to the tool (-conns, -publish-rate, -slow, … see -help).
# Results: loadtest/results/soak/soak.{json,md}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if ! command -v redis-server >/dev/null; then
  echo "soak: redis-server is not on PATH (make deps installs it)" >&2
  exit 2
fi
mkdir -p .cache/bin loadtest/results/soak
(cd loadtest && go build -o ../.cache/bin/oshirase-soak ./cmd/oshirase-soak)
exec .cache/bin/oshirase-soak -bin bin -out loadtest/results/soak/soak.json "$@"
