#!/usr/bin/env bash
# Several sub instances behind nginx against one instance, same total
# (issue 11's benchmark hook, on this one machine):
#
#   loadtest/lb.sh                 3 instances behind nginx vs 1 (direct and behind nginx), 6,000 subscriptions
#   INSTANCES=6 SUBS=9000 loadtest/lb.sh
#   OUT=loadtest/results/lb-100k LAYOUTS="6:1" SUBS=100000 SUBS_PER_CONN=7 NGINX_WORKERS=2 PHASES=idle:2s,company:2 loadtest/lb.sh
#   … then APPEND=1 with LAYOUTS="1:0" for the one-instance run beside it
#
# LAYOUTS lists instances:behind-nginx pairs (default "1:0 1:1 $INSTANCES:1").
# Past ~9,500 connections nginx needs more than one worker process (each
# holds two descriptors per connection under the 20,000-file limit):
# NGINX_WORKERS > 1 runs it with a master and that many workers, each
# accepting on its own listening socket (`listen … reuseport`), so the
# kernel spreads connections evenly and no worker outgrows its
# descriptors (one shared socket lets one busy worker take most of them).
# READY_TIMEOUT (120s) bounds the wait for every subscription to be live;
# PARALLEL (64) is the handshakes each load worker keeps in flight;
# SUB_ENV adds settings to every sub instance ("NAME=value …").
#
# Per layout: a fresh set of servers on one redis-server, then one
# oshirase-load run: connect SUBS subscriptions (one per connection, one
# user each) through nginx or straight to the one instance, settle 2 s
# (memory per idle subscription: the RSS of every sub instance, summed —
# nginx's own peak RSS is printed beside it), 1,000 personal notices/s for
# 5 s (latency), and 3 company-wide notices to every user. nginx is
# Debian's package (scripts/deps.sh), run in the foreground with the tested
# deploy/nginx/sub.conf; it needs two descriptors per connection, under the
# 20,000-file limit of one process here, so SUBS stays under ~9,500.
# Results: loadtest/results/lb/ (results.json, results.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/.cache/bench"
OUT=${OUT:-"$HERE/results/lb"}
TMP="$HERE/results/tmp/$(basename "$OUT")"
INSTANCES=${INSTANCES:-3}
SUBS=${SUBS:-6000}
PHASES=${PHASES:-"idle:2s,fixed:1000:5s,company:3"}
SUBS_PER_CONN=${SUBS_PER_CONN:-1}
NGINX_WORKERS=${NGINX_WORKERS:-1}
READY_TIMEOUT=${READY_TIMEOUT:-120s}
PARALLEL=${PARALLEL:-64}
SUB_ENV=${SUB_ENV:-}
LAYOUTS=${LAYOUTS:-"1:0 1:1 $INSTANCES:1"}
START=$(date +%s)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
log() { printf '[lb %3ds] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || { echo "nginx not found: run scripts/deps.sh" >&2; exit 1; }

mkdir -p "$BIN" "$OUT" "$TMP"
# APPEND=1 keeps the runs of an earlier call with the same OUT (one layout
# per call keeps each call short) and reports them all.
if [[ -z ${APPEND:-} ]]; then rm -f "$TMP"/*.json "$TMP/nginx-peaks" "$TMP"/nginx-fds-*; fi
touch "$TMP/nginx-peaks"
log "building the load tool and sub"
(cd "$HERE" && go build -o "$BIN/oshirase-load" ./cmd/oshirase-load)
(cd "$ROOT/sub" && go build -o "$BIN/sub" .)
LOAD="$BIN/oshirase-load"

RPORT=$("$LOAD" freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --maxclients 1000 --logfile "$TMP/redis.log" &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
REDIS="127.0.0.1:$RPORT"

wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

RUN=$(find "$TMP" -name '*.json' | wc -l)
layout() { # label instances behind-nginx(0/1)
  local label=$1 n=$2 lb=$3 i port ports=() subpids=() url ngpid="" peak=0 fds=""
  for i in $(seq "$n"); do
    port=$("$LOAD" freeport)
    # shellcheck disable=SC2086 # SUB_ENV is a list of NAME=value words
    env PORT="$port" REDIS_URL="$REDIS" LOG_LEVEL=warn DRAIN_DELAY=0s DRAIN_WINDOW=0s $SUB_ENV "$BIN/sub" 2>>"$TMP/sub.log" &
    subpids+=($!); PIDS+=($!); ports+=("$port")
  done
  for port in "${ports[@]}"; do wait_http "http://127.0.0.1:$port/readyz"; done
  url="ws://127.0.0.1:${ports[0]}/graphql"
  if [[ $lb == 1 ]]; then
    local dir="$TMP/nginx-$label" np reuse=""
    np=$("$LOAD" freeport)
    if (( NGINX_WORKERS > 1 )); then reuse=" reuseport"; fi
    mkdir -p "$dir/tmp"
    {
      if (( NGINX_WORKERS > 1 )); then
        echo "worker_processes $NGINX_WORKERS;"
      else
        echo "master_process off; worker_processes 1;"
      fi
      echo "worker_rlimit_nofile $(ulimit -Hn); error_log stderr warn; pid nginx.pid;"
      echo "events { worker_connections $(( $(ulimit -Hn) - 100 )); }"
      echo "http { access_log off; client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi; uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;"
      echo "  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }"
      echo "  upstream sub { least_conn;"
      for port in "${ports[@]}"; do echo "    server 127.0.0.1:$port max_fails=1 fail_timeout=10s;"; done
      echo "  }"
      echo "  server { listen 127.0.0.1:$np$reuse; include $ROOT/deploy/nginx/sub.conf; }"
      echo "}"
    } >"$dir/nginx.conf"
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e stderr -g 'daemon off;' 2>>"$TMP/nginx.log" &
    ngpid=$!; PIDS+=("$ngpid")
    wait_http "http://127.0.0.1:$np/healthz"
    url="ws://127.0.0.1:$np/graphql"
    # nginx's peak RSS while the run goes (master and workers, summed),
    # and the most descriptors any one of its processes held
    ( while kill -0 "$ngpid" 2>/dev/null; do
        ps -o rss= -p "$ngpid" --ppid "$ngpid" 2>/dev/null | awk '{s += $1} END {print s + 0}'
        m=0
        for p in $ngpid $(pgrep -P "$ngpid" || true); do
          f=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
          (( f > m )) && m=$f
        done
        echo "$m" >>"$TMP/nginx-fds-$label"
        sleep 1
      done ) >"$TMP/nginx-rss-$label" &
  fi
  RUN=$((RUN + 1))
  log "== $label: $n instance(s)$([[ $lb == 1 ]] && echo ' behind nginx'), $SUBS subscriptions, $SUBS_PER_CONN per connection"
  "$LOAD" run -peer "$label" -url "$url" -redis "$REDIS" -publish redis -codec wire \
    -server-pids "$(IFS=,; echo "${subpids[*]}")" -subs "$SUBS" -subs-per-conn "$SUBS_PER_CONN" -ready-timeout "$READY_TIMEOUT" -parallel "$PARALLEL" -phases "$PHASES" \
    -out "$TMP/$(printf '%02d' "$RUN")-$label.json" || log "$label failed"
  if [[ -n $ngpid ]]; then
    peak=$(sort -n "$TMP/nginx-rss-$label" | tail -1)
    fds=$(sort -n "$TMP/nginx-fds-$label" 2>/dev/null | tail -1)
    log "$label: nginx peak RSS ${peak:-?} KiB ($(( ${peak:-0} * 1024 * SUBS_PER_CONN / SUBS )) bytes per connection), at most ${fds:-?} descriptors in one of its $NGINX_WORKERS worker(s)"
    echo "$label nginx_peak_rss_kib=${peak:-0} KiB, at most ${fds:-?} descriptors in one of $NGINX_WORKERS worker(s)" >>"$TMP/nginx-peaks"
    kill "$ngpid"; wait "$ngpid" 2>/dev/null || true
  fi
  for i in "${subpids[@]}"; do kill "$i"; wait "$i" 2>/dev/null || true; done
  redis-cli -p "$RPORT" flushall >/dev/null
}

for l in $LAYOUTS; do
  n=${l%%:*} lb=${l##*:}
  layout "sub-x$n$([[ $lb == 1 ]] && echo -nginx)" "$n" "$lb"
done

facts=()
while read -r label kv; do facts+=(-fact "nginx peak RSS, $label=${kv#*=}"); done <"$TMP/nginx-peaks"
"$LOAD" report -in "$TMP" -out "$OUT" -mode quick \
  -machine "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)" \
  -fact "load average when the run began=$LOADAVG" -fact "nginx=$("$NGINX" -v 2>&1 | cut -d/ -f2)" \
  -fact "memory per idle subscription=RSS of every sub instance summed (nginx not included)" "${facts[@]}"
log "done; results in $OUT"
