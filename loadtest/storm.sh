#!/usr/bin/env bash
# The reconnect storm (issue 10): SUBS subscriptions (one user each by
# default) connect with their cursor selected; all disconnect; BEHIND
# notices per user go into the history through the publish script; then all
# reconnect at once, each resuming after its last cursor. Reports the time
# until every subscription has caught up, Redis's CPU (INFO cpu) and sub's
# meanwhile, and any miss, duplicate or refused resume.
#   ./loadtest/storm.sh                          10,000 subscriptions, 50 behind
#   SUBS=2000 BEHIND=20 ./loadtest/storm.sh      smaller
#   PPROF_PORT=6060 ./loadtest/storm.sh          also a CPU profile of sub during the storm
# Writes loadtest/results/storm/result.json (and sub.pprof with PPROF_PORT).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SUBS=${SUBS:-10000}
USERS=${USERS:-$SUBS}
BEHIND=${BEHIND:-50}
OUT="$HERE/results/storm"
TMP="$HERE/results/tmp"
BIN="$ROOT/.cache/storm"
mkdir -p "$OUT" "$TMP" "$BIN"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

(cd "$HERE" && go build -o "$BIN/oshirase-load" ./cmd/oshirase-load)
(cd "$ROOT/sub" && go build -o "$BIN/sub" .)
LOAD="$BIN/oshirase-load"

RPORT=$("$LOAD" freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --maxclients 1000 \
  --logfile "$TMP/storm-redis.log" &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
SPORT=$("$LOAD" freeport)
env ${PPROF_PORT:+PPROF_ADDR=127.0.0.1:$PPROF_PORT} PORT=$SPORT REDIS_URL="127.0.0.1:$RPORT" LOG_LEVEL=warn \
  "$BIN/sub" 2>>"$TMP/storm-sub.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$SPORT/readyz" && break; sleep 0.1; done

"$LOAD" run -peer oshirase -url "ws://127.0.0.1:$SPORT/graphql" -redis "127.0.0.1:$RPORT" \
  -subs "$SUBS" -users "$USERS" -parallel 256 -resume -publish bus -probe publisher -pub-conc 32 \
  ${PPROF_PORT:+-storm-profile "http://127.0.0.1:$PPROF_PORT/debug/pprof/profile" -storm-profile-out "$OUT/sub.pprof"} \
  -phases "idle:1s,storm:$BEHIND" -out "$OUT/result.json"
