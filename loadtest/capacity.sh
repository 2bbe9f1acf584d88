#!/usr/bin/env bash
# Capacity figures for issue 11 on this one machine: what one sub instance,
# six behind nginx and one Redis or a 3-master Redis Cluster carry, for the
# README's capacity table.
#
#   loadtest/capacity.sh redis     single Redis vs 3-master cluster: publishes/s, Redis CPU per notice (~2 min)
#   loadtest/capacity.sh one       one sub instance, direct: ONE_SUBS (15,000) subscriptions, one per connection
#   loadtest/capacity.sh six       six sub instances behind nginx: SIX_SUBS (100,000), one per connection
#   loadtest/capacity.sh clean     forget the earlier "one" and "six" runs
#   ONE_SUBS=100000 PER_CONN=7 loadtest/capacity.sh one   the same total on one instance, 7 subscriptions a connection
#
# "one" and "six" run loadtest/lb.sh (fresh sub instances on one
# redis-server, nginx with enough workers that none passes 20,000
# descriptors) and append to the same results (results/capacity/connections/),
# so each call stays short; "redis" writes results/capacity/redis/.
# One sub process holds under 20,000 sockets here (the file limit), so the
# one-instance run stops at 15,000; the six-instance run puts 100,000
# sockets through nginx (two descriptors each there, 200,000 in all).
#
# "redis" starts a redis-server and a 3-master cluster (CLUSTER_REPLICAS=1
# adds a replica per master, results then in results/capacity/redis-replicas/), one sub instance on each with SUBS (1,000)
# subscriptions listening, and publishes to USERS (100,000) users with
# oshirase's publish script from the load tool (-publish bus: one script per
# notice, as sendNotification; -publish bus-batch: 1,000 a call, as
# publishBatch) for PUB_SECS (10) each, recording Redis's CPU over the
# phase (INFO cpu, summed over every cluster node).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/.cache/bench"
OUT="$HERE/results/capacity"
STAGE=${1:-}
START=$(date +%s)
log() { printf '[capacity %3ds] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }
machine() { echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"; }

# nginx workers for CONNS proxied connections: two descriptors each, at
# most 8,000 connections a worker (16,000 descriptors, under 20,000 with
# room for an uneven spread)
workers_for() { echo $(( ($1 + 7999) / 8000 )); }

case $STAGE in
one)
  SUBS=${ONE_SUBS:-15000}
  OUT="$OUT/connections" LAYOUTS="1:0" SUBS=$SUBS SUBS_PER_CONN=${PER_CONN:-1} APPEND=1 \
    PHASES=${PHASES:-idle:2s,fixed:1000:5s,company:2} READY_TIMEOUT=${READY_TIMEOUT:-180s} "$HERE/lb.sh"
  ;;
six)
  SUBS=${SIX_SUBS:-100000}
  CONNS=$(( (SUBS + ${PER_CONN:-1} - 1) / ${PER_CONN:-1} ))
  OUT="$OUT/connections" LAYOUTS="6:1" SUBS=$SUBS SUBS_PER_CONN=${PER_CONN:-1} APPEND=1 NGINX_WORKERS=${NGINX_WORKERS:-$(workers_for "$CONNS")} \
    PHASES=${PHASES:-idle:2s,fixed:1000:5s,company:2} READY_TIMEOUT=${READY_TIMEOUT:-240s} "$HERE/lb.sh"
  ;;
redis)
  SUBS=${SUBS:-1000}
  USERS=${USERS:-100000}
  PUB_SECS=${PUB_SECS:-10}
  REPLICAS=${CLUSTER_REPLICAS:-0}
  RNAME=redis; (( REPLICAS == 0 )) || RNAME=redis-replicas
  RNAME=${REDIS_OUT:-$RNAME}
  TMP="$HERE/results/tmp/capacity-$RNAME"
  PIDS=()
  cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$BIN" "$TMP"
  rm -rf "${TMP:?}"/*
  log "building the load tool and sub"
  (cd "$HERE" && go build -o "$BIN/oshirase-load" ./cmd/oshirase-load)
  (cd "$ROOT/sub" && go build -o "$BIN/sub" .)
  LOAD="$BIN/oshirase-load"
  LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

  redis() { # port [extra args…]
    local port=$1; shift
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --logfile "$TMP/redis-$port.log" "$@" &
    PIDS+=($!)
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "redis-server on $port did not start" >&2; return 1
  }
  wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

  # one Redis
  SINGLE=$("$LOAD" freeport)
  redis "$SINGLE"
  # the cluster: 3 masters (+ replicas), made one by redis-cli
  NODES=()
  for _ in $(seq $(( 3 * (1 + REPLICAS) ))); do
    # a cluster node also listens on port + 10000 (its cluster bus)
    p=$("$LOAD" freeport)
    while ss -Htan "sport = :$(( p + 10000 ))" | grep -q .; do p=$("$LOAD" freeport); done
    mkdir -p "$TMP/node-$p"
    redis "$p" --cluster-enabled yes --cluster-config-file "$TMP/node-$p/nodes.conf" --dir "$TMP/node-$p"
    NODES+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${NODES[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$TMP/cluster-create.log" 2>&1
  for n in "${NODES[@]}"; do
    for _ in $(seq 100); do
      redis-cli -h "${n%:*}" -p "${n#*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
  done
  sleep 1
  CLUSTER=$(IFS=,; echo "${NODES[*]}")
  log "one Redis on $SINGLE; cluster of ${#NODES[@]} nodes (3 masters, $REPLICAS replica(s) each): $CLUSTER"

  # Redis's memory, summed over the nodes given (host:port …), in bytes
  used_memory() {
    local n sum=0 v
    for n in "$@"; do
      v=$(redis-cli -h "${n%:*}" -p "${n#*:}" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}')
      sum=$(( sum + v ))
    done
    echo "$sum"
  }
  MEMFACTS=()
  run=0
  topology() { # label nodes -- sub-env… -- load-args…
    local label=$1 port subpid env=() args=() nodes=() mem0; shift
    while [[ $1 != -- ]]; do nodes+=("$1"); shift; done
    shift
    while [[ $1 != -- ]]; do env+=("$1"); shift; done
    shift; args=("$@")
    port=$("$LOAD" freeport)
    env PORT="$port" LOG_LEVEL=warn DRAIN_DELAY=0s DRAIN_WINDOW=0s "${env[@]}" "$BIN/sub" 2>>"$TMP/sub-$label.log" &
    subpid=$!; PIDS+=("$subpid")
    wait_http "http://127.0.0.1:$port/readyz"
    for how in bus "bus-batch"; do
      run=$((run + 1))
      mem0=$(used_memory "${nodes[@]}")
      local extra=(-pub-conc 32)
      [[ $how == bus-batch ]] && extra=(-pub-conc 4 -batch 1000)
      log "== $label, -publish $how: $SUBS subscriptions listening, notices to $USERS users for ${PUB_SECS}s"
      "$LOAD" run -peer "$label" -url "ws://127.0.0.1:$port/graphql" -server-pid "$subpid" "${args[@]}" \
        -publish "$how" -probe publisher "${extra[@]}" -subs "$SUBS" -users "$USERS" \
        -phases "idle:1s,publish:${PUB_SECS}s" -out "$TMP/$(printf '%02d' "$run")-$label-$how.json" || log "$label $how failed"
      # what the notices' histories cost Redis: used_memory grown over the run
      MEMFACTS+=(-fact "Redis used_memory grown, $label $how=$(( ($(used_memory "${nodes[@]}") - mem0) / 1024 )) KiB")
    done
    kill "$subpid"; wait "$subpid" 2>/dev/null || true
  }
  MASTERS=()
  for n in "${NODES[@]}"; do
    redis-cli -h "${n%:*}" -p "${n#*:}" info replication | grep -q 'role:master' && MASTERS+=("$n")
  done
  topology redis-x1 "127.0.0.1:$SINGLE" -- REDIS_URL="127.0.0.1:$SINGLE" -- -redis "127.0.0.1:$SINGLE"
  topology "cluster-x3$( (( REPLICAS > 0 )) && echo "+${REPLICAS}r")" "${MASTERS[@]}" -- REDIS_CLUSTER_ADDRS="$CLUSTER" -- -redis-cluster "$CLUSTER"

  mkdir -p "$OUT/$RNAME"
  "$LOAD" report -in "$TMP" -out "$OUT/$RNAME" -mode quick -machine "$(machine)" \
    -fact "load average when the run began=$LOADAVG" -fact "redis=$(redis-server --version | cut -d' ' -f3)" \
    -fact "cluster=3 masters, $REPLICAS replica(s) each, all on this machine" \
    -fact "listening=$SUBS subscriptions on one sub instance; notices to $USERS users round-robin (1 in $(( USERS / SUBS )) listened to)" \
    -fact "bus=the publish script (count, history append and trim, PUBLISH / SPUBLISH) with HISTORY_SIZE 100, one call per notice" \
    -fact "bus-batch=the bus's PublishBatch, 1,000 notices a call, 4 calls at once (one script per 100 notices on one Redis, one per channel on a cluster)" \
    -fact "Redis CPU=INFO cpu used_cpu_sys + used_cpu_user over the phase, summed over every node" \
    -fact "Redis used_memory=INFO memory, summed over the masters (the histories of the notices the run published)" "${MEMFACTS[@]}"
  log "done; results in $OUT/$RNAME"
  ;;
clean)
  rm -rf "$HERE/results/tmp/connections"
  ;;
*)
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
