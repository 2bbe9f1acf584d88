#!/usr/bin/env bash
# Regenerates gqlgen code and fails if that changed anything: generated code
# is never edited by hand and must match its schema.
set -euo pipefail
cd "$(dirname "$0")/.."
for svc in pub sub; do
  (cd "$svc" && go generate ./...)
done
if ! git diff --quiet -- pub/graph sub/graph || [ -n "$(git status --porcelain -- pub/graph sub/graph)" ]; then
  echo "generated code is stale: run 'go generate ./...' in pub/ and sub/ and commit the result" >&2
  git status --short -- pub/graph sub/graph >&2
  git --no-pager diff --stat -- pub/graph sub/graph >&2
  exit 1
fi
echo "generated code is current"
