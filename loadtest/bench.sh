#!/usr/bin/env bash
# Benchmark oshirase against its peers on this machine, same run, same Redis.
#
#   loadtest/bench.sh --quick   reduced scenarios, all peers, under five minutes
#   loadtest/bench.sh           full run (S1 up to 100k subscriptions, 30 s holds)
#
# Env: PEERS="oshirase node centrifugo bare" picks peers (and their order).
# SCENARIOS=s5 runs only the publish API (S5) rows, e.g.
#   PEERS="oshirase centrifugo" SCENARIOS=s5 loadtest/bench.sh
# and writes its results to loadtest/results/s5/ instead of results.* and
# the mode's copy (default: every scenario). PUB_PPROF_PORT=6061 exposes
# pub's net/http/pprof on 127.0.0.1 for profiling a run. OSHIRASE_BIN=dir
# takes pub and sub from dir instead of building them (to run an earlier
# build beside this one, one run each). REDIS_ARGS adds redis-server
# options (e.g. "--stream-node-max-bytes 512"). OSHIRASE_ENV adds
# environment for pub and sub (e.g. "HISTORY_SIZE=0").
# Builds what it needs (go build, npm ci, go install centrifugo into
# .cache/bin), starts one redis-server on a free port and every server it
# measures, stops all of them on exit, and writes loadtest/results/
# results.json, results.md and plot.svg. Only loopback addresses are used.
set -euo pipefail

MODE=full
case "${1:-}" in
  --quick) MODE=quick ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CACHE="$ROOT/.cache"
BIN="$CACHE/bench"
RES="$HERE/results"
TMP="$RES/tmp"
PEERS=${PEERS:-"oshirase node centrifugo bare"}
SCENARIOS=${SCENARIOS:-all}
case "$SCENARIOS" in
  all | s5) ;;
  *) echo "SCENARIOS: all or s5, got $SCENARIOS" >&2; exit 2 ;;
esac
CENTRIFUGO_VERSION=v6.9.1
START=$(date +%s)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[bench %3ds] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

# --- processes we start, and their cleanup ---------------------------------
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {
  local pid=$1 keep=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# The hard limit is 20k files per process; take all of it for us and children.
ulimit -n "$(ulimit -Hn)"

# --- build -------------------------------------------------------------------
mkdir -p "$BIN" "$CACHE/bin" "$TMP"
rm -f "$TMP"/*.json
log "building the load tool and the bare peer"
(cd "$HERE" && go build -o "$BIN/oshirase-load" ./cmd/oshirase-load && go build -o "$BIN/bare" ./peers/bare)
LOAD="$BIN/oshirase-load"

has_peer() { [[ " $PEERS " == *" $1 "* ]]; }

if has_peer oshirase && [[ -n ${OSHIRASE_BIN:-} ]]; then
  log "oshirase pub and sub from $OSHIRASE_BIN"
  cp "$OSHIRASE_BIN/sub" "$BIN/sub"; cp "$OSHIRASE_BIN/pub" "$BIN/pub"
elif has_peer oshirase; then
  log "building oshirase pub and sub"
  if ! (cd "$ROOT/sub" && go build -o "$BIN/sub.new" . && cd "$ROOT/pub" && go build -o "$BIN/pub.new" .); then
    rm -f "$BIN/sub.new" "$BIN/pub.new"
    if [[ -x "$ROOT/bin/sub" && -x "$ROOT/bin/pub" ]]; then
      log "WARNING: pub/sub do not build from this tree; using bin/pub and bin/sub (make build)"
      cp "$ROOT/bin/sub" "$BIN/sub.new"; cp "$ROOT/bin/pub" "$BIN/pub.new"
    elif [[ -x "$BIN/sub" && -x "$BIN/pub" ]]; then
      log "WARNING: pub/sub do not build from this tree; using the last good build in $BIN"
    else
      log "WARNING: pub/sub do not build and no binaries exist: skipping oshirase"
      PEERS=${PEERS//oshirase/}
    fi
  fi
  if [[ -f "$BIN/sub.new" ]]; then mv "$BIN/sub.new" "$BIN/sub"; mv "$BIN/pub.new" "$BIN/pub"; fi
fi
if has_peer node; then
  log "npm ci (Node peer)"
  (cd "$HERE/peers/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if has_peer centrifugo && [[ ! -x "$CACHE/bin/centrifugo" ]]; then
  log "go install centrifugo $CENTRIFUGO_VERSION (first run only; takes a few minutes)"
  GOBIN="$CACHE/bin" go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
fi

# --- Redis ---------------------------------------------------------------------
RPORT=$("$LOAD" freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
  --maxclients 1000 --logfile "$TMP/redis.log" ${REDIS_ARGS:-} &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
REDIS="127.0.0.1:$RPORT"
log "redis-server on $REDIS"

wait_http() { # url
  for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "not ready: $1" >&2; return 1
}

# --- peers: start_<peer> sets SERVER_PID, WS_URL and the load tool's flags ---
PUB_PID=""
start_oshirase() {
  local sp pp
  sp=$("$LOAD" freeport); pp=$("$LOAD" freeport)
  # PPROF_PORT=6060 exposes sub's net/http/pprof on 127.0.0.1 for profiling a run.
  # No drain: one instance, no balancer, and a stop between runs should not wait.
  # shellcheck disable=SC2086 # OSHIRASE_ENV is a list of NAME=value words
  env ${PPROF_PORT:+PPROF_ADDR=127.0.0.1:$PPROF_PORT} PORT=$sp REDIS_URL=$REDIS LOG_LEVEL=warn DRAIN_DELAY=0s DRAIN_WINDOW=0s \
    ${OSHIRASE_ENV:-} "$BIN/sub" 2>>"$TMP/sub.log" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  # shellcheck disable=SC2086
  env ${PUB_PPROF_PORT:+PPROF_ADDR=127.0.0.1:$PUB_PPROF_PORT} PORT=$pp REDIS_URL=$REDIS LOG_LEVEL=warn ${OSHIRASE_ENV:-} "$BIN/pub" 2>>"$TMP/pub.log" &
  PUB_PID=$!; PIDS+=("$PUB_PID")
  wait_http "http://127.0.0.1:$sp/readyz"
  wait_http "http://127.0.0.1:$pp/readyz"
  WS_URL="ws://127.0.0.1:$sp/graphql"
  FLAGS=(-publish redis -codec wire)
  S5_FLAGS=(-publish mutation -pub-url "http://127.0.0.1:$pp/query" -pub-conc 32 -pub-pid "$PUB_PID")
}
start_bare() {
  local p; p=$("$LOAD" freeport)
  PORT=$p REDIS_URL=$REDIS "$BIN/bare" 2>>"$TMP/bare.log" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  wait_http "http://127.0.0.1:$p/readyz"
  WS_URL="ws://127.0.0.1:$p/graphql"
  FLAGS=(-publish redis -codec wire)
  S5_FLAGS=()
}
start_node() {
  local p; p=$("$LOAD" freeport)
  PORT=$p REDIS_URL=$REDIS node "$HERE/peers/node/server.js" 2>>"$TMP/node.log" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  wait_http "http://127.0.0.1:$p/readyz"
  WS_URL="ws://127.0.0.1:$p/graphql"
  FLAGS=(-publish redis -codec node)
  S5_FLAGS=(-publish mutation -codec node -pub-url "http://127.0.0.1:$p/graphql" -pub-conc 32)
}
CENT_SECRET=bench-secret-not-for-production
CENT_KEY=bench-api-key
start_centrifugo() {
  local p; p=$("$LOAD" freeport)
  cat >"$TMP/centrifugo.json" <<EOF
{
  "http_server": {"address": "127.0.0.1", "port": $p},
  "log": {"level": "error"},
  "health": {"enabled": true},
  "client": {
    "token": {"hmac_secret_key": "$CENT_SECRET"},
    "allowed_origins": ["*"],
    "queue_max_size": 1048576
  },
  "http_api": {"key": "$CENT_KEY"},
  "engine": {"type": "redis", "redis": {"address": "$REDIS"}},
  "channel": {
    "namespaces": [
      {"name": "personal", "allow_user_limited_channels": true},
      {"name": "personalh", "allow_user_limited_channels": true, "history_size": 100, "history_ttl": "24h"},
      {"name": "notif", "allow_subscribe_for_client": true}
    ]
  }
}
EOF
  "$CACHE/bin/centrifugo" -c "$TMP/centrifugo.json" >>"$TMP/centrifugo.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  wait_http "http://127.0.0.1:$p/health"
  WS_URL="ws://127.0.0.1:$p/connection/websocket"
  FLAGS=(-proto centrifugo -jwt-secret "$CENT_SECRET" -channel-fmt 'personal:#%s' -probe none
         -publish centrifugo -centrifugo-api "http://127.0.0.1:$p/api" -centrifugo-key "$CENT_KEY" -batch 64)
  S5_FLAGS=(-proto centrifugo -jwt-secret "$CENT_SECRET" -channel-fmt 'personal:#%s' -probe none
         -publish centrifugo -centrifugo-api "http://127.0.0.1:$p/api" -centrifugo-key "$CENT_KEY" -batch 1 -pub-conc 32)
}
stop_server() {
  [[ -n "$PUB_PID" ]] && stop_pid "$PUB_PID"
  PUB_PID=""
  stop_pid "$SERVER_PID"
  redis-cli -p "$RPORT" flushall >/dev/null
}

RUN=0
load() { # peer tag args…: one oshirase-load run, results into $TMP
  local peer=$1 tag=$2; shift 2
  RUN=$((RUN + 1))
  "$LOAD" run -peer "$peer" -url "$WS_URL" -redis "$REDIS" -server-pid "$SERVER_PID" \
    -out "$TMP/$(printf '%02d' "$RUN")-$peer-$tag.json" "$@"
}

# --- scenarios -------------------------------------------------------------------
if [[ $MODE == quick ]]; then
  S1_SIZES=(4000)            # subscriptions, one per connection
  N=4000                     # users for S2/S3, tabs for S4
  PERSONAL="fixed:1000:2s,fixed:10000:2s,sweep:5000+10000+20000+40000:2s"
  BCAST="broadcast:3"
  S5_DUR=3s
else
  S1_SIZES=(10000 50000 100000)
  N=10000
  PERSONAL="fixed:1000:10s,fixed:10000:10s,sweep:5000+10000+20000+30000+40000+60000:5s:30s"
  BCAST="broadcast:5"
  S5_DUR=10s
fi
P99_BOUND=${P99_BOUND:-100ms}

per_conn_for() { # subscriptions -> subscriptions per connection (server fd limit)
  local n=$1
  if (( n <= 15000 )); then echo 1; else echo $(( (n + 14999) / 15000 )); fi
}

if [[ $SCENARIOS == s5 ]]; then
  S1_SIZES=()
fi

for peer in $PEERS; do
  log "== $peer"
  # S1: a fresh server per size, so RSS before/after is the subscriptions' own.
  for n in ${S1_SIZES[@]+"${S1_SIZES[@]}"}; do
    "start_$peer"
    k=$(per_conn_for "$n")
    extra=()
    if [[ $peer == centrifugo && $k -gt 1 ]]; then
      # a user-limited channel admits one user per connection; many users
      # on one connection need client-subscribable channels instead
      extra=(-channel-fmt 'notif:%s')
    fi
    phases="idle:2s"
    if [[ $n == "${S1_SIZES[0]}" ]]; then
      phases="idle:2s,$PERSONAL"   # S2/S3 on the same 1-per-connection users
    fi
    load "$peer" "s1-$n" "${FLAGS[@]}" "${extra[@]}" -subs "$n" -subs-per-conn "$k" \
      -p99-bound "$P99_BOUND" -ready-timeout 120s -phases "$phases" || log "$peer S1 $n failed"
    stop_server
  done
  # S4: N tabs of one user; for oshirase also a company-wide notice to N
  # different users (every subscription also reads its company's channel).
  "start_$peer"
  if [[ $SCENARIOS == all ]]; then
    load "$peer" s4 "${FLAGS[@]}" -subs "$N" -users 1 -phases "$BCAST" || log "$peer S4 failed"
  fi
  if [[ $SCENARIOS == all && $peer == oshirase ]]; then
    load "$peer" s4-company "${FLAGS[@]}" -subs "$N" -users "$N" -phases "company:${BCAST#broadcast:}" || log "$peer S4 company failed"
  fi
  # S5: the publish API flat out, 1000 users listening.
  if (( ${#S5_FLAGS[@]} > 0 )); then
    load "$peer" s5 "${S5_FLAGS[@]}" -subs 1000 -phases "publish:$S5_DUR" || log "$peer S5 failed"
  fi
  if [[ $peer == centrifugo ]]; then
    # S5 again with a history of 100 notices per channel, as oshirase keeps
    # by default (HISTORY_SIZE, HISTORY_TTL): each publish then also
    # appends to a Redis stream, as pub's does.
    load "$peer" s5-history "${S5_FLAGS[@]}" -channel-fmt 'personalh:#%s' -publish-label "centrifugo, history 100" \
      -subs 1000 -phases "publish:$S5_DUR" || log "$peer S5 history failed"
  fi
  if [[ $peer == oshirase ]]; then
    # S5 with an idempotency key on every call (each key new: the bus
    # records every publish), and through publishBatch, 1,000 notices a
    # call, 4 calls at once, to 100,000 users of whom 1,000 listen.
    load "$peer" s5-idem "${S5_FLAGS[@]}" -publish mutation-idem -subs 1000 -phases "publish:$S5_DUR" || log "$peer S5 idem failed"
    load "$peer" s5-batch "${S5_FLAGS[@]}" -publish mutation-batch -batch 1000 -pub-conc 4 \
      -subs 1000 -users 100000 -phases "publish:$S5_DUR" || log "$peer S5 batch failed"
  fi
  stop_server
done

log "redis-benchmark PUBLISH"
"$LOAD" redis-bench -port "$RPORT" -n "$([[ $MODE == quick ]] && echo 300000 || echo 2000000)" \
  -out "$TMP/99-redis.json" >/dev/null || log "redis-benchmark failed"

OUT=$RES
if [[ $SCENARIOS == s5 ]]; then OUT=$RES/s5; mkdir -p "$OUT"; fi
SETTINGS=() # what this run set beyond the defaults, into the results' setup
if [[ -n ${OSHIRASE_ENV:-} ]]; then SETTINGS+=(-fact "pub and sub environment=$OSHIRASE_ENV"); fi
if [[ -n ${REDIS_ARGS:-} ]]; then SETTINGS+=(-fact "redis-server options=$REDIS_ARGS"); fi
"$LOAD" report -in "$TMP" -out "$OUT" -mode "$MODE" ${SETTINGS[@]+"${SETTINGS[@]}"} \
  -machine "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)" \
  -fact "redis=$(redis-server --version | awk '{print $3}' | cut -d= -f2)" \
  -fact "go=$(go env GOVERSION)" -fact "node=$(node --version 2>/dev/null || echo none)" \
  -fact "centrifugo=$CENTRIFUGO_VERSION" -fact "load average when the run began=$LOADAVG" -fact "p99 bound for S2=$P99_BOUND" \
  -fact "publishing S2-S4=Redis PUBLISH (oshirase, bare: wire format; node: its channel) or Centrifugo HTTP batch API" \
  -fact "S5=oshirase pub / Node mutation over keep-alive HTTP, 32 concurrent (oshirase also with an idempotency key per call, and publishBatch of 1000 notices, 4 concurrent); Centrifugo /api/publish, 32 concurrent"
if [[ $SCENARIOS == s5 ]]; then
  log "done in $(( $(date +%s) - START )) s; results in $OUT"
  exit 0
fi
# results.* is always the latest run; a copy per mode keeps the other one.
mkdir -p "$RES/$MODE"
cp "$RES/results.json" "$RES/results.md" "$RES/plot.svg" "$RES/$MODE/"
log "done in $(( $(date +%s) - START )) s; results in $RES (and $RES/$MODE)"
