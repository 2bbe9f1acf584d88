#!/usr/bin/env bash
# Regenerates gqlgen code (pub, sub) and the Go client's genqlient code
# (client, from pub's schema) and fails if that changed anything: generated
# code is never edited by hand and must match its schema.
set -euo pipefail
cd "$(dirname "$0")/.."
for mod in pub sub client; do
  (cd "$mod" && go generate ./...)
done
paths=(pub/graph sub/graph client/generated.go)
if ! git diff --quiet -- "${paths[@]}" || [ -n "$(git status --porcelain -- "${paths[@]}")" ]; then
  echo "generated code is stale: run 'go generate ./...' in pub/, sub/ and client/ and commit the result" >&2
  git status --short -- "${paths[@]}" >&2
  git --no-pager diff --stat -- "${paths[@]}" >&2
  exit 1
fi
echo "generated code is current"
