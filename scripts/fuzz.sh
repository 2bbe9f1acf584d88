#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a short while
# (FUZZTIME, default 3s each), on top of its committed seed corpus, which
# plain `go test` already runs. A crasher is written to the package's
# testdata/fuzz/ and fails the run: commit it as a regression seed once
# fixed. `FUZZTIME=5m ./scripts/fuzz.sh` for a long session.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}
status=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "fuzz: $dir $target ($FUZZTIME)"
    if ! (cd "$dir" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" . >/tmp/fuzz.$$.log 2>&1); then
      cat /tmp/fuzz.$$.log
      status=1
    fi
  done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | sort)
rm -f /tmp/fuzz.$$.log
exit $status
