#!/usr/bin/env bash
# Mutation testing (go-gremlins v0.6.0) of the packages that carry the
# guarantees, one package at a time, one worker (the machine is shared).
#
#   ./scripts/mutation.sh                      every package below
#   ./scripts/mutation.sh bus sub/internal/hub only those
#   MUTATION_OUT=dir                           where the JSON reports go
#                                              (default .cache/mutation)
#   MUTATION_FILES="shard.go slot.go"          mutate only these files of the
#                                              package (one package named)
#   TOPOLOGY=single|cluster|sentinel           bus: run its tests on one Redis
#                                              topology (passed through to
#                                              go test; unset: all three)
#
# The score of a package is killed / (killed + lived + not covered): a
# mutant no test of the package runs counts as not killed. Timed-out and
# not-viable mutants are shown but counted on neither side. Mutants that
# survive and are equivalent are listed in docs/mutation.md.
#
# gremlins copies the module it tests into a temporary directory, where the
# modules' relative `replace ../wire` lines would point nowhere. So each
# module is staged in a scratch directory with its replace lines made
# absolute, and run with GOWORK=off.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

GREMLINS=${GREMLINS:-"go run github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0"}
out=${MUTATION_OUT:-$root/.cache/mutation}
mkdir -p "$out"

# package -> extra gremlins flags. The timeout coefficient multiplies the
# time the package's own test run took (gremlins' coverage run).
declare -A flags=(
  [wire]=""
  [bus]="--exclude-files ^redistest/ --timeout-coefficient 4"
  [service/auth]="--exclude-files ^authtest/"
  [sub/internal/cursor]=""
  [sub/internal/hub]=""
  # the protocol layer: framing (frame.go), the two subprotocols' message
  # rules (tws.go, legacy.go), the WebSocket session (ws.go) and SSE
  # (sse.go); not the write engine, the server's config, resume
  [sub/internal/transport]="--exclude-files ^(conn|transport|resume|operation|write_unix|write_other)\.go$"
)
order=(wire bus service/auth sub/internal/cursor sub/internal/hub sub/internal/transport)
if (($# > 0)); then order=("$@"); fi
files=${MUTATION_FILES:-}
if [[ -n $files && ${#order[@]} -ne 1 ]]; then
  echo "mutation: MUTATION_FILES needs exactly one package" >&2; exit 2
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/mutation.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# stage_module copies module $1 to $stage/$1 with absolute replace paths.
stage_module() {
  local mod=$1
  [[ -d $stage/$mod ]] && return
  mkdir -p "$stage/$mod"
  (cd "$mod" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$stage/$mod"
  local line from to
  while read -r from to; do
    (cd "$stage/$mod" && GOWORK=off go mod edit -replace "$from=$(cd "$root/$mod/$to" && pwd)")
  done < <(cd "$mod" && GOWORK=off go mod edit -json | jq -r '.Replace[]? | select(.New.Path | startswith(".")) | "\(.Old.Path) \(.New.Path)"')
}

status=0
summary=()
for pkg in "${order[@]}"; do
  if [[ ! -v "flags[$pkg]" ]]; then echo "mutation: unknown package $pkg (known: ${order[*]})" >&2; exit 2; fi
  mod=${pkg%%/*}
  sub=${pkg#"$mod"}
  sub=${sub#/}
  stage_module "$mod"
  report="$out/${pkg//\//_}.json"
  extra=()
  label=$pkg
  if [[ -n $files ]]; then
    # Exclude every other non-test Go file of the package's directory
    # (gremlins matches paths relative to it; RE2 has no negation).
    others=()
    for f in "$pkg"/*.go; do
      f=${f##*/}
      [[ $f == *_test.go ]] && continue
      [[ " $files " == *" $f "* ]] || others+=("${f%.go}")
    done
    for f in $files; do
      [[ -f $pkg/$f ]] || { echo "mutation: no file $pkg/$f" >&2; exit 2; }
    done
    if ((${#others[@]} > 0)); then
      extra=(--exclude-files "^($(IFS='|'; echo "${others[*]}"))\.go$")
    fi
    label="$pkg ($files)"
    tag=${files// /+}
    report="$out/${pkg//\//_}_${tag//.go/}.json"
  fi
  [[ -n ${TOPOLOGY:-} ]] && label="$label TOPOLOGY=$TOPOLOGY"
  echo "=== mutation: $label"
  start=$SECONDS
  # shellcheck disable=SC2086 # flags are word lists
  (cd "$stage/$mod" && GOWORK=off $GREMLINS unleash --workers 1 --test-cpu 0 \
      --output "$report" ${flags[$pkg]} "${extra[@]}" "./$sub") || status=1
  took=$((SECONDS - start))
  line=$(jq -r --arg pkg "$label" --arg took "$took" '
    [.files[].mutations[].status] as $s
    | ($s | map(select(. == "KILLED")) | length) as $k
    | ($s | map(select(. == "LIVED")) | length) as $l
    | ($s | map(select(. == "NOT COVERED")) | length) as $n
    | ($s | map(select(. == "TIMED OUT")) | length) as $t
    | ($s | map(select(. == "NOT VIABLE")) | length) as $v
    | "\($pkg)\t\($k)\t\($l)\t\($n)\t\($t)\t\($v)\t\(if $k+$l+$n > 0 then (1000 * $k / ($k+$l+$n) | floor) / 10 else 0 end)%\t\($took)s"' "$report")
  summary+=("$line")
  jq -r '.files[] | .file_name as $f | .mutations[] | select(.status == "LIVED" or .status == "NOT COVERED")
         | "  \(.status)\t\($f):\(.line):\(.column)\t\(.type)"' "$report" | sort -t: -k1,1 -k2,2n
done

echo
printf 'package\tkilled\tlived\tnot covered\ttimed out\tnot viable\tscore\ttime\n' >"$out/summary.tsv"
printf '%s\n' "${summary[@]}" >>"$out/summary.tsv"
column -t -s $'\t' "$out/summary.tsv"
exit $status
